"""Notebook 02's exercise checks: parameter counts against PyTorch's own layers.

Every check calls the student's function with plain integers (and a bool), builds the same
layer with ``torch.nn`` on the ``meta`` device (shapes only, no memory: fc1's 36 million
weights cost nothing) and counts ``sum(p.numel() for p in layer.parameters())``; never the
course's own code (``course_utils.part_one.model``, ``course_utils.part_one.report_cnn``). A
failure says which
call, what was expected, what came back and a hint.

The same checks run in the student's kernel (otter's ``grader.check``, the public tests) and in
the grader's process, where the function arguments are proxies into the sandbox that send and
return plain values (``course_utils.instructor.grading.grade``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from torch import nn

from course_utils.exercise_checks.assertions import assert_integer, call_text, require_defined

HINTS = {  # the idea or the shape to check, never the code (issue 16)
    "conv1_parameters": "read conv1's row of Table 1: its input channels, filters and kernel "
                        "size, and whether it has biases.",
    "conv2d_parameters": "count the numbers each output channel needs (its kernel spans every "
                         "input channel) and the biases; kernel_size is an int or a pair.",
    "linear_parameters": "how many numbers do W and b of y = W x + b hold? A layer with 1 input "
                         "and 1 output has 2.",
}


def _count(layer: nn.Module) -> int:
    return sum(p.numel() for p in layer.parameters())


# ---------------------------------------------------------------------------------------------
# References (torch.nn layers on the meta device)
# ---------------------------------------------------------------------------------------------


def reference_conv2d_parameters(in_channels: int, out_channels: int,
                                kernel_size: int | tuple[int, int], bias: bool = True) -> int:
    """Parameters of ``nn.Conv2d(in_channels, out_channels, kernel_size, bias=bias)``."""
    return _count(nn.Conv2d(in_channels, out_channels, kernel_size, bias=bias, device="meta"))


def reference_linear_parameters(in_features: int, out_features: int, bias: bool = True) -> int:
    """Parameters of ``nn.Linear(in_features, out_features, bias=bias)``."""
    return _count(nn.Linear(in_features, out_features, bias=bias, device="meta"))


# ---------------------------------------------------------------------------------------------
# Test inputs
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------------


def check_conv1_parameters_format(conv1_parameters: Any) -> None:
    """Public: the answer is a positive integer (not whether it is right)."""
    if conv1_parameters is None or conv1_parameters is Ellipsis:
        raise AssertionError("conv1_parameters is not set: replace `...` with an integer")
    if (isinstance(conv1_parameters, bool)
            or not isinstance(conv1_parameters, int | np.integer) or conv1_parameters <= 0):
        raise AssertionError(f"conv1_parameters must be a positive integer (a count), got "
                             f"{conv1_parameters!r}")


def check_conv2d_parameters(conv2d_parameters: Callable | None,
                            cases: list[dict[str, Any]]) -> None:
    """``conv2d_parameters(in_channels, out_channels, kernel_size, bias=...)`` against
    nn.Conv2d's parameter count, for every case (a dict of those arguments)."""
    require_defined(conv2d_parameters, "conv2d_parameters")
    for case in cases:
        args = (case["in_channels"], case["out_channels"], case["kernel_size"])
        bias = case.get("bias", True)
        call = call_text("conv2d_parameters", *args, bias=bias)
        assert_integer(conv2d_parameters(*args, bias=bias),
                       reference_conv2d_parameters(*args, bias=bias), call,
                       HINTS["conv2d_parameters"])


def check_linear_parameters(linear_parameters: Callable | None,
                            cases: list[dict[str, Any]]) -> None:
    """``linear_parameters(in_features, out_features, bias=...)`` against nn.Linear's
    parameter count, for every case (a dict of those arguments)."""
    require_defined(linear_parameters, "linear_parameters")
    for case in cases:
        args = (case["in_features"], case["out_features"])
        bias = case.get("bias", True)
        call = call_text("linear_parameters", *args, bias=bias)
        assert_integer(linear_parameters(*args, bias=bias),
                       reference_linear_parameters(*args, bias=bias), call,
                       HINTS["linear_parameters"])
