"""Notebook 06's exercise checks: a student's backward pass against an independent reference.

Every check builds the layer's cache itself, in the layout ``course_utils.part_two.layers`` uses,
from
PyTorch (the input, ``torch.sigmoid``'s output, ``F.max_pool2d``'s indices), calls the student's
backward function with plain values, and compares with autograd on ``F.linear``,
``torch.sigmoid``, ``F.max_pool2d`` or ``F.conv2d``, or with centred differences of
``F.conv2d``; never with the course's own numpy code. A failure raises ``AssertionError``
naming the call, what was expected, what came back and a hint.

As in ``checks_im2col``, the checks run in the student's kernel (otter's ``grader.check``, the
public tests) and in the grader's process, where the functions are proxies into the sandbox.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from course_utils.exercise_checks.assertions import (
    assert_array as _assert_array,
)
from course_utils.exercise_checks.assertions import (
    fail,
    require_defined,
    rng_array,
)
from course_utils.exercise_checks.im2col import (
    reference_conv,
    reference_conv_grads,
)

HINTS = {  # the idea or the shape to check, never the code (issue 16)
    "linear_backward": "each gradient has the shape of what it is the gradient of: dx (N, D), "
                       "dw (M, D), db (M,); b was added to every row of the batch.",
    "sigmoid_backward": "the cache holds the forward's output; the sigmoid's derivative can "
                        "be written with that output alone.",
    "maxpool_backward": "only the input that won a window receives that window's gradient; "
                        "when windows overlap (stride < pool) one input can win twice.",
    "conv_backward_loops": "follow each output back to the window and the kernel it used; "
                           "the padding is not an input, and each bias touched every output "
                           "of its filter.",
}


def _fail(call: str, problem: str, name: str) -> None:
    fail(call, problem, HINTS.get(name))


def assert_array(got: Any, expected: np.ndarray, call: str, name: str, what: str = "",
                 atol: float = 1e-10) -> None:
    """``assertions.assert_array`` with the hint of exercise ``name``."""
    _assert_array(got, expected, call, HINTS.get(name), what, atol)


def _grads(result: Any, count: int, call: str, name: str, names: str) -> tuple:
    """The student's result as ``count`` gradients, or a failure saying what came back."""
    if count == 1:
        return (result,)
    if not (isinstance(result, tuple | list) and len(result) == count):
        length = f" of length {len(result)}" if isinstance(result, tuple | list) else ""
        _fail(call, f"must return {names}, got {type(result).__name__}{length}", name)
    return tuple(result)


def _leaf(array: np.ndarray) -> torch.Tensor:
    return torch.tensor(array, dtype=torch.float64, requires_grad=True)


# ---------------------------------------------------------------------------------------------
# Fully connected layer and sigmoid
# ---------------------------------------------------------------------------------------------


def check_linear_backward(linear_backward: Callable | None, n: int, d: int, m: int,
                          seed: int = 0) -> None:
    """``linear_backward(dout, (x, w))`` against autograd on ``F.linear(x, w, b)``."""
    require_defined(linear_backward, "linear_backward")
    rng = np.random.default_rng(seed)
    x, w, b = rng.normal(size=(n, d)), rng.normal(size=(m, d)), rng.normal(size=m)
    dout = rng.normal(size=(n, m))
    leaves = [_leaf(v) for v in (x, w, b)]
    F.linear(*leaves).backward(torch.from_numpy(dout))
    call = f"linear_backward(dout of shape {dout.shape}, cache=(x of shape {x.shape}, " \
           f"w of shape {w.shape}))"
    grads = _grads(linear_backward(dout.copy(), (x.copy(), w.copy())), 3, call,
                   "linear_backward", "(dx, dw, db)")
    for got, leaf, what in zip(grads, leaves, ("dx", "dw", "db"), strict=True):
        assert_array(got, leaf.grad.numpy(), call, "linear_backward", what)


def check_sigmoid_backward(sigmoid_backward: Callable | None, shape: tuple[int, ...],
                           seed: int = 0, scale: float = 1.0) -> None:
    """``sigmoid_backward(dout, a)`` with ``a = torch.sigmoid(x)`` against autograd."""
    require_defined(sigmoid_backward, "sigmoid_backward")
    x = scale * rng_array(shape, seed)
    dout = rng_array(shape, seed + 1)
    leaf = _leaf(x)
    a = torch.sigmoid(leaf)
    a.backward(torch.from_numpy(dout))
    cache = a.detach().numpy().copy()
    call = f"sigmoid_backward(dout of shape {dout.shape}, cache=sigmoid(x) of shape {shape})"
    got = sigmoid_backward(dout.copy(), cache)
    assert_array(got, leaf.grad.numpy(), call, "sigmoid_backward", "dx")


# ---------------------------------------------------------------------------------------------
# Max pooling
# ---------------------------------------------------------------------------------------------


def maxpool_cache(x: np.ndarray, pool: int, stride: int) -> tuple:
    """The cache ``maxpool_forward`` returns, from ``F.max_pool2d``'s indices (so ties go
    where torch sends them): (x shape, winner (N, C, HOUT, WOUT), pool, stride), where winner
    ``i * pool + j`` is the window offset (i, j) of the maximum."""
    _, indices = F.max_pool2d(torch.from_numpy(x), pool, stride, return_indices=True)
    flat = indices.numpy()  # index into the H * W plane
    hout, wout = flat.shape[2:]
    rows, cols = np.divmod(flat, x.shape[3])
    i = rows - stride * np.arange(hout)[:, None]
    j = cols - stride * np.arange(wout)[None, :]
    return tuple(int(s) for s in x.shape), (i * pool + j).astype(np.int64), pool, stride


def check_maxpool_backward(maxpool_backward: Callable | None, x_shape: tuple[int, ...],
                           pool: int = 2, stride: int = 2, seed: int = 0,
                           ties: bool = False) -> None:
    """``maxpool_backward(dout, cache)`` against autograd on ``F.max_pool2d``.

    ``ties``: x holds only the values 0, 1, 2, so most windows have several maxima; the cache
    names the one torch chose and the gradient must go there alone.
    """
    require_defined(maxpool_backward, "maxpool_backward")
    rng = np.random.default_rng(seed)
    x = (rng.integers(0, 3, size=x_shape).astype(np.float64) if ties
         else rng.normal(size=x_shape))
    leaf = _leaf(x)
    out = F.max_pool2d(leaf, pool, stride)
    dout = rng.normal(size=tuple(out.shape))
    out.backward(torch.from_numpy(dout))
    cache = maxpool_cache(x, pool, stride)
    call = (f"maxpool_backward(dout of shape {dout.shape}, cache) after maxpool_forward(x of "
            f"shape {tuple(x_shape)}, pool={pool}, stride={stride})"
            + (" (x with tied maxima)" if ties else ""))
    got = maxpool_backward(dout.copy(), cache)
    assert_array(got, leaf.grad.numpy(), call, "maxpool_backward", "dx")


# ---------------------------------------------------------------------------------------------
# Convolution, from the definition
# ---------------------------------------------------------------------------------------------


def reference_conv_grads_numerical(x: np.ndarray, w: np.ndarray, b: np.ndarray,
                                   dout: np.ndarray, stride: int, pad: int,
                                   h: float = 1e-6) -> tuple[np.ndarray, ...]:
    """(dx, dw, db) of sum(conv2d(x, w, b) * dout) by centred differences of F.conv2d."""
    arrays = [x, w, b]
    grads = []
    for k, array in enumerate(arrays):
        grad = np.zeros_like(array)
        for index in np.ndindex(array.shape):
            plus, minus = [a.copy() for a in arrays], [a.copy() for a in arrays]
            plus[k][index] += h
            minus[k][index] -= h
            grad[index] = np.sum((reference_conv(*plus, stride, pad)
                                  - reference_conv(*minus, stride, pad)) * dout) / (2 * h)
        grads.append(grad)
    return tuple(grads)


def check_conv_backward_loops(conv_backward_loops: Callable | None, x_shape: tuple[int, ...],
                              filters: int, kernel: tuple[int, int], stride: int = 1,
                              pad: int = 0, seed: int = 0, numerical: bool = False) -> None:
    """``conv_backward_loops(dout, x, w, stride, pad)`` against autograd on ``F.conv2d``, or
    with ``numerical`` against centred differences of ``F.conv2d`` (dx, dw and db)."""
    require_defined(conv_backward_loops, "conv_backward_loops")
    rng = np.random.default_rng(seed)
    x = rng.normal(size=x_shape)
    w = rng.normal(size=(filters, x_shape[1], *kernel))
    b = rng.normal(size=filters)
    dout = rng.normal(size=reference_conv(x, w, b, stride, pad).shape)
    call = (f"conv_backward_loops(dout of shape {dout.shape}, x of shape {x.shape}, w of shape "
            f"{w.shape}, stride={stride}, pad={pad})")
    grads = _grads(conv_backward_loops(dout.copy(), x.copy(), w.copy(), stride, pad), 3, call,
                   "conv_backward_loops", "(dx, dw, db)")
    if numerical:
        expected = reference_conv_grads_numerical(x, w, b, dout, stride, pad)
        source, atol = "against centred differences of F.conv2d", 1e-6
    else:
        expected = reference_conv_grads(x, w, b, dout, stride, pad)
        source, atol = "", 1e-10
    for got, reference, what in zip(grads, expected, ("dx", "dw", "db"), strict=True):
        assert_array(got, reference, call, "conv_backward_loops",
                     f"{what} ({source})" if source else what, atol=atol)


__all__ = [
    "HINTS", "check_conv_backward_loops", "check_linear_backward", "check_maxpool_backward",
    "check_sigmoid_backward", "maxpool_cache",
    "reference_conv_grads_numerical",
]
