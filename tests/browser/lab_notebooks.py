"""Which notebook the browser test runs, and the copies it serves.

The test never opens a file in ``notebooks/``: it serves copies from a temporary folder, with
their stored outputs cleared, so every prompt and output on the page comes from this run and
the course notebooks are never written to.
"""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat

from course_utils.atomic import atomic_write_text
from course_utils.paths import NOTEBOOKS_DIR, PROJECT_ROOT

#: Environment variable naming the notebook to run (``make test-browser BROWSER_NB=...``).
NOTEBOOK_ENV = "BROWSER_NOTEBOOK"
#: Quick course notebooks, in order of preference, when none is requested.
PREFERRED = ("05_chain_rule.ipynb", "07_im2col_and_fold.ipynb")
#: Used while none of the preferred notebooks exists yet (and for the must-fail test).
TINY_NOTEBOOK = Path(__file__).resolve().parent / "tiny_notebook.ipynb"


def find_requested(requested: str) -> Path:
    """The notebook file for ``requested``: a path, or a name in ``notebooks/`` with or
    without ``.ipynb``. Raises FileNotFoundError that lists the notebooks to choose from."""
    name = requested if requested.endswith(".ipynb") else f"{requested}.ipynb"
    candidates = [Path(requested), PROJECT_ROOT / requested, NOTEBOOKS_DIR / name]
    for candidate in candidates:
        if candidate.is_file() and candidate.suffix == ".ipynb":
            return candidate.resolve()
    available = sorted(p.name for p in NOTEBOOKS_DIR.glob("*.ipynb")) or ["(none yet)"]
    raise FileNotFoundError(
        f"{NOTEBOOK_ENV}={requested!r}: no such notebook. Give a name from notebooks/ "
        f"({', '.join(available)}) or a path to an .ipynb file, e.g. "
        f"make test-browser BROWSER_NB={PREFERRED[-1]}")


def choose_notebook(requested: str | None) -> Path:
    """The notebook to run: ``requested`` if given, else the first preferred course notebook
    that exists, else the tiny fixture notebook."""
    if requested:
        return find_requested(requested)
    for name in PREFERRED:
        if (NOTEBOOKS_DIR / name).is_file():
            return NOTEBOOKS_DIR / name
    return TINY_NOTEBOOK


def code_cell_count(notebook: nbformat.NotebookNode) -> int:
    """How many code cells ``notebook`` has (the page must show as many)."""
    return sum(cell.cell_type == "code" for cell in notebook.cells)


def read_cleared(source: Path) -> nbformat.NotebookNode:
    """``source`` read as a notebook with every output and execution count removed."""
    notebook = nbformat.read(source, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return notebook


def with_inserted_cells(notebook: nbformat.NotebookNode, position: int,
                        sources: list[str]) -> nbformat.NotebookNode:
    """A copy of ``notebook`` with new code cells (``sources``) inserted before cell
    ``position`` (an index into all cells, markdown included)."""
    changed = copy.deepcopy(notebook)
    new_cells = [nbformat.v4.new_code_cell(source) for source in sources]
    changed.cells[position:position] = new_cells
    return changed


def write_notebook(notebook: nbformat.NotebookNode, path: Path) -> Path:
    """Write ``notebook`` to ``path`` (a scratch copy in the server's temporary root)."""
    nbformat.validate(notebook)
    return atomic_write_text(path, nbformat.writes(notebook))
