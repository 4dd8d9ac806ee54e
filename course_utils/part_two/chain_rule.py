"""The report's chain-rule network (Part Two, "Chain Rule"), by hand, in plain Python.

The network has two inputs, one hidden neuron and one output neuron, no biases:

    z1 = w1 x1 + w2 x2      h = f(z1)          (hidden pre-activation and output)
    z2 = w3 h               y = g(z2)          (output pre-activation and output)
    E  = 1/2 (y - t)^2                         (squared error against the target t)

``forward`` returns every intermediate, ``backward`` applies the chain rule exactly as the
report writes it, and ``gradient_descent`` repeats the report's update rule. The forward and
backward passes themselves are written in notebook 05 and exported to
``course_utils.part_two.neuron``;
here ``forward`` checks its arguments and both return dataclasses. Every quantity is a Python
float (a scalar): the point is the chain rule, not array shapes.

Two independent references check the hand-derived gradients: ``autograd_gradients`` (PyTorch,
float64) and ``finite_difference_gradients`` (centred differences, via
``course_utils.part_two.scratch.numerical_gradient``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from course_utils.checks import Check, check_claim
from course_utils.part_two import neuron
from course_utils.part_two.neuron import (  # noqa: F401  (re-exported: chain_rule's API since before neuron.py)
    ACTIVATION_FUNCTIONS,
    relu,
    relu_derivative,
    sigmoid,
    sigmoid_derivative,
    tanh,
    tanh_derivative,
)
from course_utils.part_two.scratch import bound_text, numerical_gradient

# ---- Activations: a named pair (value, derivative) -------------------------------------


@dataclass(frozen=True)
class Activation:
    """An activation function and its derivative, both evaluated at the pre-activation z.

    value(z) -> a; derivative(z) -> da/dz. Both take and return a float.
    """

    name: str
    value: Callable[[float], float]
    derivative: Callable[[float], float]


# The functions themselves (sigmoid, tanh, relu and their derivatives) are written in notebook
# 05 and exported from it into course_utils/part_two/neuron.py (one copy: edit the notebook, then
# `make export`); re-exported here.
ACTIVATIONS: dict[str, Activation] = {
    name: Activation(name, value, derivative)
    for name, (value, derivative) in ACTIVATION_FUNCTIONS.items()
}


def get_activation(name: str, parameter: str = "activation") -> Activation:
    """The activation called ``name``; ``parameter`` names the knob in the error message."""
    if not isinstance(name, str) or name.lower() not in ACTIVATIONS:
        valid = ", ".join(repr(n) for n in ACTIVATIONS)
        raise ValueError(f"unknown activation {name!r} for parameter {parameter!r}; "
                         f"valid names are {valid}")
    return ACTIVATIONS[name.lower()]


# ---- Forward and backward ----------------------------------------------------------------


@dataclass(frozen=True)
class Forward:
    """Everything the forward pass computed: the inputs, the weights and every intermediate.

    It is also the cache that ``backward`` reads (CS231n style). All fields are floats except
    the activation names f and g.
    """

    x1: float
    x2: float
    t: float
    w1: float
    w2: float
    w3: float
    f: str
    g: str
    z1: float  # w1 x1 + w2 x2, the hidden neuron's pre-activation
    h: float  # f(z1)
    z2: float  # w3 h, the output neuron's pre-activation
    y: float  # g(z2)
    E: float  # 1/2 (y - t)^2


@dataclass(frozen=True)
class Gradients:
    """The partial derivatives of E the report derives (all floats)."""

    dE_dy: float
    dE_dw3: float
    dE_dh: float
    dE_dw1: float
    dE_dw2: float


def _finite(value: float, parameter: str) -> float:
    """``value`` as a float, or a ValueError naming the parameter."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"parameter {parameter!r} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"parameter {parameter!r} must be finite, got {value!r}")
    return number


def _seed(seed: int) -> int:
    """``seed`` checked as an integer >= 0, or a ValueError naming the parameter."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"parameter 'seed' must be an integer >= 0 (e.g. 0), got {seed!r}")
    return int(seed)


def forward(x1: float, x2: float, t: float, w1: float, w2: float, w3: float,
            f: str = "sigmoid", g: str = "sigmoid") -> Forward:
    """Run the network on one example (x1, x2) with target t; return every intermediate."""
    x1, x2, t = _finite(x1, "x1"), _finite(x2, "x2"), _finite(t, "t")
    w1, w2, w3 = _finite(w1, "w1"), _finite(w2, "w2"), _finite(w3, "w3")
    f_name, g_name = get_activation(f, "f").name, get_activation(g, "g").name
    # the forward pass itself is notebook 05's, exported to course_utils/part_two/neuron.py
    return Forward(**neuron.forward(x1, x2, t, w1, w2, w3, f_name, g_name))


def backward(cache: Forward) -> Gradients:
    """The report's chain rule, one line per equation, from the output back to w1 and w2.

    A thin wrapper: the backward pass is notebook 05's ``backward``
    (course_utils/part_two/neuron.py),
    which reads the cache as a dict and returns the gradients as a dict.
    """
    return Gradients(**neuron.backward(asdict(cache)))


def dead_units(cache: Forward) -> list[str]:
    """Names of ReLU neurons that are off (pre-activation <= 0), so pass back no gradient."""
    dead = []
    if cache.f == "relu" and cache.z1 <= 0:
        dead.append(f"hidden neuron h (f = relu, z1 = {cache.z1 + 0.0:.4g} <= 0)")
    if cache.g == "relu" and cache.z2 <= 0:  # + 0.0 below: print -0.0 as 0
        dead.append(f"output neuron y (g = relu, z2 = {cache.z2 + 0.0:.4g} <= 0)")
    return dead


def initial_weights(w1: float | None, w2: float | None, w3: float | None,
                    seed: int) -> tuple[float, float, float]:
    """The three weights, with any None drawn from N(0, 1) using numpy's generator ``seed``."""
    draws = np.random.default_rng(_seed(seed)).standard_normal(3)  # always 3 draws: stable per seed
    chosen = [draws[i] if w is None else w for i, w in enumerate((w1, w2, w3))]
    return (_finite(chosen[0], "w1"), _finite(chosen[1], "w2"), _finite(chosen[2], "w3"))


def intermediates_table(cache: Forward, decimals: int = 6) -> pd.DataFrame:
    """Every quantity of the forward pass with the formula that produced it."""
    rows = [("z1", "w1 x1 + w2 x2", cache.z1), ("h", f"f(z1) = {cache.f}(z1)", cache.h),
            ("z2", "w3 h", cache.z2), ("y", f"g(z2) = {cache.g}(z2)", cache.y),
            ("E", "1/2 (y - t)^2", cache.E)]
    return pd.DataFrame([{"quantity": q, "formula": formula, "value": round(v, decimals)}
                         for q, formula, v in rows]).set_index("quantity")


# ---- Gradient descent ----------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One row of the descent history: the weights, the error and the gradients at them."""

    step: int
    w1: float
    w2: float
    w3: float
    E: float
    dE_dw1: float
    dE_dw2: float
    dE_dw3: float


def gradient_descent(x1: float, x2: float, t: float, w1: float, w2: float, w3: float,
                     f: str = "sigmoid", g: str = "sigmoid", lr: float = 0.5,
                     steps: int = 50) -> list[Step]:
    """Repeat the report's update w <- w - lr dE/dw ``steps`` times on one example.

    Returns steps + 1 rows: the starting weights (step 0) and the weights after each update.
    All three gradients are computed at the current weights before any weight changes.
    """
    lr = _finite(lr, "lr")
    if lr <= 0:
        raise ValueError(f"parameter 'lr' must be > 0 (e.g. 0.5), got {lr}")
    if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 0:
        raise ValueError(f"parameter 'steps' must be an integer >= 0, got {steps!r}")
    history = []
    for step in range(int(steps) + 1):
        cache = forward(x1, x2, t, w1, w2, w3, f, g)
        grads = backward(cache)
        history.append(Step(step, cache.w1, cache.w2, cache.w3, cache.E,
                            grads.dE_dw1, grads.dE_dw2, grads.dE_dw3))
        # One simultaneous update: every gradient above was computed at the old weights.
        w1 = cache.w1 - lr * grads.dE_dw1
        w2 = cache.w2 - lr * grads.dE_dw2
        w3 = cache.w3 - lr * grads.dE_dw3
    return history


def report_order_update(x1: float, x2: float, t: float, w1: float, w2: float, w3: float,
                        f: str, g: str, lr: float) -> tuple[float, float, float]:
    """The report's three update lines read as a program run top to bottom, each line
    recomputing its gradient from the weights as they are at that moment.

    This is NOT what the report means (nor what gradient descent does); it shows why the
    update must use gradients computed before any weight changes. Returns (w1, w2, w3).
    """
    w1 = w1 - lr * backward(forward(x1, x2, t, w1, w2, w3, f, g)).dE_dw1
    w2 = w2 - lr * backward(forward(x1, x2, t, w1, w2, w3, f, g)).dE_dw2  # sees the new w1
    w3 = w3 - lr * backward(forward(x1, x2, t, w1, w2, w3, f, g)).dE_dw3  # sees new w1, w2
    return w1, w2, w3


def history_frame(history: list[Step]) -> pd.DataFrame:
    """The descent history as a table, one row per step."""
    frame = pd.DataFrame([vars(s) for s in history]).set_index("step")
    return frame + 0.0  # turns -0.0 (e.g. (y - t) * 0 with y < t) into 0.0 for display


# ---- Two independent references -----------------------------------------------------------


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


def finite_difference_gradients(cache: Forward, step_size: float = 1e-5) -> Gradients:
    """The same gradients from centred finite differences (E(v + s) - E(v - s)) / 2s.

    s = step_size (CS231n calls it h; here h is the hidden neuron). dE/dy and dE/dh treat
    y and h as the free variable (everything downstream recomputed).
    """
    def error_of_weights(w: np.ndarray) -> np.ndarray:  # w: (3,) = (w1, w2, w3)
        run = forward(cache.x1, cache.x2, cache.t, w[0], w[1], w[2], cache.f, cache.g)
        return np.array(run.E)

    def error_of_hidden(hidden: np.ndarray) -> np.ndarray:  # hidden: () = h
        y = ACTIVATIONS[cache.g].value(cache.w3 * float(hidden))
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


def gradient_errors(cache: Forward) -> pd.DataFrame:
    """Hand-derived, autograd and finite-difference gradients and the two relative errors.

    One row per gradient (index as in ``GRADIENT_NAMES``); columns "by hand (report)",
    "torch.autograd", "finite differences", "rel. error vs autograd" and
    "rel. error vs finite diff.", all floats. ``gradient_table`` formats it for display.
    """
    hand, auto, numeric = (backward(cache), autograd_gradients(cache),
                           finite_difference_gradients(cache))
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


def random_points(n_points: int, seed: int) -> pd.DataFrame:
    """Hand, autograd and finite-difference gradients at random points, for every (f, g) pair.

    Inputs, weights and targets are drawn from N(0, 1) with numpy's generator ``seed``.
    Returns one row per (f, g, point, gradient) with the three values, the relative errors
    vs_autograd and vs_finite_diff, and flags dead (a ReLU neuron is off) and near_kink
    (finite differences are not a fair reference there, see ``near_relu_kink``).
    """
    if isinstance(n_points, bool) or not isinstance(n_points, int | np.integer) or n_points < 1:
        raise ValueError(f"parameter 'n_random_points' must be an integer >= 1, got {n_points!r}")
    rng = np.random.default_rng(_seed(seed))
    rows = []
    for f in ACTIVATIONS:
        for g in ACTIVATIONS:
            for point, (x1, x2, t, w1, w2, w3) in enumerate(rng.standard_normal((n_points, 6))):
                cache = forward(x1, x2, t, w1, w2, w3, f, g)
                hand, auto = backward(cache), autograd_gradients(cache)
                numeric = finite_difference_gradients(cache)
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


# ---- Checks against the report -----------------------------------------------------------

#: The report's formulas (Part Two, Chain Rule, "3. Backpropagation"), in its own notation.
REPORT_FORMULAS = {
    "dE/dy": "dE/dy = y - t",
    "dE/dw3": "dE/dw3 = (y - t) g'(w3 h) h",
    "dE/dh": "dE/dh = (y - t) g'(w3 h) w3",
    "dE/dw1": "dE/dw1 = (y - t) g'(w3 h) w3 f'(w1 x1 + w2 x2) x1",
    "dE/dw2": "dE/dw2 = (y - t) g'(w3 h) w3 f'(w1 x1 + w2 x2) x2",
}
REPORT_SOURCE = "Part Two, Chain Rule, 3. Backpropagation"


def formula_checks(worst: pd.DataFrame, n_points: int) -> list[Check]:
    """One claim row per report formula, from ``worst_by_gradient`` over ``n_points`` points."""
    rows = []
    for label, formula in REPORT_FORMULAS.items():
        auto = worst.loc[label, "worst vs autograd"]
        numeric = worst.loc[label, "worst vs finite diff."]
        computed = (f"worst rel. error vs autograd {format_error(auto, AUTOGRAD_TOLERANCE)}, "
                    f"vs finite diff. {format_error(numeric, FINITE_DIFF_TOLERANCE)} "
                    f"({n_points} random points x 9 (f, g) pairs)")
        match = auto < AUTOGRAD_TOLERANCE and numeric < FINITE_DIFF_TOLERANCE
        rows.append(check_claim(label, REPORT_SOURCE, formula, computed, match,
                                why="the hand formula disagrees with autograd or finite "
                                    "differences"))
    return rows


def descent_check(history: list[Step], lr: float) -> Check:
    """The claim that repeating the update lowers E, for the notebook's own run."""
    start, end = history[0].E, history[-1].E
    computed = f"E {start:.6f} -> {end:.6f} after {len(history) - 1} steps (lr = {lr:g})"
    stuck = all(step.dE_dw1 == step.dE_dw2 == step.dE_dw3 == 0.0 for step in history)
    why = ("every gradient is 0: a dead ReLU unit, the update cannot move" if stuck
           else "E did not fall: the learning rate is too large for this example")
    return check_claim("E falls under repeated updates", "Part Two, Chain Rule, "
                       "4. Updating Weights", "repeated until the network error is minimized",
                       computed, end < start, why=why)


# ---- Figures ------------------------------------------------------------------------------


