"""Neural-network layers from scratch in numpy, CS231n style.

Every layer is a pair of functions:

    out, cache = layer_forward(x, ...)      # cache: a plain tuple of what backward needs
    dx, ...    = layer_backward(dout, cache)

Shapes follow PyTorch: images are ``(N, C, H, W)``, conv weights ``(F, C, KH, KW)``, linear
weights ``(M, D)``. The convolution is a cross-correlation, exactly like
``torch.nn.functional.conv2d``; it is computed by unfolding the image into columns (im2col)
and doing one matrix multiply. ``conv_forward_loops`` is the plain-loop version to read first.
The layers themselves (im2col, col2im, conv_*, the fully connected layer, the sigmoid, max
pooling) are what notebooks 06 and 07 have students write, so they live in those notebooks;
this module holds what the notebooks use around them: SGD, gradient checking and the rounding
bound.

Output size of a convolution or pooling window (the report's formula):
``HOUT = (H + 2 * pad - KH) // stride + 1`` (same for the width).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

# ---------------------------------------------------------------------------------------
# SGD
# ---------------------------------------------------------------------------------------


def sgd_update(param: np.ndarray, grad: np.ndarray, lr: float) -> np.ndarray:
    """One plain gradient-descent step: returns ``param - lr * grad`` (a new array)."""
    if np.shape(param) != np.shape(grad):
        raise ValueError(f"sgd_update: param {np.shape(param)} and grad {np.shape(grad)} "
                         "must have the same shape")
    return param - lr * grad


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
