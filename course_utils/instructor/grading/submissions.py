"""Reading the submissions (a folder or a zip holding the student's notebook, read as JSON and
never executed here) and picking the cells that run when grading, and the written answers.

Nothing in a submission is trusted: a link (symlink or hard link) anywhere on the way to the
notebook, or a zip member that is a link, absolute or has ``..``, makes it unreadable, and
any error while reading it (even RecursionError or MemoryError from a crafted notebook) is
that submission's result, never the grading run's."""

from __future__ import annotations

import ast
import json
import os
import re
import stat
import zipfile
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path

from course_utils.instructor.grading.export import cell_source, is_export_cell
from course_utils.submit import SEPARATOR, notebook_assignment, student_id

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


#: otter's ``grader.export`` default name, ``<notebook>_<timestamp>``: it names no student
OTTER_EXPORT_NAME = re.compile(r"^(.+)_\d{4}_\d{2}_\d{2}T\d{2}_\d{2}_\d{2}_\d{6}$")
#: an assignment as ``make submit`` writes it after ``__`` (``07_im2col_and_fold``)
ASSIGNMENT_NAME = re.compile(r"^\d{2}_[A-Za-z0-9_]+$")


def parse_entry_name(name: str) -> tuple[str, str | None, str | None]:
    """(student id, the assignment the name gives or None, why the name is refused or None)
    from a submission's folder or zip name: ``<id>__<assignment>`` (``make submit``), a plain
    ``<id>``, or otter's export default ``<notebook>_<timestamp>``, which is refused: the
    timestamp would become the student id."""
    if OTTER_EXPORT_NAME.match(name):
        return (student_id(name), None,
                f"the name {name!r} is otter's export default (notebook and time), not a "
                f"student: rename it <id>{SEPARATOR}<assignment>.zip (as `make submit "
                "STUDENT=<id>` names it) and grade again")
    student, _, assignment = name.rpartition(SEPARATOR)
    if student and ASSIGNMENT_NAME.match(assignment):
        return student_id(student), assignment, None
    return student_id(name), None, None


def assignment_mismatch(named: str | None, notebook: dict | None, assignment: str) -> str | None:
    """Why a submission is not ``assignment`` (its name or its notebook says another), or
    None. A notebook that says nothing (otter's metadata and first cell gone) is graded."""
    found = notebook_assignment(notebook) if notebook is not None else None
    for other, where in ((found, "notebook"), (named, "file name")):
        if other is not None and other != assignment:
            return (f"wrong assignment: this is notebook {other} (its {where} says so), graded "
                    f"as {assignment}: grade it with ASSIGNMENT={other}")
    return None


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


def _tags(cell: dict) -> set[str]:
    metadata = cell.get("metadata")
    tags = metadata.get("tags") if isinstance(metadata, dict) else None
    return {t for t in tags if isinstance(t, str)} if isinstance(tags, list) else set()


def _read_no_links(root: Path, relative: str) -> bytes:
    """The file ``root/relative``, refusing any symlink on the way and hard-linked files."""
    current = str(root)
    for part in Path(relative).parts:
        current = os.path.join(current, part)
        if os.path.islink(current):
            raise ValueError(f"{relative} is or goes through a symbolic link")
    descriptor = os.open(current, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            raise ValueError(f"{relative} is not a plain file (a hard link or a device)")
        if info.st_size > MAX_NOTEBOOK_BYTES:
            raise ValueError(f"{relative} is larger than {MAX_NOTEBOOK_BYTES >> 20} MB")
        return handle.read(MAX_NOTEBOOK_BYTES + 1)


def _notebooks_in(folder: Path) -> list[str]:
    """Every .ipynb under ``folder`` (relative), without following folder links."""
    found = []
    for top, dirs, files in os.walk(folder, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(".ipynb"):
                found.append(os.path.relpath(os.path.join(top, name), folder))
    return found


def _check_members(archive: zipfile.ZipFile) -> None:
    for info in archive.infolist():
        name = info.filename
        if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or ".." in \
                re.split(r"[/\\]", name):
            raise ValueError(f"zip member {name[:100]!r} has an absolute path or '..'")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise ValueError(f"zip member {name[:100]!r} is a symbolic link")


def _pick(names: list[str], notebook_names: list[str], where: str) -> str:
    candidates = [n for n in names if n.endswith(".ipynb") and "__MACOSX" not in n
                  and ".ipynb_checkpoints" not in n]
    exact = [n for n in candidates if Path(n).name in notebook_names]
    chosen = exact or candidates
    if len(chosen) != 1:
        wanted = notebook_names[0] if len(notebook_names) == 1 else "notebook of an assignment"
        raise ValueError(f"{where}: expected one {wanted}, found "
                         f"{len(chosen)} notebooks {[Path(n).name for n in chosen][:5]}")
    return chosen[0]


def read_notebook(entry: Path, notebook_names: list[str]) -> tuple[str, bytes]:
    """(member, its bytes): the notebook of a folder or zip submission (a zip is read in
    memory, never extracted; no link is followed). With several notebooks, the one named like
    one of ``notebook_names`` (``07_im2col_and_fold.ipynb``) is taken; raises ValueError when
    that leaves none or several."""
    if entry.is_symlink():
        raise ValueError(f"{entry.name} is a symbolic link")
    if entry.is_dir():
        member = _pick(_notebooks_in(entry), notebook_names, entry.name)
        return member, _read_no_links(entry, member)
    with zipfile.ZipFile(entry) as archive:
        _check_members(archive)
        member = _pick(archive.namelist(), notebook_names, entry.name)
        if archive.getinfo(member).file_size > MAX_NOTEBOOK_BYTES:
            raise ValueError(f"{member} is larger than {MAX_NOTEBOOK_BYTES >> 20} MB")
        with archive.open(member) as handle:  # the header's size may lie
            return member, handle.read(MAX_NOTEBOOK_BYTES + 1)


def parse_notebook(data: bytes, where: str) -> dict:
    """The notebook JSON of ``data`` (checked: a cell list of string sources), or ValueError."""
    return _parse_notebook(data, where)


def load_submission(entry: Path, notebook_name: str, assignment: str | None = None
                    ) -> Submission:
    """A submission from a folder or a zip (the zip is read in memory, never extracted).
    ``assignment`` (default: ``notebook_name``'s stem) is what is graded: a submission of
    another assignment is a row with its reason, not graded."""
    assignment = assignment or Path(notebook_name).stem
    student, named, refused = parse_entry_name(entry.stem if entry.suffix == ".zip"
                                               else entry.name)
    submission = Submission(student, entry)
    if refused:
        submission.error = f"not graded: {refused}"
        return submission
    try:
        member, data = read_notebook(entry, [notebook_name])
        submission.notebook = _parse_notebook(data, member)
        mismatch = assignment_mismatch(named, submission.notebook, assignment)
        if mismatch:
            submission.notebook, submission.error = None, mismatch
            return submission
    except Exception as error:  # noqa: BLE001  (RecursionError, MemoryError: still this one's)
        submission.error = unreadable(error)
    return submission


def unreadable(error: BaseException) -> str:
    """A submission's result when reading it raised ``error``."""
    return f"unreadable: {type(error).__name__}: {str(error)[:300]}"


def load_submissions(folder: Path, notebook_name: str, assignment: str | None = None
                     ) -> list[Submission]:
    """Every folder and zip in ``folder`` (hidden entries skipped), sorted by name. Entries
    whose names map to the same student id are each a row ``<id>__<n>``, not graded."""
    entries = [e for e in sorted(Path(folder).iterdir()) if not e.name.startswith(".")
               and (e.is_dir() or e.suffix == ".zip" or e.is_symlink())]
    submissions = [load_submission(e, notebook_name, assignment) for e in entries]
    mark_duplicates(submissions, [s.student for s in submissions])
    return submissions


def mark_duplicates(submissions: list[Submission], keys: list[Hashable]) -> None:
    """Entries that share a key (``keys[i]`` is ``submissions[i]``'s: a student id, or a student
    and an assignment): which one is the student's cannot be told, so none is graded; each
    becomes a row ``<id>__<n>`` with the reason, and the student's other entries still are."""
    groups: dict[Hashable, list[Submission]] = {}
    for submission, key in zip(submissions, keys, strict=True):
        groups.setdefault(key, []).append(submission)
    for group in (g for g in groups.values() if len(g) > 1):
        student = group[0].student
        names = ", ".join(s.source.name for s in group)
        for number, submission in enumerate(group, start=1):
            submission.student = f"{student}__{number}"
            submission.notebook = None
            submission.error = (f"unreadable: several submissions map to the student id "
                                f"{student!r} ({names}); rename them and grade again")


def _parse(source: str) -> list[ast.stmt] | None:
    """The cell's statements, or None: a huge or deeply nested expression makes ``ast.parse``
    raise MemoryError or RecursionError, and a student's cell must not stop the grader."""
    try:
        return ast.parse(source).body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None


def _only_definitions(source: str) -> bool:
    body = _parse(source)
    if body is None:
        return False
    allowed = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)
    return bool(body) and all(isinstance(node, allowed) for node in body)


def _without_magics(source: str) -> str:
    """IPython lines (``%time``, ``!ls``) commented out: the sandbox runs plain Python."""
    return "\n".join(f"# {line}  (IPython line, not run when grading)"
                     if line.lstrip().startswith(("%", "!")) else line
                     for line in source.splitlines())


def _imported_packages(source: str) -> set[str]:
    body = _parse(source) or []
    names = set()
    for node in body:
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def _defined_names(source: str, imports: bool = False) -> set[str]:
    """Names a cell binds at top level (functions, classes, assignments; imports if asked)."""
    names: set[str] = set()
    for node in _parse(source) or []:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif imports and isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def _runnable(notebook: dict, blocked: tuple[str, ...]) -> list[tuple[int, bool, str]]:
    """(index, is an answer cell, source) of the cells that may run when grading."""
    cells = []
    for index, cell in enumerate(notebook["cells"]):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell_source(cell)
        answer = bool({ANSWER_TAG, SOLUTION_TAG} & _tags(cell))
        if not (answer or is_export_cell(cell) or _only_definitions(source)):
            continue
        if not answer and _imported_packages(source) & set(blocked):
            continue
        cells.append((index, answer, _without_magics(source)))
    return cells


def cell_label(index: int) -> str:
    """A cell as JupyterLab numbers it: every cell, markdown included, from 1 ("Cell 9/67")."""
    return f"cell {index + 1}"


def graded_cells(notebook: dict, blocked: tuple[str, ...] = (),
                 master: dict | None = None) -> list[tuple[str, str]]:
    """(label, source) of the cells run when grading: answer cells, ``#| export`` cells and
    cells that only define functions, classes or imports. A *given* cell that imports a
    package the sandbox blocks (02's model class needs torch) is left out: it could only fail,
    and no answer depends on it; an answer cell is always run.

    With ``master`` (the autograder copy of the notebook), the given cells come from it, never
    from the submission: they run first, then the student's answer cells and own helper
    cells (a student's cell that defines a given name, such as an edited copy of a driver, is
    left out), then the given cells again, so that no answer cell can replace a given name."""
    if master is None:
        return [(cell_label(i), source) for i, _, source in _runnable(notebook, blocked)]
    given = [(f"given {cell_label(i)}", source) for i, answer, source in _runnable(master, blocked)
             if not answer]
    given_names = set().union(*(_defined_names(source) for _, source in given))
    student = []
    for index, answer, source in _runnable(notebook, blocked):
        if answer or not _defined_names(source) & given_names:
            student.append((cell_label(index), source))
    again = [(f"{label} (again: given names are the master's)", source)
             for label, source in given]
    return given + student + again


def given_names(master: dict, blocked: tuple[str, ...] = ()) -> list[str]:
    """The names the master's given cells define (drivers, helpers): the tests rely on them."""
    names: set[str] = set()
    for _, answer, source in _runnable(master, blocked):
        if not answer:
            names |= _defined_names(source)
    return sorted(names)


def written_answers(notebook: dict, manual: list[str]) -> dict[str, str]:
    """The markdown answer cells, in order, matched to the hand-graded questions in order."""
    answers = [cell_source(c) for c in notebook["cells"] if isinstance(c, dict)
               and c.get("cell_type") == "markdown" and {ANSWER_TAG, SOLUTION_TAG} & _tags(c)]
    return {name: (answers[i] if i < len(answers) else "") for i, name in enumerate(manual)}
