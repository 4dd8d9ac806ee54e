"""How the "Checks against the report" table looks: the verdict first, every reason whole,
matrices side by side.

``ChecksTable`` is the DataFrame that ``checks_table`` / ``show_checks`` return. Its cells hold
the rows' full display strings (index it like any DataFrame); only its two reprs differ from
pandas': text/plain (what nbval compares) and text/html (what JupyterLab shows) cut no cell
(pandas cuts at ``display.max_colwidth``, 50 characters), and a matrix value is summarised in
its cell (shape, largest |report - ours| or "equal") and printed whole below the table, the
report's rows beside ours:

    match  quantity     why not  report              computed    source
    -----  -----------  -------  ------------------  ----------  ---------------------
    yes    conv_output           4x4 matrix (below)  4x4: equal  Part Two, Convolution

    conv_output (Part Two, Convolution)
      report          |  ours
      [ 0.25, -0.16]  |  [ 0.25, -0.16]
      ...

Both reprs print only the rows' strings, so a stored output is the same on any CPU.
"""

from __future__ import annotations

import ast
import html
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

#: A one-dimensional value up to this many characters stays whole in its cell.
INLINE_CHARS = 40
#: Marks a row of a side-by-side block where the report's row and ours differ.
DIFFERS_MARK = "  <- differs"


def parse_matrix(text: str) -> list | tuple | None:
    """The nested list / tuple a value string prints (``format_value`` output), when it is one
    that needs the side-by-side view (2-D, ragged, or 1-D longer than ``INLINE_CHARS``)."""
    if not text.startswith(("[", "(")):
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if not isinstance(value, list | tuple) or not _numeric(value):
        return None
    nested = any(isinstance(v, list | tuple) for v in value)
    return value if nested or len(text) > INLINE_CHARS else None


def _numeric(value: Any) -> bool:
    """True when ``value`` is a number or a (nested, maybe ragged) sequence of numbers."""
    if isinstance(value, list | tuple):
        return all(_numeric(v) for v in value)
    return isinstance(value, int | float) and not isinstance(value, bool)


def _array(value: list | tuple) -> np.ndarray | None:
    """``value`` as a float array (shape (n,) or (n, m, ...)), None when ragged."""
    try:
        return np.asarray(value, dtype=float)
    except ValueError:
        return None


def shape_text(value: list | tuple) -> str:
    """"4x4" for a rectangular value, "ragged (4, 5, 4, 4 entries)" for a ragged one."""
    array = _array(value)
    if array is not None:
        return "x".join(str(n) for n in array.shape)
    lengths = ", ".join(str(len(v)) if isinstance(v, list | tuple) else "1" for v in value)
    return f"ragged ({lengths} entries)"


def largest_difference(report: list | tuple, ours: list | tuple) -> str:
    """"equal", "largest |difference| 0.0013" or "shapes differ" (from the printed values)."""
    expected, actual = _array(report), _array(ours)
    if expected is None or actual is None or expected.shape != actual.shape:
        return "shapes differ"
    worst = float(np.max(np.abs(expected - actual))) if expected.size else 0.0
    return "equal" if worst == 0.0 else f"largest |difference| {worst:.3g}"


def top_level_items(text: str) -> list[str]:
    """The printed elements of the outermost bracket: "[[1, 2], [3, 4]]" -> ["[1, 2]", "[3, 4]"].

    A 1-D value is one line (itself).
    """
    inner = text[1:-1]
    if not inner.lstrip().startswith(("[", "(")):
        return [text]
    items, depth, start = [], 0, 0
    for i, char in enumerate(inner):
        if char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
        elif char == "," and depth == 0:
            items.append(inner[start:i].strip())
            start = i + 1
    items.append(inner[start:].strip())
    return [item for item in items if item]


def _row_differs(left: str, right: str) -> bool:
    """True when two printed rows hold different numbers (or one is missing)."""
    try:
        a, b = _array(ast.literal_eval(left)), _array(ast.literal_eval(right))
    except (ValueError, SyntaxError):
        return left != right
    return a is None or b is None or a.shape != b.shape or bool(np.any(a != b))


@dataclass(frozen=True)
class MatrixRow:
    """One row of the table whose report or computed value is a matrix."""

    quantity: str
    source: str
    report: str
    computed: str

    def cells(self) -> tuple[str, str]:
        """(report cell, computed cell): shapes and the largest difference, not the values."""
        report, ours = parse_matrix(self.report), parse_matrix(self.computed)
        report_cell = self.report if report is None else f"{shape_text(report)} matrix (below)"
        if ours is None:
            return report_cell, self.computed
        if report is None:
            return report_cell, f"{shape_text(ours)} matrix (below)"
        return report_cell, f"{shape_text(ours)}: {largest_difference(report, ours)}"

    def side_by_side(self) -> str:
        """The report's printed rows and ours beside each other, one line per matrix row."""
        left, right = top_level_items(self.report), top_level_items(self.computed)
        width = max(len("report"), *(len(line) for line in left))
        lines = [f"{self.quantity} ({self.source})",
                 f"  {'report'.ljust(width)}  |  ours"]
        both = parse_matrix(self.report) is not None and parse_matrix(self.computed) is not None
        for i in range(max(len(left), len(right))):
            a = left[i] if i < len(left) else ""
            b = right[i] if i < len(right) else ""
            mark = DIFFERS_MARK if both and _row_differs(a, b) else ""
            lines.append(f"  {a.ljust(width)}  |  {b}{mark}".rstrip())
        return "\n".join(lines)


class ChecksTable(pd.DataFrame):
    """A checks DataFrame whose reprs show every cell whole and matrices side by side.

    Columns as ``CHECK_COLUMNS`` (needs "quantity", "source", "report", "computed"); one row
    per check. Slicing (``.head(1)``, ``.loc``) keeps the class and so the display.
    """

    @property
    def _constructor(self) -> type[ChecksTable]:
        return ChecksTable

    def matrix_rows(self) -> list[MatrixRow]:
        """The rows whose report or computed value is a matrix, in table order."""
        if not {"quantity", "source", "report", "computed"} <= set(self.columns):
            return []
        rows = [MatrixRow(*(str(r[c]) for c in ("quantity", "source", "report", "computed")))
                for _, r in self.iterrows()]
        return [r for r in rows if parse_matrix(r.report) or parse_matrix(r.computed)]

    def display_cells(self) -> list[list[str]]:
        """The table's cells as shown: strings, matrices replaced by their summaries."""
        columns = list(self.columns)
        shown = []
        for _, row in self.iterrows():
            cells = ["" if pd.isna(v) else str(v) for v in row]
            if "report" in columns and "computed" in columns:
                matrix = MatrixRow(str(row.get("quantity", "")), str(row.get("source", "")),
                                   str(row["report"]), str(row["computed"]))
                if parse_matrix(matrix.report) or parse_matrix(matrix.computed):
                    report, computed = matrix.cells()
                    cells[columns.index("report")] = report
                    cells[columns.index("computed")] = computed
            shown.append(cells)
        return shown

    def __repr__(self) -> str:
        return render_text(self)

    def __str__(self) -> str:
        return render_text(self)

    def _repr_html_(self) -> str:
        return render_html(self)


def render_text(table: ChecksTable) -> str:
    """The table as plain text: left-aligned columns, no cell cut, then the matrix blocks."""
    header = [str(c) for c in table.columns]
    cells = table.display_cells()
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(header)]

    def line(values: list[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    lines = [line(header), line(["-" * w for w in widths]), *(line(row) for row in cells)]
    blocks = [m.side_by_side() for m in table.matrix_rows()]
    return "\n\n".join(["\n".join(lines), *blocks])


def render_html(table: ChecksTable) -> str:
    """The table as HTML: left-aligned, wrapping cells, no cell cut, then one <pre> per matrix."""
    cell = 'style="text-align: left; vertical-align: top"'
    head = "".join(f"<th {cell}>{html.escape(str(c))}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(f"<td {cell}>{html.escape(v)}</td>" for v in row)
                   + "</tr>\n" for row in table.display_cells())
    parts = [f'<table class="dataframe checks-table">\n<thead><tr>{head}</tr></thead>\n'
             f"<tbody>\n{body}</tbody>\n</table>"]
    parts += [f"<pre>{html.escape(m.side_by_side())}</pre>" for m in table.matrix_rows()]
    return "\n".join(parts)
