"""Notebook 07's exercise checks: a student's function against an independent reference.

Every check calls the student's function on one input, computes the answer with PyTorch
(``F.unfold``, ``F.fold``, ``F.conv2d``, autograd) or with centred differences of
``F.conv2d``, never with the course's own numpy code, and raises ``AssertionError`` whose
message says which call, what was expected, what came back and a hint.

The same checks run in two places: in the student's kernel, where otter's ``grader.check``
runs the public tests (a convenience: a student can fool those), and in the grader process,
where the function arguments are proxies that run the student's code in a sandbox and return
plain values, so the verdict is computed outside the student's process
(``course_utils.instructor.grading.grade``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from course_utils.exercise_checks.assertions import (
    ATOL,
    call_text,
    fail,
    require_defined,
    rng_array,
)
from course_utils.exercise_checks.assertions import (
    assert_array as _assert_array,
)

HINTS = {  # the idea or the shape to check, never the code (issue 16)
    "unfolded_shape": "one row per kernel entry, one column per output position; the output "
                      "size is the report's formula.",
    "im2col_matrix": "one column per output position (n, ho, wo), one row per (c, i, j) of the "
                     "kernel; compare with F.unfold on a small example.",
    "im2col": "im2col only rearranges im2col_matrix's result into (N, C*KH*KW, HOUT*WOUT): "
              "check im2col_matrix first.",
    "col2im_matrix": "the reverse of im2col_matrix's copies; where windows overlap, the values "
                     "that meet at one pixel must all count.",
    "col2im": "col2im only rearranges (N, C*KH*KW, L) columns for col2im_matrix: check "
              "col2im_matrix first.",
    "conv_forward": "with the image unfolded, the convolution is one matrix product with the "
                    "flattened kernels; check every shape against conv2d's output. Return "
                    "(out, cache).",
    "conv_backward": "the forward was a matrix product and a reshape: differentiate the "
                     "product, then undo the unfold; each gradient has the shape of what it is "
                     "the gradient of.",
}


def _fail(call: str, problem: str, name: str) -> None:
    fail(call, problem, HINTS.get(name))


def assert_array(got, expected, call: str, name: str, what: str = "", atol: float = ATOL) -> None:
    """``assertions.assert_array`` with the hint of exercise ``name``."""
    _assert_array(got, expected, call, HINTS.get(name), what, atol)


# ---------------------------------------------------------------------------------------------
# References (PyTorch, float64)
# ---------------------------------------------------------------------------------------------


def reference_im2col_matrix(x: np.ndarray, kh: int, kw: int, stride: int, pad: int) -> np.ndarray:
    """F.unfold's (N, C*KH*KW, L) as the batch matrix (C*KH*KW, N*L)."""
    unfolded = F.unfold(torch.from_numpy(x), (kh, kw), stride=stride, padding=pad).numpy()
    return unfolded.transpose(1, 0, 2).reshape(unfolded.shape[1], -1)


def reference_col2im_matrix(cols: np.ndarray, x_shape: tuple[int, ...], kh: int, kw: int,
                            stride: int, pad: int) -> np.ndarray:
    """F.fold of the batch matrix (C*KH*KW, N*L) into (N, C, H, W)."""
    n = x_shape[0]
    batched = cols.reshape(cols.shape[0], n, -1).transpose(1, 0, 2)
    return F.fold(torch.from_numpy(np.ascontiguousarray(batched)), tuple(x_shape[2:]), (kh, kw),
                  stride=stride, padding=pad).numpy()


def reference_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int,
                   pad: int) -> np.ndarray:
    return F.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), stride=stride,
                    padding=pad).numpy()


def reference_conv_grads(x: np.ndarray, w: np.ndarray, b: np.ndarray, dout: np.ndarray,
                         stride: int, pad: int) -> tuple[np.ndarray, ...]:
    """(dx, dw, db) of sum(conv2d(x, w, b) * dout), by autograd."""
    leaves = [torch.tensor(v, requires_grad=True) for v in (x, w, b)]
    F.conv2d(*leaves, stride=stride, padding=pad).backward(torch.from_numpy(dout))
    return tuple(leaf.grad.numpy() for leaf in leaves)


def reference_conv_dx_numerical(x: np.ndarray, w: np.ndarray, b: np.ndarray, dout: np.ndarray,
                                stride: int, pad: int, h: float = 1e-6) -> np.ndarray:
    """dx of sum(conv2d(x, w, b) * dout) by centred differences of F.conv2d (not autograd)."""
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        plus, minus = x.copy(), x.copy()
        plus[index] += h
        minus[index] -= h
        grad[index] = np.sum((reference_conv(plus, w, b, stride, pad)
                              - reference_conv(minus, w, b, stride, pad)) * dout) / (2 * h)
    return grad


# ---------------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------------


def check_unfolded_shape_format(unfolded_shape: Any) -> None:
    """Public: the answer is a tuple of two positive integers (not whether it is right)."""
    if unfolded_shape is None or unfolded_shape is Ellipsis:
        raise AssertionError("unfolded_shape is not set: replace `...` with a tuple such as "
                             "(rows, columns)")
    ok = (isinstance(unfolded_shape, tuple) and len(unfolded_shape) == 2
          and all(isinstance(v, int | np.integer) and v > 0 for v in unfolded_shape))
    if not ok:
        raise AssertionError(f"unfolded_shape must be a tuple of two positive integers "
                             f"(rows, columns), got {unfolded_shape!r}")


def check_im2col_matrix(im2col_matrix: Callable | None, x_shape: tuple[int, ...],
                        kernel: tuple[int, int], stride: int = 1, pad: int = 0, seed: int = 0,
                        pixel_ids: bool = False) -> None:
    """``im2col_matrix(x, kh, kw, stride, pad)`` against F.unfold.

    ``pixel_ids``: x holds 0, 1, 2, ... so a wrong column shows which pixels it copied.
    """
    require_defined(im2col_matrix, "im2col_matrix")
    kh, kw = kernel
    x = (np.arange(np.prod(x_shape), dtype=np.float64).reshape(x_shape) if pixel_ids
         else rng_array(x_shape, seed))
    expected = reference_im2col_matrix(x, kh, kw, stride, pad)
    call = call_text("im2col_matrix", x, kh, kw, stride=stride, pad=pad)
    got = im2col_matrix(x.copy(), kh, kw, stride, pad)
    if pixel_ids and isinstance(got, np.ndarray) and got.shape == expected.shape:
        wrong = [j for j in range(expected.shape[1])
                 if not np.array_equal(got[:, j], expected[:, j])]
        if wrong:
            j = wrong[0]
            _fail(call, f"x holds the pixel numbers 0, 1, 2, ...; column {j} should copy pixels "
                        f"{expected[:, j].astype(int).tolist()}, got "
                        f"{np.round(got[:, j], 3).tolist()}", "im2col_matrix")
    assert_array(got, expected, call, "im2col_matrix")


def check_im2col(im2col: Callable | None, x_shape: tuple[int, ...], kernel: tuple[int, int],
                 stride: int = 1, pad: int = 0, seed: int = 0) -> None:
    """``im2col(x, kh, kw, stride, pad)`` against F.unfold, same layout (N, C*KH*KW, L)."""
    require_defined(im2col, "im2col")
    kh, kw = kernel
    x = rng_array(x_shape, seed)
    expected = F.unfold(torch.from_numpy(x), (kh, kw), stride=stride, padding=pad).numpy()
    got = im2col(x.copy(), kh, kw, stride, pad)
    assert_array(got, expected, call_text("im2col", x, kh, kw, stride=stride, pad=pad), "im2col")


def check_col2im_matrix(col2im_matrix: Callable | None, x_shape: tuple[int, ...],
                        kernel: tuple[int, int], stride: int = 1, pad: int = 0, seed: int = 0,
                        ones: bool = False) -> None:
    """``col2im_matrix(cols, x_shape, kh, kw, stride, pad)`` against F.fold.

    ``ones``: cols all ones, so the right answer counts how often each pixel was copied.
    """
    require_defined(col2im_matrix, "col2im_matrix")
    kh, kw = kernel
    rows = x_shape[1] * kh * kw
    columns = reference_im2col_matrix(np.zeros(x_shape), kh, kw, stride, pad).shape[1]
    cols = np.ones((rows, columns)) if ones else rng_array((rows, columns), seed)
    expected = reference_col2im_matrix(cols, x_shape, kh, kw, stride, pad)
    call = call_text("col2im_matrix", cols, tuple(x_shape), kh, kw, stride=stride, pad=pad)
    got = col2im_matrix(cols.copy(), tuple(x_shape), kh, kw, stride, pad)
    what = "the overlap counts (cols of ones)" if ones else ""
    assert_array(got, expected, call, "col2im_matrix", what)


def check_col2im(col2im: Callable | None, x_shape: tuple[int, ...], kernel: tuple[int, int],
                 stride: int = 1, pad: int = 0, seed: int = 0) -> None:
    """``col2im(cols, x_shape, kh, kw, stride, pad)`` against F.fold, layout (N, C*KH*KW, L)."""
    require_defined(col2im, "col2im")
    kh, kw = kernel
    shape = F.unfold(torch.zeros(x_shape, dtype=torch.float64), (kh, kw), stride=stride,
                     padding=pad).shape
    cols = rng_array(tuple(shape), seed)
    expected = F.fold(torch.from_numpy(cols), tuple(x_shape[2:]), (kh, kw), stride=stride,
                      padding=pad).numpy()
    got = col2im(cols.copy(), tuple(x_shape), kh, kw, stride, pad)
    assert_array(got, expected, call_text("col2im", cols, tuple(x_shape), kh, kw, stride=stride,
                                          pad=pad), "col2im")


def _conv_inputs(x_shape: tuple[int, ...], filters: int, kernel: tuple[int, int],
                 seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=x_shape)
    w = rng.normal(size=(filters, x_shape[1], *kernel))
    b = rng.uniform(0.5, 1.5, size=filters) * rng.choice([-1.0, 1.0], size=filters)  # never ~0
    return x, w, b


def _forward(conv_forward: Callable, x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int,
             pad: int) -> tuple[Any, Any, str]:
    call = call_text("conv_forward", x, w, b, stride=stride, pad=pad)
    result = conv_forward(x.copy(), w.copy(), b.copy(), stride, pad)
    if not (isinstance(result, tuple | list) and len(result) == 2):
        _fail(call, f"must return a pair (out, cache), got {type(result).__name__}"
                    f"{f' of length {len(result)}' if isinstance(result, tuple | list) else ''}",
              "conv_forward")
    return result[0], result[1], call


def check_conv_forward(conv_forward: Callable | None, x_shape: tuple[int, ...], filters: int,
                       kernel: tuple[int, int], stride: int = 1, pad: int = 0,
                       seed: int = 0) -> None:
    """``conv_forward(x, w, b, stride, pad)[0]`` against F.conv2d (bias never zero)."""
    require_defined(conv_forward, "conv_forward")
    x, w, b = _conv_inputs(x_shape, filters, kernel, seed)
    out, _, call = _forward(conv_forward, x, w, b, stride, pad)
    assert_array(out, reference_conv(x, w, b, stride, pad), call, "conv_forward", "out")


def check_conv_backward(conv_forward: Callable | None, conv_backward: Callable | None,
                        x_shape: tuple[int, ...], filters: int, kernel: tuple[int, int],
                        stride: int = 1, pad: int = 0, seed: int = 0,
                        numerical: bool = False) -> None:
    """``conv_backward(dout, cache)`` against autograd on F.conv2d, or with ``numerical``
    (dx only) against centred differences of F.conv2d. The cache comes from the student's
    own ``conv_forward`` (only its cache is used, not its output).
    """
    require_defined(conv_forward, "conv_forward")
    require_defined(conv_backward, "conv_backward")
    x, w, b = _conv_inputs(x_shape, filters, kernel, seed)
    _, cache, _ = _forward(conv_forward, x, w, b, stride, pad)
    dout = np.random.default_rng(seed + 1).normal(size=reference_conv(x, w, b, stride,
                                                                      pad).shape)
    call = (f"conv_backward(dout of shape {dout.shape}, cache) after "
            + call_text("conv_forward", x, w, b, stride=stride, pad=pad))
    grads = conv_backward(dout.copy(), cache)
    if not (isinstance(grads, tuple | list) and len(grads) == 3):
        _fail(call, f"must return (dx, dw, db), got {type(grads).__name__}", "conv_backward")
    if numerical:
        expected = reference_conv_dx_numerical(x, w, b, dout, stride, pad)
        assert_array(grads[0], expected, call, "conv_backward",
                     "dx (against centred differences of F.conv2d)", atol=1e-6)
        return
    for got, expected, what in zip(grads, reference_conv_grads(x, w, b, dout, stride, pad),
                                   ("dx", "dw", "db"), strict=True):
        assert_array(got, expected, call, "conv_backward", what)
