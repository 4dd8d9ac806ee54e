"""The report's update rule repeated (gradient descent), and the ReLU units it can kill.

``gradient_descent`` applies w <- w - lr dE/dw with every gradient taken at the old weights;
``report_order_update`` shows what goes wrong when the report's three update lines are run in
order instead; ``dead_units`` names the ReLU neurons that pass back no gradient;
``descent_verdict`` says whether E really fell under the updates, or stalled.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from course_utils.part_two.chain_rule import (
    Forward,
    Gradients,
    Network,
    backward,
    forward,
    require_finite,
)
from course_utils.validation import require_int


def dead_units(cache: Forward) -> list[str]:
    """Names of ReLU neurons that are off (pre-activation <= 0), so pass back no gradient."""
    dead = []
    if cache.f == "relu" and cache.z1 <= 0:
        dead.append(f"hidden neuron h (f = relu, z1 = {cache.z1 + 0.0:.4g} <= 0)")
    if cache.g == "relu" and cache.z2 <= 0:  # + 0.0 below: print -0.0 as 0
        dead.append(f"output neuron y (g = relu, z2 = {cache.z2 + 0.0:.4g} <= 0)")
    return dead


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


def gradient_descent(net: Network, x1: float, x2: float, t: float, w1: float, w2: float,
                     w3: float, f: str = "sigmoid", g: str = "sigmoid", lr: float = 0.5,
                     steps: int = 50) -> list[Step]:
    """Repeat the report's update w <- w - lr dE/dw ``steps`` times on one example.

    Returns steps + 1 rows: the starting weights (step 0) and the weights after each update.
    All three gradients are computed at the current weights before any weight changes.
    """
    lr = require_finite(lr, "lr")
    if lr <= 0:
        raise ValueError(f"parameter 'lr' must be > 0 (e.g. 0.5), got {lr}")
    steps = require_int("parameter 'steps'", steps, minimum=0)
    history = []
    for step in range(steps + 1):
        cache = forward(net, x1, x2, t, w1, w2, w3, f, g)
        grads = backward(net, cache)
        history.append(Step(step, cache.w1, cache.w2, cache.w3, cache.E,
                            grads.dE_dw1, grads.dE_dw2, grads.dE_dw3))
        # One simultaneous update: every gradient above was computed at the old weights.
        w1 = cache.w1 - lr * grads.dE_dw1
        w2 = cache.w2 - lr * grads.dE_dw2
        w3 = cache.w3 - lr * grads.dE_dw3
    return history


def report_order_update(net: Network, x1: float, x2: float, t: float, w1: float, w2: float,
                        w3: float, f: str, g: str, lr: float) -> tuple[float, float, float]:
    """The report's three update lines read as a program run top to bottom, each line
    recomputing its gradient from the weights as they are at that moment.

    This is NOT what the report means (nor what gradient descent does); it shows why the
    update must use gradients computed before any weight changes. Returns (w1, w2, w3).
    """
    def gradients() -> Gradients:  # at the weights as they are now
        return backward(net, forward(net, x1, x2, t, w1, w2, w3, f, g))

    w1 = w1 - lr * gradients().dE_dw1
    w2 = w2 - lr * gradients().dE_dw2  # sees the new w1
    w3 = w3 - lr * gradients().dE_dw3  # sees the new w1 and w2
    return w1, w2, w3


def history_frame(history: list[Step]) -> pd.DataFrame:
    """The descent history as a table, one row per step."""
    frame = pd.DataFrame([vars(s) for s in history]).set_index("step")
    return frame + 0.0  # turns -0.0 (e.g. (y - t) * 0 with y < t) into 0.0 for display


@dataclass(frozen=True)
class DescentVerdict:
    """Whether repeated updates lowered E, judged on every step, not only on the two ends.

    falls: E ends lower, went down (or stayed at exactly 0) at most steps, and never stalled;
    steps: updates made; improved: how many of them lowered E (or kept it at exactly 0);
    stalled_at: the first step from which every gradient is exactly 0 while E > 0 (a dead
    ReLU unit: the weights can never move again), None if that never happens before the end;
    reason: one sentence saying which, with the numbers.
    """

    falls: bool
    steps: int
    improved: int
    stalled_at: int | None
    reason: str


def descent_verdict(history: list[Step]) -> DescentVerdict:
    """Judge a ``gradient_descent`` history: did E fall under the repeated updates?"""
    steps = len(history) - 1
    start, end = history[0].E, history[-1].E
    improved = sum(after.E < before.E or after.E == before.E == 0.0
                   for before, after in zip(history[:-1], history[1:], strict=True))
    stalled_at = None
    for row in reversed(history[:-1]):  # the last row's gradients are never applied
        if row.dE_dw1 == row.dE_dw2 == row.dE_dw3 == 0.0 and row.E > 0.0:
            stalled_at = row.step
        else:
            break
    if steps == 0:
        return DescentVerdict(False, 0, 0, None, "no update was made (steps = 0)")
    if stalled_at is not None:
        reason = (f"stalled after step {stalled_at}: every gradient is exactly 0 from there on "
                  f"(a dead ReLU unit), so E stayed at {history[stalled_at].E:.6f} for the last "
                  f"{steps - stalled_at} of {steps} steps")
        return DescentVerdict(False, steps, improved, stalled_at, reason)
    falls = end < start and 2 * improved > steps
    if falls:
        reason = f"E fell at {improved} of {steps} steps"
    elif end >= start:
        reason = (f"E did not fall ({start:.6f} -> {end:.6f}; it fell at {improved} of {steps} "
                  "steps): the learning rate is too large for this example")
    else:
        reason = (f"E fell at only {improved} of {steps} steps and rose at the others: the "
                  "learning rate is too large for this example")
    return DescentVerdict(falls, steps, improved, None, reason)
