"""Fixture submissions: made-up students that show what grading does (``make grade-fixtures``)
and that the grading tests (tests/test_grading*.py) grade to an exact grades.csv. They are
built from a fresh release of the master, never from ``dist/student`` (students edit it).

A fixture (``tests/fixtures/submissions/<assignment>/<student>.py``) describes one student's
submission as edits to the *current* student release, so it never goes stale when the master
notebook changes: ``BASE`` ("solution" or "release"), ``ANSWERS`` (answer cells to replace, keyed
by the name the cell defines; ``{OUT}`` becomes the grader's output folder), ``WRITTEN`` (the
written answers, in order; a string for one) and ``PACKAGING`` ("folder", "nested-folder", "zip").

Attacks (``tests/fixtures/attacks``) may also give ``EDIT``, a function that changes the built
notebook (its given cells, its metadata) or returns the file's text itself, and use the
packagings a grader must refuse: "link-autograder" and "link-classmate" (the notebook is a
symbolic link to the autograder's notebook, absolute, or to ``../solution/``'s, relative),
"zip-link", "zip-dotdot" and "zip-absolute" (a zip member that is a link, has ``..``, or an
absolute path).
"""

from __future__ import annotations

import ast
import json
import runpy
import shutil
import tempfile
import zipfile
from pathlib import Path

from course_utils.instructor.grading.export import cell_source
from course_utils.paths import PROJECT_ROOT

FIXTURES_DIR = PROJECT_ROOT / "tests" / "fixtures" / "submissions"


def _tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def defined_name(source: str) -> str:
    """The first name a cell defines (function, class or assignment target)."""
    lines = [line for line in source.splitlines() if not line.startswith("#|")]
    for node in ast.parse("\n".join(lines)).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            return node.name
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            return node.targets[0].id
    raise ValueError(f"no definition in {source[:80]!r}")


def answer_cell(notebook: dict, name: str) -> dict:
    """The answer cell that defines ``name`` (for an attack's ``EDIT``)."""
    return next(c for c in notebook["cells"] if c["cell_type"] == "code"
                and "otter_answer_cell" in _tags(c) and defined_name(cell_source(c)) == name)


def build_notebook(fixture: Path, dist: Path, out: Path, name: str) -> dict:
    """The fixture's notebook: the student release of ``name`` with its answer cells edited."""
    spec = runpy.run_path(str(fixture))
    student = json.loads((dist / "student" / name / f"{name}.ipynb").read_text())
    solution = json.loads((dist / "autograder" / name / f"{name}.ipynb").read_text())
    answers = [c for c in student["cells"] if c["cell_type"] == "code"
               and "otter_answer_cell" in _tags(c)]
    solutions = [c for c in solution["cells"] if c["cell_type"] == "code"
                 and "otter_assign_solution_cell" in _tags(c)]
    assert [defined_name(cell_source(c)) for c in answers] == \
        [defined_name(cell_source(c)) for c in solutions]
    replacements = spec.get("ANSWERS", {})
    unknown = set(replacements) - {defined_name(cell_source(c)) for c in solutions}
    assert not unknown, f"{fixture.name}: no answer cell defines {sorted(unknown)}"
    for answer, reference in zip(answers, solutions, strict=True):
        defined = defined_name(cell_source(reference))
        if spec["BASE"] == "solution":
            answer["source"] = cell_source(reference)
        if defined in replacements:
            answer["source"] = replacements[defined].strip("\n").replace("{OUT}", str(out))
    written = spec.get("WRITTEN", [])
    written = [written] if isinstance(written, str) else written
    cells = [c for c in student["cells"] if c["cell_type"] == "markdown"
             and "otter_answer_cell" in _tags(c)]
    for cell, text in zip(cells, written, strict=False):
        cell["source"] = text
    return spec["EDIT"](student) if "EDIT" in spec else student


def _zip_attack(target: Path, packaging: str, text: str, name: str) -> None:
    member = {"zip-link": f"{name}.ipynb", "zip-dotdot": f"../{name}.ipynb",
              "zip-absolute": f"/tmp/{name}.ipynb"}[packaging]
    info = zipfile.ZipInfo(member)
    data = text
    if packaging == "zip-link":  # a member whose mode says symlink, to the autograder copy
        info.external_attr = (0o120777 << 16)
        data = f"../../dist/autograder/{name}/{name}.ipynb"
    with zipfile.ZipFile(target, "w") as zipped:
        zipped.writestr(info, data)


def build_submission(fixture: Path, dist: Path, submissions: Path, out: Path, name: str) -> str:
    """Write the fixture's notebook into ``submissions`` (folder, nested folder or zip)."""
    student, packaging = fixture.stem, runpy.run_path(str(fixture))["PACKAGING"]
    notebook = build_notebook(fixture, dist, out, name)
    text = notebook if isinstance(notebook, str) else json.dumps(notebook, indent=1)
    if packaging.startswith("zip-"):
        _zip_attack(submissions / f"{student}.zip", packaging, text, name)
        return student
    folder = {"nested-folder": submissions / student / "work",
              "zip": submissions.parent / "to_zip" / student}.get(packaging, submissions / student)
    folder.mkdir(parents=True)
    path = folder / f"{name}.ipynb"
    if packaging == "link-autograder":
        path.symlink_to((Path(dist) / "autograder" / name / f"{name}.ipynb").resolve())
        return student
    if packaging == "link-classmate":
        path.symlink_to(Path("..") / "solution" / f"{name}.ipynb")
        return student
    path.write_text(text)
    if packaging == "zip":
        with zipfile.ZipFile(submissions / f"{student}.zip", "w", zipfile.ZIP_DEFLATED) as zipped:
            zipped.write(path, path.name)
    return student


def grade_fixtures(out: Path, assignments: list[str] | None = None,
                   timeout: float = 10.0) -> dict[str, str]:
    """Release each assignment afresh from its master (into a temporary folder: never from
    ``dist/``, where a student's edits may sit), build its fixture submissions into
    ``out/<assignment>/submissions`` and grade them into ``out/<assignment>/grades``; returns
    {assignment: the grades table}."""
    from course_utils.instructor.grading.grade import grade_all
    from course_utils.instructor.grading.grade_reports import table_text
    from course_utils.instructor.grading.release import release

    names = assignments or sorted(p.name for p in FIXTURES_DIR.iterdir() if p.is_dir())
    tables = {}
    for name in names:
        master = PROJECT_ROOT / "notebooks" / f"{name}.ipynb"
        if not master.exists():
            raise FileNotFoundError(f"{master} does not exist: {name} is not an assignment")
        folder = Path(out) / name
        if folder.exists():
            shutil.rmtree(folder)
        submissions, grades = folder / "submissions", folder / "grades"
        submissions.mkdir(parents=True)
        with tempfile.TemporaryDirectory(prefix=f"fixtures-{name}-") as tmp:
            dist = Path(tmp) / "dist"
            release(master, dist)
            autograder = dist / "autograder" / name
            for fixture in sorted((FIXTURES_DIR / name).glob("*.py")):
                build_submission(fixture, dist, submissions, grades, name)
            results = grade_all(submissions, autograder, grades, timeout=timeout, echo=False)
            info = json.loads((autograder / "questions.json").read_text(encoding="utf-8"))
        tables[name] = table_text(results, info["questions"])
    return tables
