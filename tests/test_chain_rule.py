"""Tests for course_utils.part_two.chain_rule and its chain_rule_* modules: the report's chain-rule
network by hand, its gradient checks, gradient descent and the checks rows."""

from __future__ import annotations

import math
from functools import partial

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from course_utils.instructor.solutions import reference_network
from course_utils.part_two import chain_rule, chain_rule_descent, chain_rule_gradient_checks
from course_utils.part_two.chain_rule import (
    ACTIVATION_NAMES,
    activation_name,
    initial_weights,
    intermediates_table,
)
from course_utils.part_two.chain_rule_checks import (
    REPORT_FORMULAS,
    descent_check,
    formula_checks,
)
from course_utils.part_two.chain_rule_descent import dead_units, history_frame
from course_utils.part_two.chain_rule_gradient_checks import (
    AUTOGRAD_TOLERANCE,
    FINITE_DIFF_TOLERANCE,
    autograd_gradients,
    error_magnitudes,
    format_error,
    format_errors,
    gradient_error,
    gradient_table,
    near_relu_kink,
    order_of_magnitude,
    worst_by_gradient,
    worst_by_pair,
)

# Every function that runs the network takes it first; the tests run notebook 05's solutions.
NET = reference_network()
forward = partial(chain_rule.forward, NET)
backward = partial(chain_rule.backward, NET)
gradient_descent = partial(chain_rule_descent.gradient_descent, NET)
report_order_update = partial(chain_rule_descent.report_order_update, NET)
gradient_errors = partial(chain_rule_gradient_checks.gradient_errors, NET)
random_points = partial(chain_rule_gradient_checks.random_points, NET)
finite_difference_gradients = partial(chain_rule_gradient_checks.finite_difference_gradients, NET)
ACTIVATIONS = {name: NET.activation(name) for name in ACTIVATION_NAMES}

PAIRS = [(f, g) for f in ACTIVATIONS for g in ACTIVATIONS]
FIELDS = ("dE_dy", "dE_dh", "dE_dw1", "dE_dw2", "dE_dw3")

# Moderate values keep sigmoid/tanh away from total saturation, where every method gives 0.
number = st.floats(min_value=-3.0, max_value=3.0, allow_nan=False, allow_infinity=False)
example = st.tuples(number, number, number, number, number, number)


def assert_gradients_close(ours, reference, rtol: float, atol: float) -> None:
    for field in FIELDS:
        a, b = getattr(ours, field), getattr(reference, field)
        assert math.isclose(a, b, rel_tol=rtol, abs_tol=atol), (field, a, b)


@pytest.mark.parametrize(("f", "g"), PAIRS)
@settings(max_examples=30, deadline=None)
@given(values=example)
def test_hand_gradients_match_autograd_float64(f, g, values):
    x1, x2, t, w1, w2, w3 = values
    cache = forward(x1, x2, t, w1, w2, w3, f, g)
    assert_gradients_close(backward(cache), autograd_gradients(cache), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize(("f", "g"), PAIRS)
@settings(max_examples=15, deadline=None)
@given(values=st.tuples(*[st.floats(-2.0, 2.0)] * 6))
def test_hand_gradients_match_finite_differences(f, g, values):
    x1, x2, t, w1, w2, w3 = values
    cache = forward(x1, x2, t, w1, w2, w3, f, g)
    # Finite differences straddle a ReLU kink when a pre-activation is within h of 0: skip
    # those points (the derivative is undefined there; the kink has its own test below).
    # A plain return, not hypothesis.assume: hypothesis likes zeros, and rejecting too many
    # examples fails its health check.
    if near_relu_kink(cache):
        return
    # atol: with |inputs| <= 2, E <= ~160, and the rounding error eps E / h stays below 4e-9.
    assert_gradients_close(backward(cache), finite_difference_gradients(cache),
                           rtol=1e-6, atol=5e-8)


def test_forward_matches_the_report_equations_at_a_hand_computed_point():
    cache = forward(x1=1.0, x2=2.0, t=1.0, w1=0.5, w2=-0.25, w3=2.0, f="relu", g="tanh")
    assert cache.z1 == 0.0 and cache.h == 0.0  # 0.5*1 - 0.25*2 = 0 exactly
    cache = forward(x1=1.0, x2=2.0, t=1.0, w1=1.0, w2=0.5, w3=0.5, f="relu", g="relu")
    assert (cache.z1, cache.h, cache.z2, cache.y, cache.E) == (2.0, 2.0, 1.0, 1.0, 0.0)
    grads = backward(forward(x1=1.0, x2=2.0, t=0.0, w1=1.0, w2=0.5, w3=0.5, f="relu", g="relu"))
    # y = 1, t = 0: dE/dy = 1, dE/dw3 = 1*1*h = 2, dE/dh = w3 = 0.5, dE/dw1 = 0.5*x1, dE/dw2
    assert (grads.dE_dy, grads.dE_dw3, grads.dE_dh, grads.dE_dw1, grads.dE_dw2) == (
        1.0, 2.0, 0.5, 0.5, 1.0)


def test_relu_derivative_at_zero_is_zero_like_torch():
    cache = forward(x1=1.0, x2=2.0, t=1.0, w1=0.5, w2=-0.25, w3=2.0, f="relu", g="sigmoid")
    assert cache.z1 == 0.0
    ours, torch_grads = backward(cache), autograd_gradients(cache)
    assert ours.dE_dw1 == torch_grads.dE_dw1 == 0.0
    # Centred differences average the two one-sided slopes (0 and 1): not 0 at the kink.
    assert finite_difference_gradients(cache).dE_dw1 != 0.0


@pytest.mark.parametrize("g", list(ACTIVATIONS))
def test_dead_hidden_relu_gives_zero_gradients_and_a_stuck_descent(g):
    cache = forward(x1=1.0, x2=1.0, t=0.3, w1=-1.0, w2=-0.5, w3=0.7, f="relu", g=g)
    assert cache.z1 < 0 and cache.h == 0.0
    assert dead_units(cache) and "hidden" in dead_units(cache)[0]
    grads = backward(cache)
    assert grads.dE_dw1 == grads.dE_dw2 == grads.dE_dw3 == 0.0
    history = gradient_descent(1.0, 1.0, 0.3, -1.0, -0.5, 0.7, "relu", g, lr=0.5, steps=5)
    assert len({step.E for step in history}) == 1  # E never moves
    assert history[-1].w1 == -1.0 and history[-1].w3 == 0.7


def test_live_units_are_not_reported_dead():
    cache = forward(x1=1.0, x2=1.0, t=0.3, w1=1.0, w2=0.5, w3=0.7, f="relu", g="relu")
    assert dead_units(cache) == []
    assert dead_units(forward(1.0, 1.0, 0.3, 1.0, 0.5, -0.7, "relu", "relu"))[0].startswith(
        "output")


@pytest.mark.parametrize(("f", "g"), PAIRS)
@settings(max_examples=20, deadline=None)
@given(values=st.tuples(*[st.floats(-2.0, 2.0)] * 6))
def test_one_small_step_does_not_increase_e(f, g, values):
    x1, x2, t, w1, w2, w3 = values
    before, after = gradient_descent(x1, x2, t, w1, w2, w3, f, g, lr=1e-4, steps=1)
    assert after.E <= before.E + 1e-15
    grad_sq = before.dE_dw1 ** 2 + before.dE_dw2 ** 2 + before.dE_dw3 ** 2
    start = forward(x1, x2, t, w1, w2, w3, f, g)
    # A step that lands across a ReLU kink can stop in the flat, dead region with E unchanged;
    # away from kinks, a step large enough to register in float64 must lower E.
    near_kink = min(abs(start.z1), abs(start.z2)) < 1e-3 and "relu" in (f, g)
    if 1e-4 * grad_sq > 1e-10 and not near_kink:
        assert after.E < before.E


@pytest.mark.parametrize(("f", "g"), [("sigmoid", "sigmoid"), ("tanh", "sigmoid"),
                                      ("tanh", "tanh"), ("relu", "sigmoid")])
def test_descent_with_a_small_rate_lowers_e_every_step(f, g):
    history = gradient_descent(1.0, 0.5, 0.8, 0.4, 0.3, 0.9, f, g, lr=0.5, steps=40)
    errors = [s.E for s in history]
    assert all(later < earlier for earlier, later in zip(errors, errors[1:], strict=False))
    assert errors[-1] < 0.5 * errors[0]


def test_descent_uses_gradients_from_before_the_update():
    history = gradient_descent(1.0, -0.5, 0.2, 0.4, 0.3, 0.9, "tanh", "sigmoid", lr=0.7, steps=1)
    start, updated = history
    grads = backward(forward(1.0, -0.5, 0.2, 0.4, 0.3, 0.9, "tanh", "sigmoid"))
    assert updated.w1 == 0.4 - 0.7 * grads.dE_dw1
    assert updated.w2 == 0.3 - 0.7 * grads.dE_dw2
    assert updated.w3 == 0.9 - 0.7 * grads.dE_dw3
    assert (start.w1, start.w2, start.w3) == (0.4, 0.3, 0.9)


def test_descent_history_has_steps_plus_one_rows():
    history = gradient_descent(1.0, 0.5, 0.8, 0.4, 0.3, 0.9, steps=7)
    assert [s.step for s in history] == list(range(8))
    assert gradient_descent(1.0, 0.5, 0.8, 0.4, 0.3, 0.9, steps=0)[0].E == forward(
        1.0, 0.5, 0.8, 0.4, 0.3, 0.9).E


@pytest.mark.parametrize("name", ["softmax", "Sigmoid ", "", None, 3])
def test_bad_activation_name_lists_valid_names(name):
    with pytest.raises(ValueError, match=r"parameter 'g'.*'sigmoid', 'tanh', 'relu'"):
        forward(1.0, 1.0, 0.5, 0.1, 0.2, 0.3, f="sigmoid", g=name)
    with pytest.raises(ValueError, match=r"parameter 'f'"):
        activation_name(name, "f")


def test_activation_names_are_case_insensitive():
    assert activation_name("ReLU") == "relu"


@pytest.mark.parametrize(("kwargs", "parameter"), [
    ({"x1": float("nan")}, "x1"), ({"w3": float("inf")}, "w3"), ({"t": "high"}, "t"),
])
def test_non_finite_inputs_name_the_parameter(kwargs, parameter):
    values = {"x1": 1.0, "x2": 1.0, "t": 0.5, "w1": 0.1, "w2": 0.2, "w3": 0.3, **kwargs}
    with pytest.raises(ValueError, match=f"parameter '{parameter}'"):
        forward(**values)


@pytest.mark.parametrize(("kwargs", "parameter"), [
    ({"lr": 0.0}, "lr"), ({"lr": -0.1}, "lr"), ({"steps": -1}, "steps"), ({"steps": 2.5}, "steps"),
])
def test_bad_descent_settings_name_the_parameter(kwargs, parameter):
    with pytest.raises(ValueError, match=f"parameter '{parameter}'"):
        gradient_descent(1.0, 1.0, 0.5, 0.1, 0.2, 0.3, **kwargs)


def test_sigmoid_does_not_overflow_far_from_zero():
    assert ACTIVATIONS["sigmoid"].value(-1000.0) == 0.0
    assert ACTIVATIONS["sigmoid"].value(1000.0) == 1.0


def test_gradient_error_is_relative_above_the_floor_and_absolute_below():
    assert gradient_error(0.0, 0.0) == 0.0
    assert gradient_error(1.0, 3.0) == 0.5
    assert gradient_error(-1.0, 1.0) == 1.0  # a sign error is as wrong as it gets
    assert gradient_error(2e-9, 3e-9) == pytest.approx(1e-9 / 1e-5)


def test_format_error_shows_the_tolerance_not_the_rounding():
    # below the tolerance only the bound shows: the exact error is rounding and varies by CPU
    for error in (0.0, 3e-16, 7e-9):
        assert format_error(error, AUTOGRAD_TOLERANCE) == "< 1e-8"
    assert format_error(2e-5, FINITE_DIFF_TOLERANCE) == "< 1e-4"
    assert format_error(1e-8, AUTOGRAD_TOLERANCE) == "1e-08"  # at the bound: a disagreement
    assert format_error(0.5, AUTOGRAD_TOLERANCE) == "0.5"
    assert format_error(1.0, FINITE_DIFF_TOLERANCE) == "1"
    assert format_error(math.nan, FINITE_DIFF_TOLERANCE) == "n/a"


def test_order_of_magnitude():
    assert order_of_magnitude(0.0) == "0"
    assert order_of_magnitude(3e-16) == "< 1e-15"
    assert order_of_magnitude(1e-9) == "< 1e-8"
    assert order_of_magnitude(0.5) == "0.5" and order_of_magnitude(1.0) == "1"


def test_gradient_table_at_the_relu_kink():
    kink = forward(x1=1.0, x2=2.0, t=1.0, w1=0.5, w2=-0.25, w3=2.0, f="relu", g="sigmoid")
    errors = gradient_errors(kink)
    assert list(errors.index) == list(REPORT_FORMULAS)
    assert (errors["rel. error vs autograd"] < AUTOGRAD_TOLERANCE).all()
    table = gradient_table(errors)
    assert (table["rel. error vs autograd"] == "< 1e-8").all()
    # finite differences average the slopes 0 and 1 at the kink: half the right-hand slope
    assert list(table["rel. error vs finite diff."]) == ["< 1e-4"] * 3 + ["1", "1"]
    assert list(table["finite differences"]) == [-0.5, 0.0, -0.25, -0.125, -0.25]
    assert str(table.loc["dE/dw1", "by hand (report)"]) == "0.0"  # not -0.0


def test_gradient_table_rounds_away_finite_difference_noise():
    cache = forward(1.0, 0.5, 0.8, 0.4, 0.3, 0.9, "tanh", "sigmoid")
    shown = gradient_table(gradient_errors(cache))
    # finite differences are off by ~1e-11: at 5 decimals all three columns agree
    assert (shown["by hand (report)"] == shown["finite differences"]).all()
    assert (shown["by hand (report)"] == shown["torch.autograd"]).all()


def test_random_points_cover_every_pair_and_gradient():
    points = random_points(n_points=3, seed=0)
    assert len(points) == len(PAIRS) * 3 * len(FIELDS)
    by_pair, by_gradient = worst_by_pair(points), worst_by_gradient(points)
    assert len(by_pair) == len(PAIRS) and list(by_gradient.index) == list(REPORT_FORMULAS)
    shown = format_errors(by_pair)
    assert (shown["worst vs autograd"] == "< 1e-8").all()
    assert (shown["worst vs finite diff."] == "< 1e-4").all()
    assert shown["points with a dead ReLU"].equals(by_pair["points with a dead ReLU"])
    magnitudes = error_magnitudes(by_pair)
    assert list(magnitudes.columns) == ["worst vs autograd", "worst vs finite diff."]
    assert magnitudes.map(lambda text: text == "0" or text.startswith("< 1e-")).all().all()
    assert (by_gradient["worst vs autograd"] < AUTOGRAD_TOLERANCE).all()
    assert (by_gradient["worst vs finite diff."] < FINITE_DIFF_TOLERANCE).all()
    assert random_points(3, seed=0).equals(points)  # seeded: same points every run
    with pytest.raises(ValueError, match="n_random_points"):
        random_points(n_points=0, seed=0)


def test_relu_relu_dead_hidden_unit_puts_the_output_on_its_kink():
    points = random_points(n_points=20, seed=0)
    relu_relu = points[(points["f"] == "relu") & (points["g"] == "relu")]
    dead_hidden = relu_relu[relu_relu["dead"] & relu_relu["near_kink"]]
    assert len(dead_hidden) > 0  # z1 < 0 -> h = 0 -> z2 = w3 * 0 = 0 exactly
    fair = worst_by_pair(points).loc[("relu", "relu"), "worst vs finite diff."]
    assert fair < FINITE_DIFF_TOLERANCE


def test_formula_checks_fail_when_the_hand_gradient_is_wrong():
    worst = worst_by_gradient(random_points(n_points=2, seed=1))
    assert all(row.match for row in formula_checks(worst, 2))
    worst.loc["dE/dw1", "worst vs finite diff."] = 0.5  # what a wrong formula would give
    rows = {row.quantity: row for row in formula_checks(worst, 2)}
    assert not rows["dE/dw1"].match and rows["dE/dw2"].match
    assert rows["dE/dw2"].computed.startswith("worst rel. error vs autograd < 1e-8, "
                                              "vs finite diff. < 1e-4")
    assert "vs finite diff. 0.5 " in rows["dE/dw1"].computed  # a failure shows its value


def test_descent_check_reports_a_stuck_dead_unit():
    alive = gradient_descent(1.0, 0.5, 0.8, 0.4, 0.3, 0.9, "tanh", "sigmoid", lr=2.0, steps=20)
    assert descent_check(alive, 2.0).match
    dead = gradient_descent(1.0, 1.0, 0.3, -1.0, -0.5, 0.7, "relu", "tanh", lr=0.5, steps=5)
    row = descent_check(dead, 0.5)
    assert not row.match and "dead ReLU" in row.why



def test_descent_check_is_no_when_the_unit_dies_although_e_ends_lower():
    # relu / sigmoid, lr 5: the hidden ReLU dies after two steps; E ends below its start,
    # but stays frozen for the last 48 steps. end < start alone would say "yes".
    history = gradient_descent(1.0, 0.5, 0.3, 0.4, 0.3, 0.9, "relu", "sigmoid", lr=5.0,
                               steps=50)
    assert history[-1].E < history[0].E
    verdict = chain_rule_descent.descent_verdict(history)
    assert not verdict.falls and verdict.stalled_at == 2 and verdict.steps == 50
    assert "stalled after step 2" in verdict.reason and "last 48 of 50 steps" in verdict.reason
    row = descent_check(history, 5.0)
    assert not row.match and row.why == verdict.reason
    assert row.computed.endswith("lower at 2 of them; stalled after step 2")


def test_descent_verdict_counts_the_steps_that_lowered_e():
    alive = gradient_descent(1.0, 0.5, 0.8, 0.4, 0.3, 0.9, "tanh", "sigmoid", lr=2.0, steps=20)
    verdict = chain_rule_descent.descent_verdict(alive)
    assert verdict.falls and verdict.improved == 20 and verdict.reason == "E fell at 20 of 20 steps"
    # reaching E = 0 exactly and staying there is minimised, not stalled
    solved = gradient_descent(1.0, 0.5, 0.5, 0.4, 0.3, 2.0, "relu", "sigmoid", lr=5.0, steps=10)
    assert solved[-1].E == 0.0 and chain_rule_descent.descent_verdict(solved).falls
    assert not chain_rule_descent.descent_verdict(alive[:1]).falls  # no step, no claim

def test_initial_weights_fill_only_the_missing_ones():
    assert initial_weights(0.1, 0.2, 0.3, seed=0) == (0.1, 0.2, 0.3)
    drawn = initial_weights(None, 0.2, None, seed=0)
    assert drawn[1] == 0.2 and drawn == initial_weights(None, 0.2, None, seed=0)
    assert drawn != initial_weights(None, 0.2, None, seed=1)
    with pytest.raises(ValueError, match="parameter 'w2'"):
        initial_weights(None, float("nan"), None, seed=0)


def test_report_order_update_differs_from_the_simultaneous_step():
    args = (1.0, 0.5, 0.8, 0.4, 0.3, 0.9, "tanh", "sigmoid")
    simultaneous = gradient_descent(*args, lr=2.0, steps=1)[1]
    in_order = report_order_update(*args, lr=2.0)
    assert in_order[0] == simultaneous.w1  # the first line sees no change yet
    assert in_order[1] != simultaneous.w2 and in_order[2] != simultaneous.w3


def test_tables_show_the_forward_pass_and_no_negative_zero():
    table = intermediates_table(forward(1.0, 0.5, 0.8, 0.4, 0.3, 0.9, "tanh", "sigmoid"))
    assert list(table.index) == ["z1", "h", "z2", "y", "E"]
    assert table.loc["z1", "value"] == 0.55
    frame = history_frame(gradient_descent(1.0, 0.5, 0.8, 0.4, 0.3, 0.9, "relu", "relu",
                                           lr=2.0, steps=3))
    assert not any(str(v) == "-0.0" for v in frame.to_numpy().ravel())


def test_a_wrong_formula_is_caught():
    # Taking g' at the output y instead of the pre-activation z2 is the classic slip; the
    # autograd comparison must reject it, or these tests could not fail.
    cache = forward(1.0, 0.5, 0.8, 0.4, 0.3, 0.9, "tanh", "sigmoid")
    wrong = (cache.y - cache.t) * ACTIVATIONS["sigmoid"].derivative(cache.y) * cache.h
    assert gradient_error(wrong, autograd_gradients(cache).dE_dw3) > 1e3 * AUTOGRAD_TOLERANCE


@pytest.mark.parametrize("seed", [-1, 1.5, "0", None])
def test_bad_seed_names_the_parameter(seed):
    with pytest.raises(ValueError, match="parameter 'seed'"):
        initial_weights(None, None, None, seed=seed)
    with pytest.raises(ValueError, match="parameter 'seed'"):
        random_points(n_points=1, seed=seed)
