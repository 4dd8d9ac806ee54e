"""The hand-derived chain-rule gradients against two independent references.

``autograd_gradients`` (PyTorch, float64) and ``finite_difference_gradients`` (centred
differences, via ``course_utils.part_two.scratch.numerical_gradient``) recompute what
``chain_rule.backward`` derives; ``gradient_errors`` compares the three at one point and
``random_points`` at random points for every (f, g) pair, with tables of the worst errors.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from course_utils.part_two.chain_rule import (
    ACTIVATION_NAMES,
    Forward,
    Gradients,
    Network,
    backward,
    forward,
)
from course_utils.part_two.chain_rule_descent import dead_units
from course_utils.part_two.scratch import bound_text, numerical_gradient
from course_utils.validation import require_int


def autograd_gradients(cache: Forward) -> Gradients:
    """The same gradients from torch.autograd in float64, for the example stored in ``cache``."""
    import torch  # only the reference needs torch; the hand-written code is plain Python

    def leaf(value: float) -> torch.Tensor:
        return torch.tensor(value, dtype=torch.float64, requires_grad=True)

    torch_fns = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}
    w1, w2, w3 = leaf(cache.w1), leaf(cache.w2), leaf(cache.w3)
    h = torch_fns[cache.f](w1 * cache.x1 + w2 * cache.x2)
    y = torch_fns[cache.g](w3 * h)
    h.retain_grad()  # h and y are not leaves: ask autograd to keep their gradients too
    y.retain_grad()
    E = 0.5 * (y - cache.t) ** 2
    E.backward()
    return Gradients(float(y.grad), float(w3.grad), float(h.grad), float(w1.grad),
                     float(w2.grad))


def finite_difference_gradients(net: Network, cache: Forward, step_size: float = 1e-5) -> Gradients:
    """The same gradients from centred finite differences (E(v + s) - E(v - s)) / 2s.

    s = step_size (CS231n calls it h; here h is the hidden neuron). dE/dy and dE/dh treat
    y and h as the free variable (everything downstream recomputed).
    """
    def error_of_weights(w: np.ndarray) -> np.ndarray:  # w: (3,) = (w1, w2, w3)
        run = forward(net, cache.x1, cache.x2, cache.t, w[0], w[1], w[2], cache.f, cache.g)
        return np.array(run.E)

    def error_of_hidden(hidden: np.ndarray) -> np.ndarray:  # hidden: () = h
        y = net.activation(cache.g).value(cache.w3 * float(hidden))
        return np.array(0.5 * (y - cache.t) ** 2)

    def error_of_output(y: np.ndarray) -> np.ndarray:  # y: ()
        return np.array(0.5 * (float(y) - cache.t) ** 2)

    one = np.array(1.0)  # E is a scalar: the upstream gradient dE/dE is 1
    weights = np.array([cache.w1, cache.w2, cache.w3])
    d_w = numerical_gradient(error_of_weights, weights, one, step_size)
    d_h = numerical_gradient(error_of_hidden, np.array(cache.h), one, step_size)
    d_y = numerical_gradient(error_of_output, np.array(cache.y), one, step_size)
    return Gradients(float(d_y), float(d_w[2]), float(d_h), float(d_w[0]), float(d_w[1]))


#: Gradients smaller than this are compared in absolute terms (see ``gradient_error``).
ERROR_FLOOR = 1e-5


def gradient_error(a: float, b: float) -> float:
    """Relative error |a - b| / max(ERROR_FLOOR, |a| + |b|) between two values of a gradient.

    CS231n floors the denominator at 1e-8; we floor it at 1e-5 because finite differences
    cannot resolve a gradient better than about eps |E| / h ~ 1e-11 (eps = 2.2e-16, h = 1e-5),
    and a saturated sigmoid/tanh computes g'(z) = 1 - tanh(z)^2 (or s (1 - s)) by cancelling
    digits. For a gradient of 1e-9 either effect alone gives a "relative error" near 1e-3
    although every method is right: below the floor, the error is in effect absolute.
    """
    return abs(a - b) / max(ERROR_FLOOR, abs(a) + abs(b))


#: Largest ``gradient_error`` that counts as agreement. A wrong formula (a missing factor, a
#: sign, g' taken at y instead of z2) gives errors of order 1. Autograd does the same float64
#: arithmetic in another order: only rounding separates it from the hand code, amplified where
#: an activation saturates. Finite differences add a truncation error ~h^2 and a rounding error
#: ~eps |E| / h (CS231n: below 1e-4 is usually fine, below 1e-7 "you should be happy").
AUTOGRAD_TOLERANCE = 1e-8
FINITE_DIFF_TOLERANCE = 1e-4


def format_error(error: float, tolerance: float) -> str:
    """An error as the notebook shows it: '< 1e-8' when below ``tolerance`` (agreement), else
    its value, e.g. '0.5' (a real disagreement); NaN (no point to compare) as 'n/a'.

    Below the tolerance the exact error is rounding: it changes from CPU to CPU, and a stored
    notebook output must not. ``order_of_magnitude`` shows it for reading, not for testing.
    """
    if math.isnan(error):
        return "n/a"
    return bound_text(tolerance) if error < tolerance else f"{error:.2g}"


def order_of_magnitude(error: float) -> str:
    """A tiny error as its order of magnitude, e.g. '< 1e-15'; 1e-3 or more as its value, e.g.
    '0.5'; exactly 0 as '0'. For reading only: at rounding size the order itself varies
    with the CPU (and the order of the operations)."""
    if math.isnan(error):
        return "n/a"
    if error == 0:
        return "0"
    if error >= 1e-3:  # a real disagreement: show the number itself
        return f"{error:.2g}"
    return f"< 1e{math.floor(math.log10(error)) + 1}"


#: Gradient fields and their labels, in the order the report derives them.
GRADIENT_NAMES = {"dE_dy": "dE/dy", "dE_dw3": "dE/dw3", "dE_dh": "dE/dh",
                  "dE_dw1": "dE/dw1", "dE_dw2": "dE/dw2"}


def gradient_errors(net: Network, cache: Forward) -> pd.DataFrame:
    """Hand-derived, autograd and finite-difference gradients and the two relative errors.

    One row per gradient (index as in ``GRADIENT_NAMES``); columns "by hand (report)",
    "torch.autograd", "finite differences", "rel. error vs autograd" and
    "rel. error vs finite diff.", all floats. ``gradient_table`` formats it for display.
    """
    hand, auto, numeric = (backward(net, cache), autograd_gradients(cache),
                           finite_difference_gradients(net, cache))
    rows = []
    for field, label in GRADIENT_NAMES.items():
        a, b, c = getattr(hand, field), getattr(auto, field), getattr(numeric, field)
        rows.append({"gradient": label, "by hand (report)": a, "torch.autograd": b,
                     "finite differences": c, "rel. error vs autograd": gradient_error(a, b),
                     "rel. error vs finite diff.": gradient_error(a, c)})
    return pd.DataFrame(rows).set_index("gradient")


def gradient_table(errors: pd.DataFrame, decimals: int = 5) -> pd.DataFrame:
    """``gradient_errors`` for display: values rounded, errors against the tolerances.

    Values are rounded to ``decimals``, well above the noise of finite differences (~1e-11:
    at the ReLU kink, dE/dw2 = -0.2499975 + 3e-11 would flip its 6th decimal from CPU to
    CPU); errors show as '< 1e-8' / '< 1e-4' (``AUTOGRAD_TOLERANCE``,
    ``FINITE_DIFF_TOLERANCE``) or, for a real disagreement, as their value.
    """
    shown = errors.copy()
    for column in ("by hand (report)", "torch.autograd", "finite differences"):
        shown[column] = shown[column].round(decimals) + 0.0  # + 0.0: -0.0 shows as 0.0
    shown["rel. error vs autograd"] = [format_error(e, AUTOGRAD_TOLERANCE)
                                       for e in errors["rel. error vs autograd"]]
    shown["rel. error vs finite diff."] = [format_error(e, FINITE_DIFF_TOLERANCE)
                                           for e in errors["rel. error vs finite diff."]]
    return shown


def near_relu_kink(cache: Forward, margin: float = 1e-3) -> bool:
    """True when a ReLU pre-activation is within ``margin`` of 0, where ReLU has no slope.

    Finite differences there straddle the kink and average the slopes 0 and 1, so they are
    not a fair reference. (A dead hidden ReLU feeding an output ReLU puts z2 exactly at 0.)
    """
    return ((cache.f == "relu" and abs(cache.z1) < margin)
            or (cache.g == "relu" and abs(cache.z2) < margin))


def random_points(net: Network, n_points: int, seed: int) -> pd.DataFrame:
    """Hand, autograd and finite-difference gradients at random points, for every (f, g) pair.

    Inputs, weights and targets are drawn from N(0, 1) with numpy's generator ``seed``.
    Returns one row per (f, g, point, gradient) with the three values, the relative errors
    vs_autograd and vs_finite_diff, and flags dead (a ReLU neuron is off) and near_kink
    (finite differences are not a fair reference there, see ``near_relu_kink``).
    """
    n_points = require_int("parameter 'n_random_points'", n_points)
    rng = np.random.default_rng(require_int("parameter 'seed'", seed, minimum=0))
    rows = []
    for f in ACTIVATION_NAMES:
        for g in ACTIVATION_NAMES:
            for point, (x1, x2, t, w1, w2, w3) in enumerate(rng.standard_normal((n_points, 6))):
                cache = forward(net, x1, x2, t, w1, w2, w3, f, g)
                hand, auto = backward(net, cache), autograd_gradients(cache)
                numeric = finite_difference_gradients(net, cache)
                for field, label in GRADIENT_NAMES.items():
                    a, b, c = getattr(hand, field), getattr(auto, field), getattr(numeric, field)
                    rows.append({"f": f, "g": g, "point": point, "gradient": label,
                                 "hand": a, "autograd": b, "finite_diff": c,
                                 "vs_autograd": gradient_error(a, b),
                                 "vs_finite_diff": gradient_error(a, c),
                                 "dead": bool(dead_units(cache)),
                                 "near_kink": near_relu_kink(cache)})
    return pd.DataFrame(rows)


def worst_by_pair(points: pd.DataFrame) -> pd.DataFrame:
    """Per (f, g): worst errors (finite differences away from kinks), dead and kink points."""
    per_point = points.groupby(["f", "g", "point"], sort=False)[["dead", "near_kink"]].first()
    counts = per_point.groupby(["f", "g"], sort=False).sum().astype(int)
    fair = points[~points["near_kink"]]
    return pd.DataFrame({
        "worst vs autograd": points.groupby(["f", "g"], sort=False)["vs_autograd"].max(),
        "worst vs finite diff.": fair.groupby(["f", "g"], sort=False)["vs_finite_diff"].max(),
        "points with a dead ReLU": counts["dead"],
        "points at a ReLU kink": counts["near_kink"],
    })


def worst_by_gradient(points: pd.DataFrame) -> pd.DataFrame:
    """Per gradient: worst error vs autograd (all points) and vs finite differences (fair)."""
    fair = points[~points["near_kink"]]
    return pd.DataFrame({
        "worst vs autograd": points.groupby("gradient", sort=False)["vs_autograd"].max(),
        "worst vs finite diff.": fair.groupby("gradient", sort=False)["vs_finite_diff"].max(),
    })


def format_errors(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of a ``worst_by_*`` table with its two error columns shown against the
    tolerances (``format_error``): '< 1e-8' and '< 1e-4' where the formulas agree."""
    shown = frame.copy()
    shown["worst vs autograd"] = [format_error(e, AUTOGRAD_TOLERANCE)
                                  for e in frame["worst vs autograd"]]
    shown["worst vs finite diff."] = [format_error(e, FINITE_DIFF_TOLERANCE)
                                      for e in frame["worst vs finite diff."]]
    return shown


def error_magnitudes(frame: pd.DataFrame) -> pd.DataFrame:
    """The two error columns of a ``worst_by_*`` table as orders of magnitude
    (``order_of_magnitude``): what rounding and truncation actually left, on this CPU."""
    return frame[["worst vs autograd", "worst vs finite diff."]].map(order_of_magnitude)
