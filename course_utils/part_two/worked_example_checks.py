"""The worked example against the report: which printed numbers our pass reproduces, what
the 11 free image entries change, and the rows of notebook 06's "Checks against the report".
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from course_utils.checks import Check, check_claim, check_value, format_value
from course_utils.part_two.worked_example import (
    FREE_ENTRIES,
    GRID,
    Inputs,
    Layers,
    forward_backward,
)
from course_utils.part_two.worked_example_recovery import (
    feasible_values,
    printed_reads,
    recover_kernel_gradient,
)
from course_utils.report import REPORT, value

#: The worked example's prints (every key printed under Part Two's convolution and result).
WORKED_EXAMPLE_PRINTS = [key for key, entry in REPORT.items()
                         if entry.source in ("Part Two, Convolution", "Part Two, Result")]

#: Keys of the printed results and the decimals the report prints them with.
PRINTED_DECIMALS = {
    "conv_output": 2, "sigmoid_output": 2, "fc_delta_input": 4, "fc_delta_weights": 8,
    "fc_delta_biases": 2, "sigmoid_delta": 8, "updated_kernel": 8, "updated_fc_weights": 8,
    "updated_fc_biases": 3,
}


#: Rows whose computed side section 2 of notebook 06 built from a print, and how: their agreement
#: is partly by construction. Every other print the recovery read (``printed_reads``) is labelled
#: by construction too; only the prints it never read are independent evidence
#: (``independent_prints``).
USED_FOR_RECOVERY = {
    "sigmoid_output": "the sigmoid outputs were recovered from the FC delta weights",
    "fc_delta_weights": "used to recover the sigmoid outputs and W",
    "fc_delta_biases": "used as the upstream gradient dL/dz",
    "updated_kernel": "used to recover the kernel gradient",
    "updated_fc_weights": "used to recover W",
    "updated_fc_biases": "used to recover the learning rate and bias",
}


def could_print_as(printed: object, ours: np.ndarray, decimals: int) -> bool:
    """True when rounding ``ours`` to ``decimals`` can give ``printed``: same shape, and every
    entry within half a unit of the last printed decimal.

    An exact tie counts (a conv output of 0.2450 could be printed as 0.24 or 0.25): on the
    grid of hundredths ties really occur, and which way float rounding sends one depends on
    its last bit, so on the CPU and the order of the sums. The 1e-6 slack absorbs that bit.
    """
    try:
        printed = np.asarray(printed, dtype=float)
    except (TypeError, ValueError):
        return False  # a ragged (garbled) print cannot equal a real matrix
    ours = np.asarray(ours, dtype=float)
    half_unit = 0.5 * 10.0 ** -decimals * (1 + 1e-6)
    return printed.shape == ours.shape and bool(np.all(np.abs(ours - printed) <= half_unit))


def printed_matches(results: dict[str, np.ndarray]) -> dict[str, bool]:
    """For each printed result: could the report have printed ours (``could_print_as``)?"""
    return {key: could_print_as(value(key), results[key], decimals)
            for key, decimals in PRINTED_DECIMALS.items()}


def sweep_free_entries(inputs: Inputs, layers: Layers, bound: float = 1.0) -> pd.DataFrame:
    """Move each free image entry alone over every value that keeps the printed conv output.

    layers: notebook 06's functions (``Layers``), which run every pass.
    Returns one row per free entry: the value used, the range and count of values that fit,
    whether every printed number still matches, whether the pooling winners stay, and the
    largest change of any 8-decimal result over the sweep.
    """
    base = forward_backward(inputs, layers)
    exact_keys = [k for k, d in PRINTED_DECIMALS.items() if d == 8] + [
        "conv_delta_input", "conv_delta_kernel", "maxpool_delta"]
    rows = []
    for position in FREE_ENTRIES:
        values = feasible_values(inputs, position, bound)
        all_match, same_winners, change = True, True, 0.0
        for v in values:
            x = inputs.x.copy()
            x[position] = v
            results = forward_backward(Inputs(x, inputs.kernel, inputs.fc_weights,
                                              inputs.fc_bias, inputs.upstream, inputs.lr),
                                       layers)
            all_match &= all(printed_matches(results).values())
            same_winners &= bool(np.array_equal(results["winners"], base["winners"]))
            change = max(change, max(float(np.max(np.abs(results[k] - base[k])))
                                     for k in exact_keys))
        rows.append({"entry": f"X[{position[0]},{position[1]}]", "used": inputs.x[position],
                     "lowest fit": values.min(), "highest fit": values.max(),
                     "values that fit": len(values), "printed numbers unchanged": all_match,
                     "winners unchanged": same_winners, "largest change (8-decimal results)":
                     change})
    return pd.DataFrame(rows)


def random_free_entries(inputs: Inputs, layers: Layers, trials: int = 200, seed: int = 0,
                        box: pd.DataFrame | None = None) -> dict[str, float]:
    """Set all 11 free entries at once to random values, ``trials`` times.

    box: None draws each entry uniformly from [-1, 1]; a ``sweep_free_entries`` table draws
    each from the two-decimal values between its "lowest fit" and "highest fit".
    Returns the number of trials, how many reproduce the printed conv output, how many of
    those reproduce every printed number, how many keep the pooling winners, and the largest
    change of any gradient or updated weight among the latter (0.0: the free entries act only
    through which position wins each window).
    """
    rng = np.random.default_rng(seed)
    base = forward_backward(inputs, layers)
    keys = ["fc_delta_input", "fc_delta_weights", "sigmoid_delta", "maxpool_delta",
            "conv_delta_input", "conv_delta_kernel", "updated_kernel", "updated_fc_weights",
            "updated_fc_biases"]
    counts = {"trials": trials, "conv output as printed": 0, "all printed numbers match": 0,
              "same winners": 0, "largest change": 0.0}
    for _ in range(trials):
        x = inputs.x.copy()
        for index, position in enumerate(FREE_ENTRIES):
            if box is None:
                x[position] = rng.uniform(-1.0, 1.0)
            else:
                low, high = (round(box.iloc[index][c] * GRID) for c in ("lowest fit",
                                                                        "highest fit"))
                x[position] = rng.integers(low, high + 1) / GRID
        results = forward_backward(Inputs(x, inputs.kernel, inputs.fc_weights, inputs.fc_bias,
                                          inputs.upstream, inputs.lr), layers)
        matches = printed_matches(results)
        if matches["conv_output"]:
            counts["conv output as printed"] += 1
            counts["all printed numbers match"] += all(matches.values())
        if np.array_equal(results["winners"], base["winners"]):
            counts["same winners"] += 1
            change = max(float(np.max(np.abs(results[k] - base[k]))) for k in keys)
            counts["largest change"] = max(counts["largest change"], change)
    return counts


def _rounded_equal(printed: object, ours: np.ndarray) -> bool:
    printed = np.asarray(printed, dtype=float)
    return printed.shape == ours.shape and bool(np.allclose(np.round(ours, 8), printed,
                                                            atol=1e-12))


def independent_prints(reads: dict[str, str]) -> list[str]:
    """The worked example's prints (or rows of them) the recovery never read, from
    ``printed_reads``: a print read only as "rows 1-n" leaves its later rows; a heading with
    no matrix (the conv delta kernel) is no evidence and is left out."""
    unread = []
    for key in WORKED_EXAMPLE_PRINTS:
        printed = value(key)
        if printed is None:
            continue
        if key not in reads:
            unread.append(key)
            continue
        rows = re.search(r"rows 1-(\d+)", reads[key])
        if rows and int(rows.group(1)) < len(printed):
            first, last = int(rows.group(1)) + 1, len(printed)
            unread.append(f"{key} (row {first})" if first == last else
                          f"{key} (rows {first}-{last})")
    return unread


def _read_reason(key: str, reads: dict[str, str]) -> str | None:
    """The by-construction reason of a printed result's row (None: the recovery never read
    it and built nothing from it)."""
    if key in USED_FOR_RECOVERY:
        return USED_FOR_RECOVERY[key]
    return f"the recovery read this print ({reads[key]})" if key in reads else None


def report_checks(results: dict[str, np.ndarray], inputs: Inputs,
                  reads: dict[str, str] | None = None) -> list[Check]:
    """Rows of the "Checks against the report" table for the worked example.

    results: from ``forward_backward``; reads: ``printed_reads()`` (computed when None). Every
    printed matrix is compared at its printed decimals; a print the recovery read, or built
    the compared value from, is labelled by construction; the two garbled prints are compared
    row by row, and their rows are explained.
    """
    reads = printed_reads() if reads is None else reads
    rows = [check_value(key, results[key], decimals=d, by_construction=_read_reason(key, reads))
            for key, d in PRINTED_DECIMALS.items()]

    pool_printed = value("maxpool_delta_as_printed")
    pool_rows_ok = [_rounded_equal(pool_printed[i], results["maxpool_delta"][i]) for i in (0, 2, 3)]
    rows.append(check_value(
        "maxpool_delta_as_printed", results["maxpool_delta"], decimals=8,
        why=f"garbled print: row 2 has {len(pool_printed[1])} entries "
            f"{list(pool_printed[1])}; ours is {format_value(results['maxpool_delta'][1], 8)} "
            f"(rows 1, 3, 4 equal ours: {all(pool_rows_ok)})"))

    dx_printed = value("conv_delta_input_as_printed")
    dx_rows_ok = all(_rounded_equal(dx_printed[i], results["conv_delta_input"][i])
                     for i in range(4))
    last_row_ok = _rounded_equal(dx_printed[4], results["conv_delta_input"][4][1:])
    rows.append(check_value(
        "conv_delta_input_as_printed", results["conv_delta_input"], decimals=8,
        why=f"last row printed with {len(dx_printed[4])} entries: it is ours without its "
            f"first zero: {last_row_ok}; rows 1-4 equal ours: {dx_rows_ok}"))

    implied = recover_kernel_gradient(inputs.kernel, inputs.lr)
    same = bool(np.allclose(implied, results["conv_delta_kernel"], atol=2e-8))
    rows.append(check_value(
        "conv_delta_kernel", results["conv_delta_kernel"], decimals=8,
        why=f"heading printed, matrix missing; (K - updated K) / lr agrees to 2e-8: {same}"))
    rows.append(check_claim(
        "conv delta input, rows 1-4", "Part Two, Result", "as printed (8 decimals)",
        "equal" if dx_rows_ok else "differ", dx_rows_ok,
        by_construction="used to recover the kernel (least squares)"))
    rows.append(check_claim(
        "conv delta input, last row", "Part Two, Result", "as printed (4 entries)",
        "equal to ours without its first zero" if last_row_ok else "differ", last_row_ok,
        why="the printed row does not equal ours without its first zero"))
    rows.append(check_claim(
        "max-pool delta, rows 1, 3, 4", "Part Two, Result", "as printed (8 decimals)",
        "equal" if all(pool_rows_ok) else "differ", all(pool_rows_ok),
        by_construction=_pool_reason(reads)))
    return rows


def _pool_reason(reads: dict[str, str]) -> str | None:
    """The max-pool delta is the sigmoid delta placed at the pooling winners: its rows agree by
    construction when the recovery read the sigmoid delta's print."""
    if "sigmoid_delta" not in reads:
        return None
    return ("its entries are the sigmoid delta at the pooling winners, and the recovery read "
            f"the sigmoid delta's print ({reads['sigmoid_delta']})")
