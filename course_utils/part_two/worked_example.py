"""The report's worked example (Part Two): recover its inputs, then redo it from scratch.

The report runs one forward and backward pass through
conv (2x2 kernel, stride 1, no bias) -> 2x2 max-pool -> sigmoid -> fully connected (2 outputs)
and one SGD step, but the figure with the inputs was lost. Each ``recover_*`` function below
derives one input from numbers the report prints (read from ``course_utils.report``):

    dL/dz       = FC delta biases                       (dL/db = dL/dz)
    lr, b       from the updated FC biases              (b - lr * dL/db, same b in both)
    W           = updated W + lr * FC delta weights     (undo the SGD step)
    a           = FC delta weights / dL/dz              (dL/dW = dL/dz a^T)
    maxima      = logit(a)                              (undo the sigmoid)
    winners     = argmax of each window of the printed conv output
    K           from the conv delta input               (linear in K: least squares)
    dL/dK       = (K - updated K) / lr                  (undo the SGD step)
    13 X entries from the maxima and dL/dK              (a search over hundredths)

Every input is a number with two decimals; the recovered values sit on that grid to within
the report's print precision, which is what makes the search possible.

The other 11 image entries only ever appear in the rounded (2-decimal) conv output, so the
report bounds them without fixing them: for those we use the values of the public copy of this
exercise (``PUBLIC_COPY_X``). ``sweep_free_entries`` shows that no printed number depends on
that choice.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from course_utils.checks import Check, check_claim, check_value, format_value
from course_utils.part_two import scratch
from course_utils.report import value

#: The input image of the public copy of this exercise (Data Science Stack Exchange, question
#: 27506, "Back propagation in CNN"). DATA, not derived: we take its 11 entries that the
#: report leaves undetermined (``FREE_ENTRIES``). Its entries (2, 3) and (3, 1) differ from
#: what the report's numbers require (0.03 and 0.00; see notebook 06).
PUBLIC_COPY_X = np.array([
    [0.51, 0.90, 0.88, 0.84, 0.05],
    [0.40, 0.62, 0.22, 0.59, 0.10],
    [0.11, 0.20, 0.74, 0.33, 0.14],
    [0.47, 0.01, 0.85, 0.70, 0.09],
    [0.76, 0.19, 0.72, 0.17, 0.57],
])

#: Image entries that appear only in the rounded conv output (the report bounds, not fixes them).
FREE_ENTRIES = ((0, 0), (0, 1), (0, 4), (1, 0), (1, 4), (2, 0), (2, 4), (3, 0), (4, 0),
                (4, 1), (4, 2))

POOL = 2  # the report's max-pool: 2x2 windows, stride 2
GRID = 100  # inputs are printed with two decimals: integer multiples of 1/GRID


def _array(key: str) -> np.ndarray:
    return np.array(value(key), dtype=float)


def distance_to_grid(x: np.ndarray) -> float:
    """Largest distance of any entry of x from the two-decimal grid (0 when on it)."""
    return float(np.max(np.abs(x * GRID - np.round(x * GRID)))) / GRID


# ---------------------------------------------------------------------------------------
# Recovering the inputs, one printed result at a time
# ---------------------------------------------------------------------------------------


def recover_upstream_gradient() -> np.ndarray:
    """dL/dz (2,): equal to the printed FC delta biases, since z = W a + b gives dz/db = 1."""
    return _array("fc_delta_biases")


def recover_lr_and_bias() -> tuple[float, np.ndarray]:
    """lr and b (2,) from ``updated_b = b - lr * dL/db``, assuming both biases start equal.

    Two equations ``c - lr * g_i = u_i`` in two unknowns (c, lr); their solution (b = 0) is
    checked, not assumed.
    """
    g, u = recover_upstream_gradient(), _array("updated_fc_biases")
    lr = (u[1] - u[0]) / (g[0] - g[1])
    c = u[0] + lr * g[0]
    return float(lr), np.full(2, c)


def recover_fc_weights(lr: float) -> np.ndarray:
    """W (2, 4) = updated W + lr * dL/dW: the SGD step undone."""
    return _array("updated_fc_weights") + lr * _array("fc_delta_weights")


def recover_sigmoid_outputs() -> np.ndarray:
    """a (2, 4): each row of dL/dW = dL/dz a^T divided by its dL/dz (two estimates of a)."""
    return _array("fc_delta_weights") / recover_upstream_gradient()[:, None]


def recover_pooled_maxima(a: np.ndarray) -> np.ndarray:
    """The max-pool outputs (4,) = logit(a) = log(a / (1 - a)), the sigmoid undone."""
    return np.log(a / (1.0 - a))


def recover_winners() -> list[tuple[int, int]]:
    """Position of the maximum of each 2x2 window of the printed 4x4 conv output (row-major)."""
    conv = _array("conv_output")
    winners = []
    for top in range(0, conv.shape[0], POOL):
        for left in range(0, conv.shape[1], POOL):
            window = conv[top:top + POOL, left:left + POOL]
            i, j = np.unravel_index(np.argmax(window), window.shape)
            winners.append((top + int(i), left + int(j)))
    return winners


def maxpool_delta(sigmoid_delta: np.ndarray, winners: list[tuple[int, int]]) -> np.ndarray:
    """The 4x4 max-pool delta: each entry of the 2x2 sigmoid delta placed at its winner."""
    delta = np.zeros((4, 4))
    for d, (i, j) in zip(sigmoid_delta.ravel(), winners, strict=True):
        delta[i, j] = d
    return delta


def conv_input_gradient(delta: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """dL/dX (5, 5) of the 2x2 convolution for a 4x4 output gradient, via scratch.conv_backward."""
    image = np.zeros((1, 1, delta.shape[0] + kernel.shape[0] - 1,
                      delta.shape[1] + kernel.shape[1] - 1))
    _, cache = scratch.conv_forward(image, kernel[None, None], np.zeros(1))
    dx, _, _ = scratch.conv_backward(delta[None, None], cache)
    return dx[0, 0]


def recover_kernel(rows: int = 4) -> tuple[np.ndarray, float]:
    """K (2, 2) by least squares from the printed conv delta input's first ``rows`` rows.

    dL/dX is linear in K, so each of the four unit kernels gives one column of the system.
    The last printed row is short (garbled), hence only the first four rows by default.
    Returns K and the largest residual of the fit.
    """
    delta = maxpool_delta(_array("sigmoid_delta"), recover_winners())
    printed = np.array(value("conv_delta_input_as_printed")[:rows], dtype=float)
    columns = []
    for index in range(4):
        unit = np.zeros(4)
        unit[index] = 1.0
        columns.append(conv_input_gradient(delta, unit.reshape(2, 2))[:rows].ravel())
    system = np.stack(columns, axis=1)  # (rows * 5, 4)
    k, *_ = np.linalg.lstsq(system, printed.ravel(), rcond=None)
    return k.reshape(2, 2), float(np.max(np.abs(system @ k - printed.ravel())))


def recover_kernel_gradient(kernel: np.ndarray, lr: float) -> np.ndarray:
    """dL/dK (2, 2) = (K - updated K) / lr: the SGD step undone."""
    return (kernel - _array("updated_kernel")) / lr


# ---------------------------------------------------------------------------------------
# The 13 image entries inside the winning windows
# ---------------------------------------------------------------------------------------
# dL/dK[m, n] = sum over the 4 winners (p, q) of delta_pq * X[p + m, q + n], and each pooled
# maximum is <K, X[p:p+2, q:q+2]>. With X in hundredths these are 4 real equations (each with
# 4 unknown integers) and 4 integer equations. We solve each real equation on the grid by
# meeting in the middle, then join the four candidate lists on the shared pixels and the 4
# integer equations.


def grid_solutions(target: float, coeffs: np.ndarray, bound: int, tol: float) -> pd.DataFrame:
    """All integers n0..n3 in [-bound, bound] with |sum coeffs_i n_i - target| <= tol.

    Meet in the middle: sort every c0 n0 + c1 n1, then look up target - (c2 n2 + c3 n3).
    Returns a DataFrame with one row per solution and columns n0..n3.
    """
    n = np.arange(-bound, bound + 1)
    left = (coeffs[0] * n[:, None] + coeffs[1] * n[None, :]).ravel()  # every (n0, n1)
    right = (coeffs[2] * n[:, None] + coeffs[3] * n[None, :]).ravel()  # every (n2, n3)
    order = np.argsort(left)
    lo = np.searchsorted(left[order], target - right - tol)
    counts = np.searchsorted(left[order], target - right + tol) - lo
    right_index = np.repeat(np.arange(right.size), counts)
    within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    left_index = order[np.repeat(lo, counts) + within]
    size = n.size
    return pd.DataFrame({"n0": n[left_index // size], "n1": n[left_index % size],
                         "n2": n[right_index // size], "n3": n[right_index % size]})


@dataclass(frozen=True)
class EntrySearch:
    """Result of ``recover_window_entries``.

    entries: {(row, col): value} for the pixels of the winning windows (empty unless unique);
    solutions: how many grid points satisfy every equation (1 means unique);
    candidates: how many grid points each dL/dK equation allowed on its own.
    """

    entries: dict[tuple[int, int], float]
    solutions: int
    candidates: tuple[int, ...]


def _pixel(column: str, winners: list[tuple[int, int]]) -> tuple[int, int]:
    """The image pixel a column names: column "w<i>_<m><n>" is X[winner_i + (m, n)]."""
    i, m, n = int(column[1]), int(column[3]), int(column[4])
    return winners[i][0] + m, winners[i][1] + n


def _join(a: pd.DataFrame, b: pd.DataFrame, winners: list[tuple[int, int]],
          extra_keys: tuple[list[str], list[str]] = ([], [])) -> pd.DataFrame:
    """Rows of a and b that agree on every pixel they share (and on ``extra_keys``)."""
    a_keys, b_keys = list(extra_keys[0]), list(extra_keys[1])
    for col_a in a.columns:
        for col_b in b.columns:
            if col_a.startswith("w") and col_b.startswith("w") and (
                    _pixel(col_a, winners) == _pixel(col_b, winners)):
                a_keys.append(col_a)
                b_keys.append(col_b)
    if not a_keys:
        return a.merge(b, how="cross")
    return a.merge(b, left_on=a_keys, right_on=b_keys)


def recover_window_entries(kernel: np.ndarray, maxima: np.ndarray, delta: np.ndarray,
                           kernel_grad: np.ndarray, winners: list[tuple[int, int]],
                           bound: float = 3.0, tol: float = 2e-6) -> EntrySearch:
    """The pixels inside the 4 winning windows, searched on the hundredths in [-bound, bound].

    Inputs: kernel (2, 2) on the grid; maxima (4,) pooled maxima (multiples of 1e-4, since
    K and X are hundredths); delta (4,) the sigmoid delta at each winner; kernel_grad (2, 2)
    dL/dK; winners: the 4 winning positions. tol: allowed error of each dL/dK equation, in
    hundredths: the updated kernel is printed to 8 decimals (error <= 5e-9), so dL/dK is off by
    at most 5e-9 / lr = 1e-8, i.e. 1e-6 hundredths; the default doubles that.

    dL/dK[m, n] = sum_i delta_i X[winner_i + (m, n)]: one real equation per (m, n) in four
    unknown integers, solved alone on the grid. The four candidate tables are then joined
    where windows share a pixel and where each window's <K, patch> equals its maximum.
    """
    k = np.round(kernel * GRID).astype(int)
    targets = np.round(maxima * GRID * GRID).astype(int)  # <K, patch> in units of 1e-4
    r = int(round(bound * GRID))
    tables = {}
    for m in range(2):
        for n in range(2):
            table = grid_solutions(GRID * kernel_grad[m, n], delta, r, tol)
            tables[m, n] = table.set_axis([f"w{i}_{m}{n}" for i in range(4)], axis=1)
    # Left half: kernel column 0; right half: kernel column 1. Join each half, then meet.
    left = _join(tables[0, 0], tables[1, 0], winners)
    right = _join(tables[0, 1], tables[1, 1], winners)
    sums = [f"s{i}" for i in range(4)]
    for i in range(4):
        # <K, patch_i> = target_i, split as (column-0 part) = target_i - (column-1 part)
        left[sums[i]] = targets[i] - k[0, 0] * left[f"w{i}_00"] - k[1, 0] * left[f"w{i}_10"]
        right[sums[i]] = k[0, 1] * right[f"w{i}_01"] + k[1, 1] * right[f"w{i}_11"]
    joined = _join(left, right, winners, (sums, sums))
    entries: dict[tuple[int, int], float] = {}
    if len(joined) == 1:
        row = joined.iloc[0]
        for column in joined.columns:
            if column.startswith("w"):
                entries[_pixel(column, winners)] = int(row[column]) / GRID
    return EntrySearch(dict(sorted(entries.items())), len(joined),
                       tuple(len(t) for t in tables.values()))


# ---------------------------------------------------------------------------------------
# All inputs together, and the forward/backward pass from scratch
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inputs:
    """The worked example's inputs.

    x (5, 5) image; kernel (2, 2); fc_weights (2, 4); fc_bias (2,); upstream (2,) = dL/dz;
    lr: the SGD learning rate.
    """

    x: np.ndarray
    kernel: np.ndarray
    fc_weights: np.ndarray
    fc_bias: np.ndarray
    upstream: np.ndarray
    lr: float


def on_grid(x: np.ndarray | float) -> np.ndarray:
    """x rounded to two decimals: the recovered values are that grid plus print noise."""
    return np.round(np.asarray(x, dtype=float) * GRID) / GRID


#: Keys of the printed results and the decimals the report prints them with.
PRINTED_DECIMALS = {
    "conv_output": 2, "sigmoid_output": 2, "fc_delta_input": 4, "fc_delta_weights": 8,
    "fc_delta_biases": 2, "sigmoid_delta": 8, "updated_kernel": 8, "updated_fc_weights": 8,
    "updated_fc_biases": 3,
}


#: The prints that section 2 of notebook 06 recovered the inputs from, and what each gave: their
#: agreement is partly by construction. The others (conv output, sigmoid delta, FC delta input)
#: and the conv delta input's last row are independent evidence.
USED_FOR_RECOVERY = {
    "sigmoid_output": "the sigmoid outputs were recovered from the FC delta weights",
    "fc_delta_weights": "used to recover the sigmoid outputs and W",
    "fc_delta_biases": "used as the upstream gradient dL/dz",
    "updated_kernel": "used to recover the kernel gradient",
    "updated_fc_weights": "used to recover W",
    "updated_fc_biases": "used to recover the learning rate and bias",
}


def forward_backward(inputs: Inputs) -> dict[str, np.ndarray]:
    """One forward and backward pass and SGD step with ``course_utils.part_two.scratch``.

    conv (no bias) -> max-pool 2x2 -> sigmoid -> flatten -> fc; dL/dz = inputs.upstream.
    Returns every quantity the report prints, keyed as in ``course_utils.report`` (plus
    "maxpool_delta" (4, 4), "conv_delta_input" (5, 5), "conv_delta_kernel" (2, 2) and
    "winners", the flat index of each window's maximum).
    """
    x = inputs.x[None, None]  # (1, 1, 5, 5): one image, one channel
    kernel = inputs.kernel[None, None]  # (1, 1, 2, 2): one filter
    conv, conv_cache = scratch.conv_forward(x, kernel, np.zeros(1))
    pooled, pool_cache = scratch.maxpool_forward(conv, POOL, POOL)
    a, sigmoid_cache = scratch.sigmoid_forward(pooled)
    z, fc_cache = scratch.linear_forward(a.reshape(1, 4), inputs.fc_weights, inputs.fc_bias)

    da, dw, db = scratch.linear_backward(inputs.upstream[None], fc_cache)
    dpooled = scratch.sigmoid_backward(da.reshape(a.shape), sigmoid_cache)
    dconv = scratch.maxpool_backward(dpooled, pool_cache)
    dx, dk, _ = scratch.conv_backward(dconv, conv_cache)
    return {
        "conv_output": conv[0, 0], "sigmoid_output": a[0, 0], "fc_output": z[0],
        "fc_delta_input": da[0], "fc_delta_weights": dw, "fc_delta_biases": db,
        "sigmoid_delta": dpooled[0, 0], "maxpool_delta": dconv[0, 0],
        "conv_delta_input": dx[0, 0], "conv_delta_kernel": dk[0, 0],
        "updated_kernel": scratch.sgd_update(inputs.kernel, dk[0, 0], inputs.lr),
        "updated_fc_weights": scratch.sgd_update(inputs.fc_weights, dw, inputs.lr),
        "updated_fc_biases": scratch.sgd_update(inputs.fc_bias, db, inputs.lr),
        "winners": pool_cache[1][0, 0],
    }


def forward_backward_torch(inputs: Inputs) -> dict[str, np.ndarray]:
    """The same pass with torch.autograd in float64 (the independent check).

    The loss is L = dL/dz . z, so that dL/dz is exactly the report's upstream gradient.
    Returns the gradients under the keys of ``forward_backward``.
    """
    def leaf(array: np.ndarray) -> torch.Tensor:
        return torch.tensor(array, dtype=torch.float64, requires_grad=True)

    x, kernel = leaf(inputs.x[None, None]), leaf(inputs.kernel[None, None])
    weights, bias = leaf(inputs.fc_weights), leaf(inputs.fc_bias)
    conv = torch.nn.functional.conv2d(x, kernel)
    conv.retain_grad()
    pooled = torch.nn.functional.max_pool2d(conv, POOL)
    pooled.retain_grad()
    a = torch.sigmoid(pooled)
    a.retain_grad()
    z = torch.nn.functional.linear(a.reshape(1, 4), weights, bias)
    (z[0] * torch.tensor(inputs.upstream)).sum().backward()
    return {
        "conv_output": conv.detach()[0, 0].numpy(), "sigmoid_output": a.detach()[0, 0].numpy(),
        "fc_delta_input": a.grad[0, 0].numpy().ravel(), "fc_delta_weights": weights.grad.numpy(),
        "fc_delta_biases": bias.grad.numpy(), "sigmoid_delta": pooled.grad[0, 0].numpy(),
        "maxpool_delta": conv.grad[0, 0].numpy(), "conv_delta_input": x.grad[0, 0].numpy(),
        "conv_delta_kernel": kernel.grad[0, 0].numpy(),
    }


def recover_inputs(bound: float = 3.0) -> Inputs:
    """Every input, recovered from the report's printed numbers (the steps of notebook 06).

    bound: the search range of the image entries (hundredths in [-bound, bound]).
    Raises RuntimeError if the image entries are not unique on that grid.
    """
    upstream = recover_upstream_gradient()
    lr, fc_bias = recover_lr_and_bias()
    fc_weights = on_grid(recover_fc_weights(lr))
    kernel = on_grid(recover_kernel()[0])
    maxima = np.round(recover_pooled_maxima(recover_sigmoid_outputs()[0]), 4)
    a = 1.0 / (1.0 + np.exp(-maxima))
    delta = (fc_weights.T @ upstream) * a * (1.0 - a)  # the sigmoid delta at each winner
    winners = recover_winners()
    search = recover_window_entries(kernel, maxima, delta,
                                    recover_kernel_gradient(kernel, lr), winners, bound)
    if search.solutions != 1:
        raise RuntimeError(f"the image entries are not unique on the grid [-{bound}, {bound}]: "
                           f"{search.solutions} solutions; try another bound")
    x = np.full((5, 5), np.nan)
    for position in FREE_ENTRIES:
        x[position] = PUBLIC_COPY_X[position]
    for position, entry in search.entries.items():
        x[position] = entry
    inputs = Inputs(x, kernel, fc_weights, fc_bias, upstream, lr)
    for position in zip(*np.nonzero(np.isnan(x)), strict=True):
        # entries outside every winning window that are not free: fixed by the rounded output
        values = feasible_values(inputs, (int(position[0]), int(position[1])))
        if len(values) != 1:
            raise RuntimeError(f"image entry {position} is not fixed by the conv output: "
                               f"{len(values)} values fit")
        x[position] = values[0]
    return inputs


# ---------------------------------------------------------------------------------------
# Which printed numbers hold, and what the free entries change
# ---------------------------------------------------------------------------------------


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


def conv_output_fits(conv: np.ndarray) -> np.ndarray:
    """(4, 4) bool: where the conv output rounds to the printed value (edges count as fits)."""
    return np.abs(conv - _array("conv_output")) <= 0.005 + 1e-9


def feasible_values(inputs: Inputs, position: tuple[int, int],
                    bound: float = 1.0) -> np.ndarray:
    """Hundredths v in [-bound, bound] such that x[position] = v keeps the printed conv output.

    The other entries stay as in ``inputs``; NaN entries elsewhere are ignored (their outputs
    are not checked). Returns the sorted values that fit.
    """
    fits = []
    for v in np.arange(-round(bound * GRID), round(bound * GRID) + 1) / GRID:
        x = inputs.x.copy()
        x[position] = v
        conv, _ = scratch.conv_forward(np.nan_to_num(x)[None, None], inputs.kernel[None, None],
                                       np.zeros(1))
        # only outputs whose window has no unknown (NaN) pixel are checked
        known = scratch.conv_forward_loops(np.isnan(x)[None, None].astype(float),
                                           np.ones((1, 1, 2, 2)), np.zeros(1))[0, 0] == 0
        if np.all(conv_output_fits(conv[0, 0])[known]):
            fits.append(v)
    return np.array(fits)


def sweep_free_entries(inputs: Inputs, bound: float = 1.0) -> pd.DataFrame:
    """Move each free image entry alone over every value that keeps the printed conv output.

    Returns one row per free entry: the value used, the range and count of values that fit,
    whether every printed number still matches, whether the pooling winners stay, and the
    largest change of any 8-decimal result over the sweep.
    """
    base = forward_backward(inputs)
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
                                              inputs.fc_bias, inputs.upstream, inputs.lr))
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


def winner_margins() -> np.ndarray:
    """(4,) For each pooling window of the printed conv output: lowest possible maximum minus
    highest possible runner-up, given that each printed entry is rounded to 2 decimals.

    All positive means every image consistent with the printed output has the same winners.
    """
    conv = _array("conv_output")
    margins = []
    for top in range(0, conv.shape[0], POOL):
        for left in range(0, conv.shape[1], POOL):
            window = np.sort(conv[top:top + POOL, left:left + POOL].ravel())
            margins.append((window[-1] - 0.005) - (window[-2] + 0.005))
    return np.array(margins)


def random_free_entries(inputs: Inputs, trials: int = 200, seed: int = 0,
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
    base = forward_backward(inputs)
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
                                          inputs.upstream, inputs.lr))
        matches = printed_matches(results)
        if matches["conv_output"]:
            counts["conv output as printed"] += 1
            counts["all printed numbers match"] += all(matches.values())
        if np.array_equal(results["winners"], base["winners"]):
            counts["same winners"] += 1
            change = max(float(np.max(np.abs(results[k] - base[k]))) for k in keys)
            counts["largest change"] = max(counts["largest change"], change)
    return counts


# ---------------------------------------------------------------------------------------
# The checks table of notebook 06
# ---------------------------------------------------------------------------------------


def _rounded_equal(printed: object, ours: np.ndarray) -> bool:
    printed = np.asarray(printed, dtype=float)
    return printed.shape == ours.shape and bool(np.allclose(np.round(ours, 8), printed,
                                                            atol=1e-12))


def report_checks(results: dict[str, np.ndarray], inputs: Inputs) -> list[Check]:
    """Rows of the "Checks against the report" table for the worked example.

    results: from ``forward_backward``. Every printed matrix is compared at its printed
    decimals; the two garbled prints are compared row by row, and their rows are explained.
    """
    rows = [check_value(key, results[key], decimals=d, by_construction=USED_FOR_RECOVERY.get(key))
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
        "equal" if all(pool_rows_ok) else "differ", all(pool_rows_ok)))
    return rows


def entry_kinds(search_entries: Collection[tuple[int, int]]) -> np.ndarray:
    """Where each image entry comes from, as a (5, 5) int array.

    0 = free (public copy), 1 = fixed by the rounded conv output, 2 = searched.
    search_entries: the (row, col) positions found by ``recover_window_entries``.
    """
    kind = np.zeros((5, 5), dtype=int)
    for position in np.ndindex(5, 5):
        if position in search_entries:
            kind[position] = 2
        elif position not in FREE_ENTRIES:
            kind[position] = 1
    return kind


