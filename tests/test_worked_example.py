"""The worked example: inputs recovered from the report reproduce every number it prints."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils import figures
from course_utils.instructor.solutions import reference_layers
from course_utils.part_two import worked_example as we
from course_utils.part_two import worked_example_checks as we_checks
from course_utils.part_two import worked_example_recovery as recovery
from course_utils.part_two import worked_example_search as pixel_search
from course_utils.report import value

LAYERS = reference_layers()  # notebook 06's solutions


@pytest.fixture(scope="module")
def inputs() -> we.Inputs:
    return recovery.recover_inputs(bound=1.0)  # the [-3, 3] search is shown in notebook 06


@pytest.fixture(scope="module")
def results(inputs: we.Inputs) -> dict[str, np.ndarray]:
    return we.forward_backward(inputs, LAYERS)


def test_recovered_scalars_and_weights_sit_on_the_two_decimal_grid() -> None:
    lr, bias = recovery.recover_lr_and_bias()
    assert lr == pytest.approx(0.5, abs=1e-12)
    np.testing.assert_allclose(bias, 0.0, atol=1e-12)
    # 8-decimal prints: the SGD step undone lands within print noise of hundredths
    assert we.distance_to_grid(recovery.recover_fc_weights(lr)) < 1e-8
    kernel, residual = recovery.recover_kernel()
    assert residual < 1e-8 and we.distance_to_grid(kernel) < 1e-7
    # both rows of dL/dW give the same sigmoid outputs
    a = recovery.recover_sigmoid_outputs()
    np.testing.assert_allclose(a[0], a[1], atol=1e-7)


def test_grid_solutions_finds_every_integer_point_and_no_other() -> None:
    coeffs, target, bound, tol = np.array([1.0, 0.5, -0.25, 2.0]), 1.25, 3, 1e-9
    found = pixel_search.grid_solutions(target, coeffs, bound, tol)
    assert list(found.columns) == ["n0", "n1", "n2", "n3"]
    n = np.arange(-bound, bound + 1)
    grid = np.stack(np.meshgrid(n, n, n, n, indexing="ij"), axis=-1).reshape(-1, 4)
    expected = grid[np.abs(grid @ coeffs - target) <= tol]
    assert sorted(map(tuple, found.to_numpy())) == sorted(map(tuple, expected))
    assert len(expected) > 0


def test_the_image_search_is_unique_and_matches_the_stated_inputs(inputs: we.Inputs) -> None:
    assert not np.isnan(inputs.x).any()
    differs = np.argwhere(inputs.x != we.PUBLIC_COPY_X)
    # exactly the two entries where the public copy disagrees with the report
    assert sorted(map(tuple, differs)) == [(2, 3), (3, 1)]
    assert inputs.x[2, 3] == 0.03 and inputs.x[3, 1] == 0.0


def test_every_printed_number_is_reproduced(results: dict[str, np.ndarray]) -> None:
    matches = we_checks.printed_matches(results)
    assert all(matches.values()), matches


def test_a_tie_at_the_printed_precision_counts_either_way() -> None:
    # 0.2450 rounds to 0.24 or 0.25 depending on its last bit (the CPU, the order of the sums):
    # both must count as "could be printed as 0.25", and so must 0.2549999999999
    for conv in (0.24499999999999997, 0.245, 0.24500000000000002, 0.2549999999999):
        assert we_checks.could_print_as([0.25], np.array([conv]), decimals=2), conv
    assert not we_checks.could_print_as([0.25], np.array([0.2449]), decimals=2)
    assert not we_checks.could_print_as([0.25], np.array([0.2551]), decimals=2)
    assert not we_checks.could_print_as([0.25, 0.1], np.array([0.25]), decimals=2)  # shape
    ragged = [(0.25,), (0.1, 0.2)]
    assert not we_checks.could_print_as(ragged, np.zeros((2, 2)), decimals=2)
    assert we_checks.could_print_as([0.14417249], np.array([0.144172485]), decimals=8)
    assert not we_checks.could_print_as([0.14417249], np.array([0.1441724849]), decimals=8)


def test_the_public_copy_does_not_reproduce_the_report(inputs: we.Inputs) -> None:
    public = we.Inputs(we.PUBLIC_COPY_X, inputs.kernel, inputs.fc_weights, inputs.fc_bias,
                       inputs.upstream, inputs.lr)
    matches = we_checks.printed_matches(we.forward_backward(public, LAYERS))
    assert not matches["conv_output"] and not matches["fc_delta_weights"]


def test_scratch_agrees_with_autograd(inputs: we.Inputs, results: dict[str, np.ndarray]) -> None:
    reference = we.forward_backward_torch(inputs)
    for key, expected in reference.items():
        np.testing.assert_allclose(results[key], expected, atol=1e-14, err_msg=key)


def test_garbled_prints_are_explained(results: dict[str, np.ndarray]) -> None:
    printed = value("conv_delta_input_as_printed")
    np.testing.assert_allclose(np.round(results["conv_delta_input"][:4], 8), printed[:4])
    np.testing.assert_allclose(np.round(results["conv_delta_input"][4, 1:], 8), printed[4])
    pool = value("maxpool_delta_as_printed")
    assert len(pool[1]) == 5
    for i in (0, 2, 3):
        np.testing.assert_allclose(np.round(results["maxpool_delta"][i], 8), pool[i])


def test_checks_table_flags_only_the_known_print_problems(
        inputs: we.Inputs, results: dict[str, np.ndarray]) -> None:
    rows = we_checks.report_checks(results, inputs)
    mismatched = {row.quantity for row in rows if not row.match}
    assert mismatched == {"maxpool_delta_as_printed", "conv_delta_input_as_printed",
                          "conv_delta_kernel"}
    assert all("unexplained" not in row.why for row in rows)


def test_checks_table_catches_a_wrong_result(inputs: we.Inputs,
                                             results: dict[str, np.ndarray]) -> None:
    wrong = dict(results, updated_kernel=results["updated_kernel"] + 1e-7)
    rows = {row.quantity: row for row in we_checks.report_checks(wrong, inputs)}
    assert not rows["updated_kernel"].match


def test_free_entries_change_no_printed_number(inputs: we.Inputs) -> None:
    assert (recovery.winner_margins() > 0).all()
    sweep = we_checks.sweep_free_entries(inputs, LAYERS, bound=1.0)
    assert sweep["printed numbers unchanged"].all() and sweep["winners unchanged"].all()
    assert (sweep["largest change (8-decimal results)"] == 0.0).all()
    assert (sweep["values that fit"] >= 1).all()
    joint = we_checks.random_free_entries(inputs, LAYERS, trials=50, seed=1)
    assert joint["same winners"] > 0 and joint["largest change"] == 0.0
    boxed = we_checks.random_free_entries(inputs, LAYERS, trials=50, seed=1, box=sweep)
    assert boxed["conv output as printed"] > 0
    assert boxed["all printed numbers match"] == boxed["conv output as printed"]


def test_entry_kinds_counts_searched_fixed_and_free_entries() -> None:
    searched = [(1, 1), (1, 2)]
    kind = recovery.entry_kinds(searched)
    assert kind.shape == (5, 5)
    assert kind[1, 1] == kind[1, 2] == 2
    assert (kind == 0).sum() == len(we.FREE_ENTRIES)
    assert (kind == 1).sum() == 25 - len(we.FREE_ENTRIES) - len(searched)


def test_plot_functions_return_figures_with_the_expected_axes(
        inputs: we.Inputs, results: dict[str, np.ndarray]) -> None:
    import matplotlib.pyplot as plt

    winners = recovery.recover_winners()
    image = figures.plot_recovered_image(inputs, [(1, 1)], winners)
    maps = figures.plot_backward_maps(results, winners)
    try:
        assert len(image.axes) == 1
        assert len(image.axes[0].patches) == len(winners)  # one box per winning window
        assert len(maps.axes) == 4
        assert len(maps.axes[0].patches) == len(winners)
    finally:
        plt.close(image)
        plt.close(maps)


def test_the_recovery_records_every_print_it_reads() -> None:
    reads = recovery.printed_reads()
    assert set(reads) == {"fc_delta_biases", "updated_fc_biases", "updated_fc_weights",
                          "fc_delta_weights", "sigmoid_delta", "conv_output",
                          "conv_delta_input_as_printed", "updated_kernel"}
    assert "X[2,3]" in reads["conv_output"] and "rows 1-4" in reads["conv_delta_input_as_printed"]
    assert we_checks.independent_prints(reads) == [
        "sigmoid_output", "fc_delta_input", "maxpool_delta_as_printed",
        "conv_delta_input_as_printed (row 5)"]
    # a print the recovery did not read would be independent evidence
    fewer = {k: v for k, v in reads.items() if k != "sigmoid_delta"}
    assert "sigmoid_delta" in we_checks.independent_prints(fewer)


def test_rows_of_prints_the_recovery_read_are_by_construction(
        inputs: we.Inputs, results: dict[str, np.ndarray]) -> None:
    reads = recovery.printed_reads()
    rows = {row.quantity: row for row in we_checks.report_checks(results, inputs, reads)}
    assert rows["conv_output"].verdict == "by construction"
    assert rows["sigmoid_delta"].verdict == "by construction"
    assert rows["fc_delta_input"].verdict == "match"  # never read, computed from other prints


def test_too_small_a_search_bound_names_the_smallest_that_works() -> None:
    assert recovery.smallest_search_bound() == pytest.approx(0.88)
    problem = recovery.search_bound_problem(recovery.window_search(0.5), 0.5)
    assert problem.startswith("search_bound = 0.5: the pixel search found 0 solutions")
    assert "-p search_bound 0.88" in problem
    assert recovery.search_bound_problem(recovery.window_search(0.88), 0.88) == ""
    with pytest.raises(ValueError, match="search_bound 0.88"):
        recovery.recover_inputs(bound=0.5)
