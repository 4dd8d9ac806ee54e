"""Reading the submissions (a folder or a zip holding the student's notebook, read as JSON and
never executed here) and picking the cells that run when grading, and the written answers."""

from __future__ import annotations

import ast
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from course_utils.instructor.grading.export import cell_source, is_export_cell

ANSWER_TAG = "otter_answer_cell"
SOLUTION_TAG = "otter_assign_solution_cell"  # the same cells in dist/autograder's notebook
MAX_NOTEBOOK_BYTES = 20 << 20


@dataclass
class Submission:
    """One student's hand-in: the notebook as JSON, or the error that kept it from being read."""

    student: str
    source: Path
    notebook: dict | None = None
    error: str | None = None


def student_id(name: str) -> str:
    """A file-name-safe id from a folder or zip name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "unnamed"


def _parse_notebook(data: bytes, where: str) -> dict:
    if len(data) > MAX_NOTEBOOK_BYTES:
        raise ValueError(f"{where} is larger than {MAX_NOTEBOOK_BYTES >> 20} MB")
    notebook = json.loads(data.decode("utf-8"))
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise ValueError(f"{where} is not a Jupyter notebook (no cell list)")
    for cell in notebook["cells"]:
        source = cell.get("source", "") if isinstance(cell, dict) else None
        if not isinstance(source, str | list) or (
                isinstance(source, list) and not all(isinstance(s, str) for s in source)):
            raise ValueError(f"{where} has a malformed cell")
    return notebook


def _pick(names: list[str], notebook_name: str, where: str) -> str:
    candidates = [n for n in names if n.endswith(".ipynb") and "__MACOSX" not in n
                  and ".ipynb_checkpoints" not in n]
    exact = [n for n in candidates if Path(n).name == notebook_name]
    chosen = exact or candidates
    if len(chosen) != 1:
        raise ValueError(f"{where}: expected one {notebook_name}, found "
                         f"{len(chosen)} notebooks {[Path(n).name for n in chosen][:5]}")
    return chosen[0]


def load_submission(entry: Path, notebook_name: str) -> Submission:
    """A submission from a folder or a zip (the zip is read in memory, never extracted)."""
    student = student_id(entry.stem if entry.suffix == ".zip" else entry.name)
    submission = Submission(student, entry)
    try:
        if entry.is_dir():
            names = [str(p.relative_to(entry)) for p in sorted(entry.rglob("*.ipynb"))]
            path = entry / _pick(names, notebook_name, entry.name)
            submission.notebook = _parse_notebook(path.read_bytes(), path.name)
        else:
            with zipfile.ZipFile(entry) as archive:
                member = _pick(archive.namelist(), notebook_name, entry.name)
                if archive.getinfo(member).file_size > MAX_NOTEBOOK_BYTES:
                    raise ValueError(f"{member} is larger than {MAX_NOTEBOOK_BYTES >> 20} MB")
                submission.notebook = _parse_notebook(archive.read(member), member)
    except (OSError, ValueError, zipfile.BadZipFile, UnicodeDecodeError) as error:
        submission.error = f"could not read the submission: {error}"
    return submission


def load_submissions(folder: Path, notebook_name: str) -> list[Submission]:
    """Every folder and zip in ``folder`` (hidden entries skipped), sorted by name."""
    entries = [e for e in sorted(Path(folder).iterdir()) if not e.name.startswith(".")
               and (e.is_dir() or e.suffix == ".zip")]
    submissions = [load_submission(e, notebook_name) for e in entries]
    ids = [s.student for s in submissions]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"several submissions map to the same student id: {duplicates}; "
                         "rename them")
    return submissions


def _only_definitions(source: str) -> bool:
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return False
    allowed = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)
    return bool(body) and all(isinstance(node, allowed) for node in body)


def _without_magics(source: str) -> str:
    """IPython lines (``%time``, ``!ls``) commented out: the sandbox runs plain Python."""
    return "\n".join(f"# {line}  (IPython line, not run when grading)"
                     if line.lstrip().startswith(("%", "!")) else line
                     for line in source.splitlines())


def _imported_packages(source: str) -> set[str]:
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return set()
    names = set()
    for node in body:
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def graded_cells(notebook: dict, blocked: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """(label, source) of the cells run when grading: answer cells, ``#| export`` cells and
    cells that only define functions, classes or imports. A *given* cell that imports a
    package the sandbox blocks (02's model class needs torch) is left out: it could only fail,
    and no answer depends on it; an answer cell is always run."""
    cells = []
    for index, cell in enumerate(notebook["cells"]):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell_source(cell)
        metadata = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
        tags = metadata.get("tags", []) if isinstance(metadata.get("tags"), list) else []
        answer = bool({ANSWER_TAG, SOLUTION_TAG} & set(map(str, tags)))
        if not (answer or is_export_cell(cell) or _only_definitions(source)):
            continue
        if not answer and _imported_packages(source) & set(blocked):
            continue
        cells.append((f"cell {index}", _without_magics(source)))
    return cells


def written_answers(notebook: dict, manual: list[str]) -> dict[str, str]:
    """The markdown answer cells, in order, matched to the hand-graded questions in order."""
    answers = [cell_source(c) for c in notebook["cells"] if isinstance(c, dict)
               and c.get("cell_type") == "markdown"
               and {ANSWER_TAG, SOLUTION_TAG} & set(c.get("metadata", {}).get("tags", []))]
    return {name: (answers[i] if i < len(answers) else "") for i, name in enumerate(manual)}
