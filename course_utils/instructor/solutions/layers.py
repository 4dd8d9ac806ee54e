"""06 · Backpropagation by hand: the report's worked example, recovered and redone.

GENERATED from the cells marked ``#| export`` in notebooks/06_conv_backprop_by_hand.ipynb by
``python -m course_utils.instructor.grading export`` (``make export``): edit the notebook, not
this file.
``tests/test_grading_export.py`` fails when this file is stale.
"""

# Given code.
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _require_4d(name: str, array: np.ndarray) -> None:
    if np.ndim(array) != 4:
        raise ValueError(f"{name} must be a 4-d array (N, C, H, W), got shape "
                         f"{np.shape(array)}; reshape it (e.g. x[None] adds a batch axis)")


def _require_positive_int(name: str, value: int) -> None:
    if not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def linear_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Fully connected layer ``out = x @ w.T + b`` (torch.nn.Linear's layout).

    Inputs: x (N, D), w (M, D), b (M,).
    Returns out (N, M) and cache (x, w).
    """
    if (np.ndim(x) != 2 or np.ndim(w) != 2 or x.shape[1] != w.shape[1]
            or np.shape(b) != (w.shape[0],)):
        raise ValueError(f"linear_forward: x {np.shape(x)}, w {np.shape(w)}, b {np.shape(b)} "
                         "do not fit; need x (N, D), w (M, D), b (M,)")
    out = x @ w.T + b
    return out, (x, w)


def linear_backward(dout: np.ndarray,
                    cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of ``linear_forward``.

    Inputs: dout (N, M) = dL/dout; cache (x, w) from linear_forward: x (N, D), w (M, D).
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
    """Backward pass of ``sigmoid_forward``.

    Inputs: dout (any shape) = dL/dout; cache = the forward's output a, same shape.
    Returns dx, same shape as dout.
    """
    a = cache  # the derivative is written with the output, so that is all we kept
    return dout * a * (1.0 - a)


def maxpool_forward(x: np.ndarray, pool: int = 2, stride: int = 2) -> tuple[np.ndarray, tuple]:
    """Max pooling over ``pool x pool`` windows (no padding), like torch's max_pool2d.

    Inputs: x (N, C, H, W).
    Returns out (N, C, HOUT, WOUT) and cache (x shape, winner, pool, stride), where
    ``HOUT = (H - pool) // stride + 1`` and winner (N, C, HOUT, WOUT) holds ``i * pool + j``
    for the offset (i, j) of the maximum inside each window (the first one on ties, as torch).
    """
    _require_4d("x", x)
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

    Inputs: dout (N, C, HOUT, WOUT) = dL/dout; cache (x shape, winner, pool, stride).
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


def conv_forward_loops(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1,
                       pad: int = 0) -> np.ndarray:
    """The convolution from its definition, as loops: ``out[n,f,i,j] = sum(window * w[f]) +
    b[f]`` over the zero-padded x (given: its backward pass is the exercise below).

    Inputs: x (N, C, H, W), w (F, C, KH, KW), b (F,); stride and pad as in torch's conv2d.
    Returns out (N, F, HOUT, WOUT) with HOUT = (H + 2 pad - KH) // stride + 1 (same for W).
    """
    _require_4d("x", x)
    _require_4d("w", w)
    _require_positive_int("stride", stride)
    n, f = x.shape[0], w.shape[0]
    kh, kw = w.shape[2:]
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    hout = (padded.shape[2] - kh) // stride + 1
    wout = (padded.shape[3] - kw) // stride + 1
    out = np.zeros((n, f, hout, wout), dtype=np.result_type(x, w))
    for image in range(n):
        for filt in range(f):
            for i in range(hout):
                for j in range(wout):
                    top, left = i * stride, j * stride
                    window = padded[image, :, top:top + kh, left:left + kw]  # (C, KH, KW)
                    out[image, filt, i, j] = np.sum(window * w[filt]) + b[filt]
    return out


def conv_backward_loops(dout: np.ndarray, x: np.ndarray, w: np.ndarray, stride: int = 1,
                        pad: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of the convolution ``conv_forward_loops(x, w, b, stride, pad)``, from the
    definition with plain loops over the outputs.

    Inputs: dout (N, F, HOUT, WOUT) = dL/dout; x (N, C, H, W) and w (F, C, KH, KW), the
    forward's inputs; stride and pad as in the forward.
    Returns dx (N, C, H, W), dw (F, C, KH, KW), db (F,).
    """
    n, _, h, width = x.shape
    f, _, kh, kw = w.shape
    hout, wout = dout.shape[2:]
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dpadded = np.zeros(padded.shape, dtype=np.result_type(dout, w))
    dw = np.zeros(w.shape, dtype=np.result_type(dout, x))
    for image in range(n):
        for filt in range(f):
            for i in range(hout):
                for j in range(wout):
                    top, left = i * stride, j * stride
                    grad = dout[image, filt, i, j]
                    # out[image, filt, i, j] = sum(window * w[filt]) + b[filt]
                    dw[filt] += grad * padded[image, :, top:top + kh, left:left + kw]
                    dpadded[image, :, top:top + kh, left:left + kw] += grad * w[filt]
    db = dout.sum(axis=(0, 2, 3))  # b[filt] is added to every output of filter filt
    dx = dpadded[:, :, pad:pad + h, pad:pad + width]  # padding is not an input
    return dx, dw, db
