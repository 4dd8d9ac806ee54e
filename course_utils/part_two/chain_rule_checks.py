"""The rows of notebook 05's "Checks against the report": the report's chain-rule formulas
and its claim that repeating the update lowers the error.
"""

from __future__ import annotations

import pandas as pd

from course_utils.checks import Check, check_claim
from course_utils.part_two.chain_rule_descent import Step, descent_verdict
from course_utils.part_two.chain_rule_gradient_checks import (
    AUTOGRAD_TOLERANCE,
    FINITE_DIFF_TOLERANCE,
    format_error,
)

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
    """The claim that repeating the update lowers E, for the notebook's own run: a "yes" needs
    E to fall at most steps without stalling (``descent_verdict``), not only end < start."""
    verdict = descent_verdict(history)
    start, end = history[0].E, history[-1].E
    computed = (f"E {start:.6f} -> {end:.6f} after {verdict.steps} steps (lr = {lr:g}), "
                f"lower at {verdict.improved} of them"
                + ("" if verdict.stalled_at is None else
                   f"; stalled after step {verdict.stalled_at}"))
    return check_claim("E falls under repeated updates", "Part Two, Chain Rule, "
                       "4. Updating Weights", "repeated until the network error is minimized",
                       computed, verdict.falls, why=verdict.reason)
