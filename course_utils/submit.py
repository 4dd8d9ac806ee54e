"""Hand in one exercise notebook: ``python -m course_utils.submit NOTEBOOK --student ID``.

Writes ``submissions/<ID>__<assignment>.zip`` (one zip per student and assignment; the
grader reads both from the name). The assignment comes from the notebook itself: otter's
``metadata.otter.assignment_name``, else the ``otter.Notebook("NN_name.ipynb")`` line of its
first cell. The command refuses:

- an ``--assignment`` that is not the notebook's (handing in 06 as 07 scores 0);
- a notebook whose saved file still holds every stub (``raise NotImplementedError`` or
  ``= ...``): answers typed but not saved are not in the file (save with Ctrl+S first);
- an existing zip for the same student and assignment, unless ``--replace``: the new zip is
  then written atomically over it and the command says "replaced".

Student side: this module never imports ``course_utils.instructor`` (not in the bundle).
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import re
import sys
import zipfile
from pathlib import Path

from course_utils.atomic import atomic_write_bytes

ANSWER_TAG = "otter_answer_cell"
SEPARATOR = "__"  # <student>__<assignment>.zip: neither part may hold it
NOTEBOOK_LINE = re.compile(r"""otter\.Notebook\(\s*["']([^"']+)\.ipynb["']""")


def student_id(name: str) -> str:
    """A file-name-safe id: letters, digits, ``.``, ``_`` and ``-`` (runs of ``_`` squeezed,
    so that an id never holds the ``__`` that separates it from the assignment)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name)
    return re.sub(r"_{2,}", "_", safe).strip("._") or "unnamed"


def submission_name(student: str, assignment: str) -> str:
    """The zip's file name, ``<student>__<assignment>.zip``."""
    return f"{student_id(student)}{SEPARATOR}{assignment}.zip"


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def notebook_assignment(notebook: dict) -> str | None:
    """Which assignment a notebook is (``"07_im2col_and_fold"``), or None if it does not say:
    otter's metadata first, else the ``otter.Notebook("...")`` line of the first code cell."""
    metadata = notebook.get("metadata")
    otter = metadata.get("otter") if isinstance(metadata, dict) else None
    name = otter.get("assignment_name") if isinstance(otter, dict) else None
    if isinstance(name, str) and name:
        return name
    cells = notebook.get("cells")
    code = [c for c in cells if isinstance(c, dict) and c.get("cell_type") == "code"] \
        if isinstance(cells, list) else []
    match = NOTEBOOK_LINE.search(_source(code[0])) if code else None
    return Path(match.group(1)).name if match else None


def answer_cells(notebook: dict) -> list[dict]:
    """The code cells a student writes in (otter's ``otter_answer_cell`` tag)."""
    def tags(cell: dict) -> list:
        metadata = cell.get("metadata")
        found = metadata.get("tags") if isinstance(metadata, dict) else None
        return found if isinstance(found, list) else []

    return [c for c in notebook.get("cells", []) if isinstance(c, dict)
            and c.get("cell_type") == "code" and ANSWER_TAG in tags(c)]


def is_stub(source: str) -> bool:
    """Whether an answer cell still holds its stub: a ``raise NotImplementedError`` statement
    (not text in a string) or a ``name = ...`` assignment."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False  # IPython syntax or a half-typed answer: the student wrote something
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(exc, ast.Name) and exc.id == "NotImplementedError":
                return True
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) \
                and node.value.value is Ellipsis:
            return True
    return False


def untouched(notebook: dict) -> bool:
    """Whether every answer cell still holds its stub: nothing answered in the saved file."""
    cells = answer_cells(notebook)
    return bool(cells) and all(is_stub(_source(c)) for c in cells)


def read_notebook(path: Path) -> dict:
    """The notebook at ``path`` as JSON; errors name the file and what to pass instead."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: pass the notebook you worked in")
    try:
        notebook = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not a Jupyter notebook ({error})") from None
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise ValueError(f"{path} is not a Jupyter notebook (no cell list)")
    return notebook


def submit(notebook: Path, student: str, out: Path, assignment: str | None = None,
           replace: bool = False, allow_empty: bool = False) -> tuple[Path, bool]:
    """Zip ``notebook`` as ``out/<student>__<assignment>.zip``.

    Inputs:
    - notebook: the student notebook, saved (the file on disk is what is zipped).
    - student: the student's id; assignment: the expected assignment, checked if given.
    - replace: write over an existing zip of the same student and assignment.
    - allow_empty: hand in a notebook whose answer cells all still hold their stubs.

    Returns (the zip, whether it replaced one). Raises ValueError (mismatch, untouched
    notebook, existing zip) or FileNotFoundError, each naming the file and what to do.
    """
    notebook = Path(notebook)
    data = read_notebook(notebook)
    found = notebook_assignment(data)
    if found is None:
        raise ValueError(f"{notebook} does not say which assignment it is (no otter metadata, "
                         "no otter.Notebook(...) cell): submit the student notebook you were "
                         "given, not the instructors' master")
    if assignment and assignment != found:
        raise ValueError(f"{notebook} is notebook {found}, not {assignment}: pass the notebook "
                         f"of {assignment}, or ASSIGNMENT={found}")
    if not answer_cells(data):
        raise ValueError(f"{notebook} has no answer cells: submit the student version")
    if untouched(data) and not allow_empty:
        raise ValueError(f"{notebook} on disk still holds every stub (raise NotImplementedError "
                         "/ ...): if you typed answers, save the notebook (Ctrl+S) and submit "
                         "again; --allow-empty hands it in as it is")
    target = Path(out) / submission_name(student, found)
    existed = target.exists()
    if existed and not replace:
        raise ValueError(f"{target} already exists: it is your earlier hand-in of {found}; "
                         "pass --replace (make submit ... REPLACE=1) to replace it")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(notebook, notebook.name)
    atomic_write_bytes(target, buffer.getvalue())  # never half a zip, even over an old one
    return target, existed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.submit",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("notebook", type=Path, help="your saved notebook (.ipynb)")
    parser.add_argument("--student", required=True, help="your student id")
    parser.add_argument("--assignment", default=None,
                        help="the assignment you mean to hand in (checked against the notebook)")
    parser.add_argument("--out", type=Path, default=Path("submissions"))
    parser.add_argument("--replace", action="store_true",
                        help="replace your earlier zip of the same assignment")
    parser.add_argument("--allow-empty", action="store_true",
                        help="hand in a notebook with no answer written")
    args = parser.parse_args(argv)
    try:
        target, replaced = submit(args.notebook, args.student, args.out, args.assignment,
                                  replace=args.replace, allow_empty=args.allow_empty)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    verb = "replaced" if replaced else "wrote"
    print(f"{verb} {target}: hand this file in")
    return 0


if __name__ == "__main__":
    sys.exit(main())
