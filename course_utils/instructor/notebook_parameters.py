"""Which notebooks a run covers, and the parameters each declares in its cell tagged
``parameters`` (read with ``ast``, never executed)."""

from __future__ import annotations

import ast
import fnmatch
import io
import os
import tokenize
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat

from course_utils.paths import display_path


class RunnerError(ValueError):
    """Bad input to the runner (parameters, notebook selection, run name); nothing has run."""


@dataclass(frozen=True)
class NotebookParameter:
    """One assignment in a notebook's cell tagged ``parameters``.

    type: the annotation if any, else the type of the literal default ("expression" when the
    default is not a literal); default: the source text; help: the line's trailing comment.
    """

    name: str
    type: str
    default: str
    help: str = ""


def find_notebooks(folder: Path, patterns: Sequence[str] = ()) -> list[Path]:
    """The notebooks of ``folder`` in name order, optionally only those matching ``patterns``.

    A pattern is a prefix ("03"), a name or path ("notebooks/03_training.ipynb") or a glob
    ("0[1-3]_*").
    """
    if not folder.is_dir():
        raise RunnerError(f"notebook folder {display_path(folder)!r} does not exist")
    notebooks = sorted(folder.glob("*.ipynb"))
    if not patterns:
        return notebooks
    for pattern in patterns:
        if not any(_matches(nb, pattern) for nb in notebooks):
            names = ", ".join(nb.stem for nb in notebooks) or "none"
            raise RunnerError(f"--notebooks {pattern!r} matches no notebook in "
                              f"{display_path(folder)}/ (there are: {names})")
    return [nb for nb in notebooks if any(_matches(nb, p) for p in patterns)]


def _matches(notebook: Path, pattern: str) -> bool:
    pattern = os.path.basename(pattern)  # "notebooks/03_training.ipynb", as tab completion gives
    return notebook.name.startswith(pattern) or fnmatch.fnmatch(notebook.name, pattern) \
        or fnmatch.fnmatch(notebook.stem, pattern)


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """Load a notebook, with an error naming the file if it is not valid JSON/nbformat."""
    try:
        return nbformat.read(path, as_version=4)
    except Exception as exc:  # nbformat raises several unrelated types for a broken file
        raise RunnerError(f"could not read notebook {display_path(path)!r}: {exc} "
                          "(open and re-save it in Jupyter)") from exc


def parameters_cell(nb: nbformat.NotebookNode) -> nbformat.NotebookNode | None:
    """The first code cell tagged ``parameters`` (the one papermill uses), or None."""
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            return cell
    return None


def read_parameters(notebook: Path) -> list[NotebookParameter]:
    """The parameters ``notebook`` declares in its cell tagged ``parameters``, in order."""
    cell = parameters_cell(read_notebook(notebook))
    return [] if cell is None else parse_parameters(cell.source, notebook.name)


def parse_parameters(source: str, where: str = "notebook") -> list[NotebookParameter]:
    """Every top-level ``name = value`` (or ``name: type = value``) in a parameters cell.

    Uses ``ast`` rather than papermill.inspect_notebook: papermill skips any line holding two
    "=" signs, so ``preset = None  # None = quick`` would vanish and be rejected as unknown.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise RunnerError(f"{where}: the cell tagged 'parameters' is not plain Python "
                          f"(line {exc.lineno}: {exc.msg}); keep it to `name = value` lines"
                          ) from exc
    comments = _line_comments(source)
    found = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name):
            name, annotation = node.targets[0].id, None
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) \
                and node.value is not None:
            name, annotation = node.target.id, ast.get_source_segment(source, node.annotation)
        else:
            continue  # imports, tuple unpacking...: not something papermill can override
        default = ast.get_source_segment(source, node.value) or ""
        help_text = comments.get(node.end_lineno, comments.get(node.lineno, ""))
        found.append(NotebookParameter(name, annotation or _literal_type(node.value),
                                       default, help_text))
    return found


def _line_comments(source: str) -> dict[int, str]:
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {tok.start[0]: tok.string.lstrip("#").strip()
            for tok in tokens if tok.type == tokenize.COMMENT}


def _literal_type(node: ast.expr) -> str:
    try:
        value = ast.literal_eval(node)
    except ValueError:
        return "expression"
    return "None" if value is None else type(value).__name__


def declared_parameters(notebooks: Sequence[Path]) -> dict[str, list[NotebookParameter]]:
    """Notebook file name -> the parameters it declares."""
    return {nb.name: read_parameters(nb) for nb in notebooks}
