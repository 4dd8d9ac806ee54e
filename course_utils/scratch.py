"""Neural-network layers from scratch in numpy, CS231n style.

Every layer is a pair of functions:

    out, cache = layer_forward(x, ...)      # cache: a plain tuple of what backward needs
    dx, ...    = layer_backward(dout, cache)

Shapes follow PyTorch: images are ``(N, C, H, W)``, conv weights ``(F, C, KH, KW)``, linear
weights ``(M, D)``. The convolution is a cross-correlation, exactly like
``torch.nn.functional.conv2d``; it is computed by unfolding the image into columns (im2col)
and doing one matrix multiply. ``conv_forward_loops`` is the plain-loop version to read first.

Output size of a convolution or pooling window (the report's formula):
``HOUT = (H + 2 * pad - KH) // stride + 1`` (same for the width).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# ---------------------------------------------------------------------------------------
# Input checks: bad shapes fail here with a message that names the parameter, not deep in numpy
# ---------------------------------------------------------------------------------------


def _require_ndim(name: str, array: np.ndarray, ndim: int, layout: str) -> None:
    if np.ndim(array) != ndim:
        raise ValueError(f"{name} must be a {ndim}-d array {layout}, got shape "
                         f"{np.shape(array)}; reshape it (e.g. x[None] adds a batch axis)")


def _require_positive_int(name: str, value: int, minimum: int = 1) -> None:
    if not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def conv_output_size(size: int, kernel: int, stride: int = 1, pad: int = 0) -> int:
    """Output length along one axis: ``(size + 2 * pad - kernel) // stride + 1``.

    Raises ValueError when the kernel does not fit into the padded input.
    """
    _require_positive_int("stride", stride)
    _require_positive_int("pad", pad, minimum=0)
    _require_positive_int("kernel size", kernel)
    if kernel > size + 2 * pad:
        raise ValueError(f"kernel size {kernel} is larger than the padded input "
                         f"({size} + 2*{pad}); use a smaller kernel or more padding")
    return (size + 2 * pad - kernel) // stride + 1


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
# im2col / col2im (torch's unfold / fold)
# ---------------------------------------------------------------------------------------


def _pad(x: np.ndarray, pad: int) -> np.ndarray:
    """Zero-pad the two spatial axes of x (N, C, H, W) by ``pad`` on every side."""
    return np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad))) if pad else x


def im2col_matrix(x: np.ndarray, kh: int, kw: int, stride: int = 1,
                  pad: int = 0) -> np.ndarray:
    """All receptive fields of a batch as one matrix, the layout for a single big GEMM.

    Inputs: x (N, C, H, W); kernel kh x kw.
    Returns cols (C*KH*KW, N*HOUT*WOUT), C-contiguous: row ``(c, i, j)`` holds
    ``x[n, c, i + stride*ho, j + stride*wo]`` for every ``(n, ho, wo)``.
    """
    _require_ndim("x", x, 4, "(N, C, H, W)")
    n, c, h, w = x.shape
    hout = conv_output_size(h, kh, stride, pad)
    wout = conv_output_size(w, kw, stride, pad)
    padded = _pad(x, pad)
    cols = np.empty((c, kh, kw, n, hout, wout), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            # kernel offset (i, j) sees pixel (i + stride*ho, j + stride*wo) at output (ho, wo):
            # one strided slice per offset, copied as whole rows (faster than gathering windows)
            cols[:, i, j] = padded[:, :, i:i + stride * hout:stride,
                                   j:j + stride * wout:stride].transpose(1, 0, 2, 3)
    return cols.reshape(c * kh * kw, n * hout * wout)


def im2col(x: np.ndarray, kh: int, kw: int, stride: int = 1, pad: int = 0) -> np.ndarray:
    """Unfold each image into columns, equal to ``torch.nn.functional.unfold``.

    Inputs: x (N, C, H, W); kernel kh x kw.
    Returns cols (N, C*KH*KW, HOUT*WOUT): column ``l`` of image ``n`` is the flattened
    receptive field at output position ``l`` (row-major over HOUT x WOUT).
    """
    n = np.shape(x)[0] if np.ndim(x) == 4 else 0
    matrix = im2col_matrix(x, kh, kw, stride, pad)
    return matrix.reshape(matrix.shape[0], n, -1).transpose(1, 0, 2)


def col2im_matrix(cols: np.ndarray, x_shape: tuple[int, int, int, int], kh: int, kw: int,
                  stride: int = 1, pad: int = 0) -> np.ndarray:
    """Fold a ``im2col_matrix`` back into an image, summing where windows overlap.

    Inputs: cols (C*KH*KW, N*HOUT*WOUT); x_shape (N, C, H, W) of the image it came from.
    Returns x (N, C, H, W). Each input pixel receives the sum of every column entry that was
    copied from it, which is exactly the gradient of im2col (a pixel used k times gets k terms).
    """
    n, c, h, w = x_shape
    hout = conv_output_size(h, kh, stride, pad)
    wout = conv_output_size(w, kw, stride, pad)
    if cols.shape != (c * kh * kw, n * hout * wout):
        raise ValueError(f"cols has shape {cols.shape}, expected {(c * kh * kw, n * hout * wout)} "
                         f"for x_shape={tuple(x_shape)}, kernel {kh}x{kw}, stride {stride}, "
                         f"pad {pad}")
    blocks = cols.reshape(c, kh, kw, n, hout, wout)
    padded = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            # kernel offset (i, j) saw the pixels at i + stride*ho, j + stride*wo
            padded[:, :, i:i + stride * hout:stride, j:j + stride * wout:stride] += (
                blocks[:, i, j].transpose(1, 0, 2, 3))
    return padded[:, :, pad:pad + h, pad:pad + w]


def col2im(cols: np.ndarray, x_shape: tuple[int, int, int, int], kh: int, kw: int,
           stride: int = 1, pad: int = 0) -> np.ndarray:
    """Fold columns back into images, equal to ``torch.nn.functional.fold``.

    Inputs: cols (N, C*KH*KW, HOUT*WOUT); x_shape (N, C, H, W).
    Returns x (N, C, H, W), overlapping entries summed.
    """
    _require_ndim("cols", cols, 3, "(N, C*KH*KW, HOUT*WOUT)")
    matrix = cols.transpose(1, 0, 2).reshape(cols.shape[1], -1)
    return col2im_matrix(matrix, x_shape, kh, kw, stride, pad)


# ---------------------------------------------------------------------------------------
# Convolution
# ---------------------------------------------------------------------------------------


def _check_conv_inputs(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> None:
    _require_ndim("x", x, 4, "(N, C, H, W)")
    _require_ndim("w", w, 4, "(F, C, KH, KW)")
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"x has {x.shape[1]} channels but w expects {w.shape[1]} "
                         f"(x {x.shape}, w {w.shape})")
    if np.shape(b) != (w.shape[0],):
        raise ValueError(f"b must have shape ({w.shape[0]},) (one bias per filter), "
                         f"got {np.shape(b)}")


def conv_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1,
                 pad: int = 0) -> tuple[np.ndarray, tuple]:
    """Convolution (cross-correlation, as torch's conv2d) via im2col and one matrix multiply.

    Inputs: x (N, C, H, W), w (F, C, KH, KW), b (F,).
    Returns out (N, F, HOUT, WOUT) and cache (x shape, cols, w, stride, pad).
    """
    _check_conv_inputs(x, w, b)
    n = x.shape[0]
    f, _, kh, kw = w.shape
    cols = im2col_matrix(x, kh, kw, stride, pad)  # (C*KH*KW, N*HOUT*WOUT)
    hout = conv_output_size(x.shape[2], kh, stride, pad)
    wout = conv_output_size(x.shape[3], kw, stride, pad)
    # One GEMM for the whole batch: (F, C*KH*KW) @ (C*KH*KW, N*HOUT*WOUT)
    out = w.reshape(f, -1) @ cols
    out += b[:, None]  # in place: no second (F, N*HOUT*WOUT) array
    out = out.reshape(f, n, hout, wout).transpose(1, 0, 2, 3)
    return np.ascontiguousarray(out), (x.shape, cols, w, stride, pad)


def conv_backward(dout: np.ndarray,
                  cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of ``conv_forward``, through col2im.

    Inputs: dout (N, F, HOUT, WOUT).
    Returns dx (N, C, H, W), dw (F, C, KH, KW), db (F,).
    """
    x_shape, cols, w, stride, pad = cache
    f, _, kh, kw = w.shape
    dout_matrix = dout.transpose(1, 0, 2, 3).reshape(f, -1)  # (F, N*HOUT*WOUT), as in forward
    dw = (dout_matrix @ cols.T).reshape(w.shape)  # out = W @ cols, so dW = dout @ cols^T
    db = dout.sum(axis=(0, 2, 3))
    dcols = w.reshape(f, -1).T @ dout_matrix  # and dcols = W^T @ dout
    dx = col2im_matrix(dcols, x_shape, kh, kw, stride, pad)  # each pixel sums its copies
    return dx, dw, db


def conv_forward_loops(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1,
                       pad: int = 0) -> np.ndarray:
    """The definition, written as loops: ``out[n,f,i,j] = sum(window * w[f]) + b[f]``.

    Inputs: x (N, C, H, W), w (F, C, KH, KW), b (F,).
    Returns out (N, F, HOUT, WOUT). Slow; the reference the fast version is checked against.
    """
    _check_conv_inputs(x, w, b)
    n = x.shape[0]
    f, _, kh, kw = w.shape
    hout = conv_output_size(x.shape[2], kh, stride, pad)
    wout = conv_output_size(x.shape[3], kw, stride, pad)
    padded = _pad(x, pad)
    out = np.zeros((n, f, hout, wout), dtype=np.result_type(x, w))
    for image in range(n):
        for filt in range(f):
            for i in range(hout):
                for j in range(wout):
                    top, left = i * stride, j * stride
                    window = padded[image, :, top:top + kh, left:left + kw]  # (C, KH, KW)
                    out[image, filt, i, j] = np.sum(window * w[filt]) + b[filt]
    return out


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
