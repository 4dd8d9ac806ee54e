"""What every exercise check uses: a failure message that names the call, the expectation,
what came back and a hint, and array comparisons that never trust the student's types.

The checks of each notebook (``checks_<topic>.py``) build on these. They run in two places: in
the student's kernel (otter's ``grader.check``, a convenience a student can fool) and in the
grader's process, where the student's functions are proxies into the sandbox
(``course_utils.instructor.grading.grade``), so the verdict is computed outside the student's
process.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: |ours - reference| allowed for float64 values of order 1 (rounding leaves ~1e-15).
ATOL = 1e-10


def fail(call: str, problem: str, hint: str | None = None) -> None:
    """Raise the ``AssertionError`` a student reads: ``call: problem`` and a hint line."""
    raise AssertionError(f"{call}: {problem}" + (f"\nHint: {hint}" if hint else ""))


def shape_text(value: Any) -> str:
    return f"array of shape {tuple(value.shape)}" if isinstance(value, np.ndarray) else repr(value)


def call_text(name: str, *args: Any, **kwargs: Any) -> str:
    """``name(x of shape (1, 1, 5, 5), 3, 3, stride=1, pad=0)``: a call, with arrays by shape."""
    parts = [shape_text(a) for a in args] + [f"{k}={shape_text(v)}" for k, v in kwargs.items()]
    return f"{name}({', '.join(parts)})"


def require_defined(function: Any, name: str) -> None:
    """Fail with a clear message when the student's ``name`` is missing (not run, or raised)."""
    if function is None:
        raise AssertionError(f"`{name}` is not defined: run the cell that defines it (and fix "
                             "the error it raises, if any).")


def assert_array(got: Any, expected: np.ndarray, call: str, hint: str | None = None,
                 what: str = "", atol: float = ATOL) -> None:
    """``got`` must be a numeric array shaped like ``expected`` and equal to it within ``atol``."""
    label = f"{what} " if what else ""
    if got is None:
        fail(call, f"{label}came back as None; did the function forget `return`?", hint)
    if not isinstance(got, np.ndarray):
        fail(call, f"expected {label}a numpy array of shape {expected.shape}, got "
                   f"{type(got).__name__}: {str(got)[:200]}", hint)
    if got.shape != expected.shape:
        fail(call, f"expected {label}of shape {expected.shape}, got shape {got.shape}", hint)
    if got.dtype.kind not in "biuf":
        fail(call, f"expected {label}of numbers, got dtype {got.dtype}", hint)
    difference = np.abs(got.astype(np.float64) - expected)
    bad = ~(difference <= atol)  # NaN counts as wrong
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        fail(call, f"{label}is wrong at {int(bad.sum())} of {bad.size} entries; first at index "
                   f"{index}: expected {expected[index]:.6g}, got {got[index]:.6g}", hint)


def assert_number(got: Any, expected: float, call: str, hint: str | None = None,
                  what: str = "", atol: float = ATOL, rtol: float = 0.0) -> None:
    """``got`` must be a real number (Python or numpy scalar, not bool) within
    ``atol + rtol * |expected|`` of ``expected``."""
    label = f"{what} " if what else ""
    if got is None:
        fail(call, f"{label}came back as None; did the function forget `return`?", hint)
    if isinstance(got, bool) or not isinstance(got, int | float | np.integer | np.floating):
        fail(call, f"expected {label}a number, got {type(got).__name__}: {str(got)[:200]}", hint)
    if not abs(float(got) - expected) <= atol + rtol * abs(expected):  # NaN counts as wrong
        fail(call, f"expected {label}{expected:.10g}, got {float(got):.10g}", hint)


def assert_integer(got: Any, expected: int, call: str, hint: str | None = None,
                   what: str = "") -> None:
    """``got`` must be an integer (Python or numpy, not bool, not float) equal to ``expected``."""
    label = f"{what} " if what else ""
    if isinstance(got, bool) or not isinstance(got, int | np.integer):
        fail(call, f"expected {label}an integer, got {type(got).__name__}: {str(got)[:200]}",
             hint)
    if int(got) != expected:
        fail(call, f"expected {label}{expected:,}, got {int(got):,}", hint)


def rng_array(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Standard-normal float64 test input, reproducible from ``seed``."""
    return np.random.default_rng(seed).normal(size=shape)
