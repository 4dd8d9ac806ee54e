"""Checks that only the hidden tests call: the graded cases students never see (random shapes,
edge cases, the numeric answers). Instructors only: ``make release`` leaves them out of every
student file, and ``tests/test_student_bundle_leaks.py`` fails if one is shipped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from course_utils.exercise_checks.assertions import assert_integer, fail
from course_utils.exercise_checks.chain_rule import TORCH_ACTIVATIONS, check_backward
from course_utils.exercise_checks.im2col import HINTS as IM2COL_HINTS
from course_utils.exercise_checks.im2col import check_unfolded_shape_format
from course_utils.exercise_checks.parameters import HINTS as PARAMETER_HINTS
from course_utils.exercise_checks.parameters import (
    check_conv1_parameters_format,
    reference_conv2d_parameters,
)


def random_pool_cases(seed: int, count: int) -> list[dict[str, Any]]:
    """``count`` random (x_shape, pool, stride) whose window fits, overlapping ones included."""
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(count):
        pool, stride = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        h, w = int(rng.integers(pool, 9)), int(rng.integers(pool, 9))
        shape = (int(rng.integers(1, 3)), int(rng.integers(1, 4)), h, w)
        cases.append({"x_shape": shape, "pool": pool, "stride": stride,
                      "seed": int(rng.integers(0, 2**31))})
    return cases


def relu_test_points(seed: int, count: int) -> list[float]:
    """``count`` random z (N(0, 3^2)), then the edge cases: the kink 0.0 and -0.0, the
    smallest floats on either side of it, and large values."""
    rng = np.random.default_rng(seed)
    edges = [0.0, -0.0, 5e-324, -5e-324, 1e-300, -1e-300, 1e300, -1e300]
    return [float(z) for z in 3.0 * rng.standard_normal(count)] + edges


def random_network_cases(seed: int, count: int) -> list[dict[str, Any]]:
    """``count`` points per (f, g) pair: inputs, target and weights drawn from N(0, 1)."""
    rng = np.random.default_rng(seed)
    cases = []
    for f in TORCH_ACTIVATIONS:
        for g in TORCH_ACTIVATIONS:
            for x1, x2, t, w1, w2, w3 in rng.standard_normal((count, 6)):
                cases.append({"x1": float(x1), "x2": float(x2), "t": float(t), "w1": float(w1),
                              "w2": float(w2), "w3": float(w3), "f": f, "g": g})
    return cases


def check_backward_cases(backward: Callable | None, cases: list[dict[str, Any]]) -> None:
    """``check_backward`` at every case of ``random_network_cases`` (or any list of kwargs)."""
    for case in cases:
        check_backward(backward, **case)


def random_cases(seed: int, count: int, max_channels: int = 3) -> list[dict[str, Any]]:
    """``count`` random (x_shape, kernel, stride, pad) whose kernel fits the padded input."""
    rng = np.random.default_rng(seed)
    cases = []
    while len(cases) < count:
        n, c = int(rng.integers(1, 4)), int(rng.integers(1, max_channels + 1))
        h, w = int(rng.integers(1, 10)), int(rng.integers(1, 10))
        kh, kw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        stride, pad = int(rng.integers(1, 4)), int(rng.integers(0, 3))
        if kh <= h + 2 * pad and kw <= w + 2 * pad:
            cases.append({"x_shape": (n, c, h, w), "kernel": (kh, kw), "stride": stride,
                          "pad": pad, "seed": int(rng.integers(0, 2**31))})
    return cases


def check_unfolded_shape(unfolded_shape: Any) -> None:
    """Hidden: the (rows, columns) of the report's 3x3-over-5x5 example, from F.unfold."""
    check_unfolded_shape_format(unfolded_shape)
    expected = tuple(F.unfold(torch.zeros(1, 1, 5, 5), (3, 3)).shape[1:])
    if tuple(int(v) for v in unfolded_shape) != expected:
        fail("unfolded_shape", f"{tuple(unfolded_shape)} is not the shape of the unfolded "
                               "3x3-over-5x5 matrix", IM2COL_HINTS["unfolded_shape"])


def random_conv_cases(seed: int, count: int) -> list[dict[str, Any]]:
    """``count`` random Conv2d sizes: channels 1..512, square (int) or rectangular (pair)
    kernels 1..7, with and without bias."""
    rng = np.random.default_rng(seed)
    cases = []
    for index in range(count):
        kh, kw = (int(k) for k in rng.integers(1, 8, size=2))
        kernel: int | tuple[int, int] = kh if index % 2 == 0 else (kh, kw)
        cases.append({"in_channels": int(rng.integers(1, 513)),
                      "out_channels": int(rng.integers(1, 513)), "kernel_size": kernel,
                      "bias": bool(rng.integers(0, 2))})
    return cases


def random_linear_cases(seed: int, count: int) -> list[dict[str, Any]]:
    """``count`` random Linear sizes: features 1..300,000, with and without bias."""
    rng = np.random.default_rng(seed)
    return [{"in_features": int(rng.integers(1, 300_001)),
             "out_features": int(rng.integers(1, 1025)), "bias": bool(rng.integers(0, 2))}
            for _ in range(count)]


def check_conv1_parameters(conv1_parameters: Any) -> None:
    """Hidden: conv1 of the report's 1-channel model, nn.Conv2d(1, 128, 5) with its biases."""
    check_conv1_parameters_format(conv1_parameters)
    assert_integer(conv1_parameters, reference_conv2d_parameters(1, 128, 5), "conv1_parameters",
                   PARAMETER_HINTS["conv1_parameters"])
