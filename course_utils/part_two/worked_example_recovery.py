"""Recovering the worked example's lost inputs from the numbers the report prints.

Each ``recover_*`` function derives one input from printed numbers (read from
``course_utils.report``):

    dL/dz       = FC delta biases                       (dL/db = dL/dz)
    lr, b       from the updated FC biases              (b - lr * dL/db, same b in both)
    W           = updated W + lr * FC delta weights     (undo the SGD step)
    a           = FC delta weights / dL/dz              (dL/dW = dL/dz a^T)
    maxima      = logit(a)                              (undo the sigmoid)
    winners     = argmax of each window of the printed conv output
    K           from the conv delta input               (linear in K: least squares)
    dL/dK       = (K - updated K) / lr                  (undo the SGD step)
    13 X entries from the maxima and dL/dK              (``worked_example_search``)

Every input is a number with two decimals; the recovered values sit on that grid to within
the report's print precision, which is what makes the search possible.

The other 11 image entries only ever appear in the rounded (2-decimal) conv output, so the
report bounds them without fixing them: for those we use the values of the public copy of this
exercise (``worked_example.PUBLIC_COPY_X``). ``worked_example_checks.sweep_free_entries``
shows that, within those bounds, no printed gradient or updated weight depends on that choice.

Every print the recovery reads goes through ``_printed``, which records it: ``printed_reads``
runs the whole recovery and returns what it read (and which part), so notebook 06 can list the
prints the recovery never read, the independent evidence, from the code rather than by hand.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from course_utils.part_two.worked_example import (
    FREE_ENTRIES,
    GRID,
    POOL,
    PUBLIC_COPY_X,
    Inputs,
    on_grid,
)
from course_utils.part_two.worked_example_search import EntrySearch, recover_window_entries
from course_utils.report import value

#: The documented range of the pixel search: 0 < search_bound <= LARGEST_SEARCH_BOUND.
LARGEST_SEARCH_BOUND = 5.0
#: Printed quantities read since the last ``printed_reads`` (key -> what each read was for).
_READS: dict[str, list[str]] = {}


def _printed(key: str, use: str) -> object:
    """The report's print ``key``, recorded as read for ``use`` (see ``printed_reads``)."""
    uses = _READS.setdefault(key, [])
    if use not in uses:
        uses.append(use)
    return value(key)


def _array(key: str, use: str) -> np.ndarray:
    return np.array(_printed(key, use), dtype=float)


def recover_upstream_gradient() -> np.ndarray:
    """dL/dz (2,): equal to the printed FC delta biases, since z = W a + b gives dz/db = 1."""
    return _array("fc_delta_biases", "as dL/dz")


def recover_lr_and_bias() -> tuple[float, np.ndarray]:
    """lr and b (2,) from ``updated_b = b - lr * dL/db``, assuming both biases start equal.

    Two equations ``c - lr * g_i = u_i`` in two unknowns (c, lr); their solution (b = 0) is
    checked, not assumed.
    """
    g, u = recover_upstream_gradient(), _array("updated_fc_biases", "for lr and b")
    lr = (u[1] - u[0]) / (g[0] - g[1])
    c = u[0] + lr * g[0]
    return float(lr), np.full(2, c)


def recover_fc_weights(lr: float) -> np.ndarray:
    """W (2, 4) = updated W + lr * dL/dW: the SGD step undone."""
    return _array("updated_fc_weights", "for W") + lr * _array("fc_delta_weights", "for W")


def recover_sigmoid_outputs() -> np.ndarray:
    """a (2, 4): each row of dL/dW = dL/dz a^T divided by its dL/dz (two estimates of a)."""
    return (_array("fc_delta_weights", "for the sigmoid outputs")
            / recover_upstream_gradient()[:, None])


def recover_pooled_maxima(a: np.ndarray) -> np.ndarray:
    """The max-pool outputs (4,) = logit(a) = log(a / (1 - a)), the sigmoid undone."""
    return np.log(a / (1.0 - a))


def recover_winners() -> list[tuple[int, int]]:
    """Position of the maximum of each 2x2 window of the printed 4x4 conv output (row-major)."""
    conv = _array("conv_output", "which entry wins each pooling window")
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


def correlate(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Valid 2-D cross-correlation (what conv2d computes) of image (H, W) with kernel (KH, KW):
    out (H - KH + 1, W - KW + 1). A tool for the recovery, not notebook 06's layers."""
    windows = np.lib.stride_tricks.sliding_window_view(image, kernel.shape)
    return np.einsum("ijkl,kl->ij", windows, kernel)


def conv_input_gradient(delta: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """dL/dX (H, W) of a stride-1 convolution for an output gradient (HOUT, WOUT): every
    output spreads delta * kernel over its window, i.e. the padded delta correlated with the
    kernel turned by 180 degrees."""
    kh, kw = kernel.shape
    return correlate(np.pad(delta, ((kh - 1, kh - 1), (kw - 1, kw - 1))), kernel[::-1, ::-1])


def recover_kernel(rows: int = 4) -> tuple[np.ndarray, float]:
    """K (2, 2) by least squares from the printed conv delta input's first ``rows`` rows.

    dL/dX is linear in K, so each of the four unit kernels gives one column of the system.
    The last printed row is short (garbled), hence only the first four rows by default.
    Returns K and the largest residual of the fit.
    """
    delta = maxpool_delta(_array("sigmoid_delta", "to fit the kernel"), recover_winners())
    printed = _printed("conv_delta_input_as_printed", f"rows 1-{rows}, to fit the kernel")
    printed = np.array(printed[:rows], dtype=float)
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
    return (kernel - _array("updated_kernel", "for dL/dK")) / lr


def winner_margins() -> np.ndarray:
    """(4,) For each pooling window of the printed conv output: lowest possible maximum minus
    highest possible runner-up, given that each printed entry is rounded to 2 decimals.

    All positive means every image consistent with the printed output has the same winners.
    """
    conv = _array("conv_output", "the winners' margins")
    margins = []
    for top in range(0, conv.shape[0], POOL):
        for left in range(0, conv.shape[1], POOL):
            window = np.sort(conv[top:top + POOL, left:left + POOL].ravel())
            margins.append((window[-1] - 0.005) - (window[-2] + 0.005))
    return np.array(margins)


def conv_output_fits(conv: np.ndarray) -> np.ndarray:
    """(4, 4) bool: where the conv output rounds to the printed value (edges count as fits)."""
    return np.abs(conv - _array("conv_output", "its rounding, to fix X[2,3]")) <= 0.005 + 1e-9


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
        conv = correlate(np.nan_to_num(x), inputs.kernel)
        # only outputs whose window has no unknown (NaN) pixel are checked
        known = correlate(np.isnan(x).astype(float), np.ones(inputs.kernel.shape)) == 0
        if np.all(conv_output_fits(conv)[known]):
            fits.append(v)
    return np.array(fits)


def window_search(bound: float = 3.0) -> EntrySearch:
    """The pixel search of notebook 06 on hundredths in [-bound, bound], from the inputs
    recovered before it (kernel, pooled maxima, sigmoid delta at the winners, dL/dK)."""
    upstream = recover_upstream_gradient()
    lr, _ = recover_lr_and_bias()
    fc_weights = on_grid(recover_fc_weights(lr))
    kernel = on_grid(recover_kernel()[0])
    maxima = np.round(recover_pooled_maxima(recover_sigmoid_outputs()[0]), 4)
    a = 1.0 / (1.0 + np.exp(-maxima))
    delta = (fc_weights.T @ upstream) * a * (1.0 - a)  # the sigmoid delta at each winner
    return recover_window_entries(kernel, maxima, delta, recover_kernel_gradient(kernel, lr),
                                  recover_winners(), bound)


def smallest_search_bound(largest: float = LARGEST_SEARCH_BOUND) -> float | None:
    """The smallest search bound (in hundredths) with exactly one solution, or None if there is
    none up to ``largest``: the largest |pixel| the search finds on [-largest, largest], checked
    by searching again at that bound."""
    found = window_search(largest)
    if found.solutions != 1:
        return None
    smallest = max(abs(v) for v in found.entries.values())
    return smallest if window_search(smallest).solutions == 1 else None


def search_bound_problem(search: EntrySearch, bound: float) -> str:
    """Why the pixel search on [-bound, bound] cannot go on ("" when it found one solution):
    a message naming ``search_bound`` and the smallest bound that works (computed)."""
    if search.solutions == 1:
        return ""
    smallest = smallest_search_bound()
    fix = (f"no bound up to {LARGEST_SEARCH_BOUND:g} gives exactly one" if smallest is None else
           f"the smallest bound with exactly one solution is {smallest:g} (the pixels it "
           f"finds reach {smallest:g} in size): rerun with -p search_bound {smallest:g} or "
           f"more, up to {LARGEST_SEARCH_BOUND:g}")
    return (f"search_bound = {bound:g}: the pixel search found {search.solutions} solutions "
            f"on the hundredths in [-{bound:g}, {bound:g}], so the image is not recovered; "
            f"{fix}")


def recover_inputs(bound: float = 3.0) -> Inputs:
    """Every input, recovered from the report's printed numbers (the steps of notebook 06).

    bound: the search range of the image entries (hundredths in [-bound, bound]).
    Raises ValueError naming the bound (and the smallest that works) if the image entries are
    not unique on that grid.
    """
    upstream = recover_upstream_gradient()
    lr, fc_bias = recover_lr_and_bias()
    fc_weights = on_grid(recover_fc_weights(lr))
    kernel = on_grid(recover_kernel()[0])
    search = window_search(bound)
    if search.solutions != 1:
        raise ValueError(search_bound_problem(search, bound))
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


def printed_reads(bound: float = 1.0) -> dict[str, str]:
    """Every printed quantity ``recover_inputs(bound)`` reads, and what for ({report key:
    uses}), recorded as the recovery runs (``_printed``). Any bound that recovers the image
    reads the same prints; the default is a fast one."""
    _READS.clear()
    recover_inputs(bound)
    return {key: "; ".join(uses) for key, uses in _READS.items()}


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
