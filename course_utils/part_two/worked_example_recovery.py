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
shows that no printed number depends on that choice.
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
from course_utils.part_two.worked_example_search import recover_window_entries
from course_utils.report import value


def _array(key: str) -> np.ndarray:
    return np.array(value(key), dtype=float)


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
        conv = correlate(np.nan_to_num(x), inputs.kernel)
        # only outputs whose window has no unknown (NaN) pixel are checked
        known = correlate(np.isnan(x).astype(float), np.ones(inputs.kernel.shape)) == 0
        if np.all(conv_output_fits(conv)[known]):
            fits.append(v)
    return np.array(fits)


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
