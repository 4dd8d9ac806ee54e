"""Neural-network layers from scratch in numpy, CS231n style.

Every layer is a pair of functions:

    out, cache = layer_forward(x, ...)      # cache: a plain tuple of what backward needs
    dx, ...    = layer_backward(dout, cache)

Shapes follow PyTorch: images are ``(N, C, H, W)``, conv weights ``(F, C, KH, KW)``, linear
weights ``(M, D)``. The convolution is a cross-correlation, exactly like
``torch.nn.functional.conv2d``; it is computed by unfolding the image into columns (im2col)
and doing one matrix multiply. ``conv_forward_loops`` is the plain-loop version to read first.
Those (im2col, col2im, conv_*) are written in notebook 07 and exported to ``course_utils.im2col``.

Output size of a convolution or pooling window (the report's formula):
``HOUT = (H + 2 * pad - KH) // stride + 1`` (same for the width).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# im2col, col2im and the convolution are written in notebook 07 and exported from it into
# course_utils/im2col.py (one copy: edit the notebook, then `make export`); re-exported here so
# `scratch.conv_forward` and friends keep working.
from course_utils.im2col import (  # noqa: F401  (re-exported)
    _check_conv_inputs,
    _pad,
    _require_ndim,
    _require_positive_int,
    col2im,
    col2im_matrix,
    conv_backward,
    conv_forward,
    conv_forward_loops,
    conv_output_size,
    im2col,
    im2col_matrix,
)

# ---------------------------------------------------------------------------------------
# Fully connected layer, sigmoid, SGD
# ---------------------------------------------------------------------------------------


def linear_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Fully connected layer ``out = x @ w.T + b`` (torch.nn.Linear's layout).

    Inputs: x (N, D), w (M, D), b (M,).
    Returns out (N, M) and cache (x, w).
    """
    _require_ndim("x", x, 2, "(N, D)")
    _require_ndim("w", w, 2, "(M, D)")
    if x.shape[1] != w.shape[1] or np.shape(b) != (w.shape[0],):
        raise ValueError(f"linear_forward: x {x.shape}, w {w.shape}, b {np.shape(b)} do not fit; "
                         "need x (N, D), w (M, D), b (M,)")
    out = x @ w.T + b
    return out, (x, w)


def linear_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of ``linear_forward``.

    Inputs: dout (N, M) = dL/dout; cache from linear_forward.
    Returns dx (N, D), dw (M, D), db (M,).
    """
    x, w = cache
    dx = dout @ w  # each input feeds every output through its weight
    dw = dout.T @ x  # summed over the batch: the weight is shared by all N rows
    db = dout.sum(axis=0)
    return dx, dw, db


def sigmoid_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Element-wise sigmoid ``1 / (1 + exp(-x))``; any shape. Returns out and cache (= out)."""
    out = 1.0 / (1.0 + np.exp(-x))
    return out, out


def sigmoid_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """Backward pass of ``sigmoid_forward``: ``dx = dout * a * (1 - a)``; same shape as dout."""
    a = cache  # the derivative is written with the output, so that is all we kept
    return dout * a * (1.0 - a)


def sgd_update(param: np.ndarray, grad: np.ndarray, lr: float) -> np.ndarray:
    """One plain gradient-descent step: returns ``param - lr * grad`` (a new array)."""
    if np.shape(param) != np.shape(grad):
        raise ValueError(f"sgd_update: param {np.shape(param)} and grad {np.shape(grad)} "
                         "must have the same shape")
    return param - lr * grad


# ---------------------------------------------------------------------------------------
# Max pooling
# ---------------------------------------------------------------------------------------


def maxpool_forward(x: np.ndarray, pool: int = 2, stride: int = 2) -> tuple[np.ndarray, tuple]:
    """Max pooling over ``pool x pool`` windows (no padding), like torch's max_pool2d.

    Inputs: x (N, C, H, W).
    Returns out (N, C, HOUT, WOUT) and cache (x shape, argmax inside each window, pool, stride);
    ``HOUT = (H - pool) // stride + 1``.
    """
    _require_ndim("x", x, 4, "(N, C, H, W)")
    _require_positive_int("pool", pool)
    _require_positive_int("stride", stride)
    if pool > min(x.shape[2:]):
        raise ValueError(f"pool {pool} is larger than the input ({x.shape[2]}x{x.shape[3]}); "
                         "use a smaller pool")
    n, c = x.shape[:2]
    # (N, C, HOUT, WOUT, pool, pool): every window as a view, no copy
    windows = sliding_window_view(x, (pool, pool), axis=(2, 3))[:, :, ::stride, ::stride]
    flat = windows.reshape(n, c, windows.shape[2], windows.shape[3], pool * pool)
    winner = flat.argmax(axis=-1)  # first maximum on ties, as torch
    out = np.take_along_axis(flat, winner[..., None], axis=-1)[..., 0]
    return out, (x.shape, winner, pool, stride)


def maxpool_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Backward pass of ``maxpool_forward``: each window's gradient goes to its maximum.

    Inputs: dout (N, C, HOUT, WOUT).
    Returns dx (N, C, H, W); every other position in a window gets 0.
    """
    x_shape, winner, pool, stride = cache
    hout, wout = winner.shape[2:]
    dx = np.zeros(x_shape, dtype=dout.dtype)
    for i in range(pool):
        for j in range(pool):
            won = winner == i * pool + j
            # += because windows overlap when stride < pool
            dx[:, :, i:i + stride * hout:stride, j:j + stride * wout:stride] += dout * won
    return dx


# ---------------------------------------------------------------------------------------
# Gradient checking
# ---------------------------------------------------------------------------------------


def numerical_gradient(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray,
                       dout: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Centred-difference gradient of ``sum(f(x) * dout)`` with respect to x.

    Inputs: f maps x (any shape) to an array shaped like dout; x is nudged in place and restored.
    Returns grad shaped like x: ``sum((f(x + h e_i) - f(x - h e_i)) * dout) / (2h)`` per entry.
    """
    grad = np.zeros_like(x, dtype=float)
    for index in np.ndindex(x.shape):
        saved = x[index]
        x[index] = saved + h
        plus = np.array(f(x), dtype=float)  # copy: f may return a view of x
        x[index] = saved - h
        minus = np.array(f(x), dtype=float)
        x[index] = saved
        grad[index] = np.sum((plus - minus) * dout) / (2 * h)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """Largest ``|a - b| / max(1e-8, |a| + |b|)``: ~1e-8 or less means the gradients agree."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


#: Largest |a - b| that counts as "equal up to float64 rounding" for values of order 1 that two
#: codes (ours and torch, im2col and loops) compute in a different order. Rounding leaves
#: ~1e-15, and how much exactly depends on the CPU and its BLAS kernels, so notebooks show
#: this bound instead of the difference; a wrong formula is off by the size of the values.
ROUNDING_TOLERANCE = 1e-10


def bound_text(bound: float) -> str:
    """A bound as the notebooks print it: ``bound_text(1e-10) == "< 1e-10"``.

    Shown in place of a difference that only rounding separates from 0: the difference changes
    from CPU to CPU, the bound (asserted next to it) does not.
    """
    exponent = math.log10(bound) if bound > 0 else 0.5
    if exponent != round(exponent):
        raise ValueError(f"bound must be a power of ten like 1e-10, got {bound!r}")
    return f"< 1e{round(exponent)}"
