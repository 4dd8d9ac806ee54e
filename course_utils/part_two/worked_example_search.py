"""The pixel search: the 13 image entries inside the worked example's winning windows.

dL/dK[m, n] = sum over the 4 winners (p, q) of delta_pq * X[p + m, q + n], and each pooled
maximum is <K, X[p:p+2, q:q+2]>. With X in hundredths these are 4 real equations (each with
4 unknown integers) and 4 integer equations. We solve each real equation on the grid by
meeting in the middle, then join the four candidate lists on the shared pixels and the 4
integer equations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from course_utils.part_two.worked_example import GRID


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
