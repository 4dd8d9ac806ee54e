"""Notebook 05's exercise checks: a student's function against torch autograd (float64).

Every check calls the student's function with plain floats (and activation names), computes
the answer with PyTorch's autograd, never with the course's own code
(``course_utils.part_two.neuron``,
``course_utils.part_two.chain_rule``), and raises ``AssertionError`` whose message says which call,
what
was expected, what came back and a hint.

The same checks run in the student's kernel (otter's ``grader.check``, the public tests) and in
the grader's process, where the function arguments are proxies into the sandbox that send and
return plain values (``course_utils.instructor.grading.grade``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from course_utils.exercise_checks.assertions import assert_number, fail, require_defined

#: The activations the network may use, as torch functions (autograd knows their derivatives).
TORCH_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}

#: The gradients ``backward`` returns, in the order the report derives them.
GRADIENT_KEYS = ("dE_dy", "dE_dw3", "dE_dh", "dE_dw1", "dE_dw2")

#: |ours - autograd| allowed: float64 rounding (~1e-16) amplified where sigmoid/tanh saturate;
#: a wrong formula (a missing factor, a sign, g' at y instead of z2) is off by far more.
ATOL, RTOL = 1e-10, 1e-8

HINTS = {  # the idea or the shape to check, never the code (issue 16)
    "relu_derivative": "the slope of max(0, z) on each side of 0; at z = 0 there is none, so "
                       "compare your choice with torch.relu's gradient there. Return a float.",
    "backward": "one line per equation of the report, from E back to each weight; check where "
                "each derivative is evaluated (pre-activation or output?) and compare with "
                "autograd.",
}


# ---------------------------------------------------------------------------------------------
# References (PyTorch autograd, float64)
# ---------------------------------------------------------------------------------------------


def reference_relu_derivative(z: float) -> float:
    """d relu / dz at ``z`` by autograd (PyTorch's choice at the kink z = 0 included)."""
    leaf = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    torch.relu(leaf).backward()
    return float(leaf.grad)


def reference_network(x1: float, x2: float, t: float, w1: float, w2: float, w3: float,
                      f: str, g: str) -> tuple[dict[str, float | str], dict[str, float]]:
    """(cache, gradients) of the one-neuron network by torch: the forward intermediates as
    ``forward`` returns them, and dE/dy, dE/dw3, dE/dh, dE/dw1, dE/dw2 by autograd."""
    def leaf(value: float) -> torch.Tensor:
        return torch.tensor(value, dtype=torch.float64, requires_grad=True)

    weights = [leaf(w) for w in (w1, w2, w3)]
    z1 = weights[0] * x1 + weights[1] * x2
    h = TORCH_ACTIVATIONS[f](z1)
    z2 = weights[2] * h
    y = TORCH_ACTIVATIONS[g](z2)
    h.retain_grad()  # h and y are not leaves: keep their gradients too
    y.retain_grad()
    error = 0.5 * (y - t) ** 2
    error.backward()
    values = {name: tensor.item() for name, tensor in
              (("z1", z1), ("h", h), ("z2", z2), ("y", y), ("E", error))}
    cache = {"x1": x1, "x2": x2, "t": t, "w1": w1, "w2": w2, "w3": w3, "f": f, "g": g} | values
    gradients = {"dE_dy": float(y.grad), "dE_dw3": float(weights[2].grad),
                 "dE_dh": float(h.grad), "dE_dw1": float(weights[0].grad),
                 "dE_dw2": float(weights[1].grad)}
    return cache, gradients


# ---------------------------------------------------------------------------------------------
# Test inputs
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------------


def check_relu_derivative(relu_derivative: Callable | None, points: list[float]) -> None:
    """``relu_derivative(z)`` against autograd's d relu / dz at every z of ``points``."""
    require_defined(relu_derivative, "relu_derivative")
    for z in points:
        expected = reference_relu_derivative(z)
        call = f"relu_derivative({z!r})"
        hint = HINTS["relu_derivative"]
        if z == 0:
            hint = ("at the kink z = 0 ReLU has no derivative; torch.autograd uses 0 there, and "
                    "so must you (so that your gradients and autograd's agree exactly).")
        assert_number(relu_derivative(z), expected, call, hint, atol=0.0)


def check_backward(backward: Callable | None, x1: float, x2: float, t: float, w1: float,
                   w2: float, w3: float, f: str, g: str) -> None:
    """``backward(cache)`` against autograd; the cache holds torch's forward intermediates."""
    require_defined(backward, "backward")
    cache, expected = reference_network(x1, x2, t, w1, w2, w3, f, g)
    call = (f"backward(cache) for x1={x1:.6g}, x2={x2:.6g}, t={t:.6g}, w1={w1:.6g}, "
            f"w2={w2:.6g}, w3={w3:.6g}, f={f!r}, g={g!r} (z1={cache['z1']:.6g}, "
            f"z2={cache['z2']:.6g})")
    got = backward(dict(cache))
    if not isinstance(got, dict):
        fail(call, f"must return a dict with the keys {list(GRADIENT_KEYS)}, got "
                   f"{type(got).__name__}: {str(got)[:200]}", HINTS["backward"])
    missing = [key for key in GRADIENT_KEYS if key not in got]
    if missing:
        fail(call, f"the returned dict has no {missing} (it has {sorted(map(str, got))})",
             HINTS["backward"])
    for key in GRADIENT_KEYS:
        assert_number(got[key], expected[key], call, HINTS["backward"], what=key.replace("_", "/"),
                      atol=ATOL, rtol=RTOL)


