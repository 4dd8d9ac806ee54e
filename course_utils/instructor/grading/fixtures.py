"""Fixture submissions: made-up students that show what grading does (``make grade-fixtures``)
and that the grading tests (tests/test_grading*.py) grade to an exact grades.csv.

A fixture (``tests/fixtures/submissions/<assignment>/<student>.py``) describes one student's
submission as edits to the *current* student release, so it never goes stale when the master
notebook changes: ``BASE`` ("solution" or "release"), ``ANSWERS`` (answer cells to replace, keyed
by the name the cell defines; ``{OUT}`` becomes the grader's output folder), ``WRITTEN`` (the
written answers, in order; a string for one) and ``PACKAGING`` ("folder", "nested-folder", "zip").
"""

from __future__ import annotations

import ast
import json
import runpy
import shutil
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
    return student


def build_submission(fixture: Path, dist: Path, submissions: Path, out: Path, name: str) -> str:
    """Write the fixture's notebook into ``submissions`` (folder, nested folder or zip)."""
    student, packaging = fixture.stem, runpy.run_path(str(fixture))["PACKAGING"]
    folder = {"folder": submissions / student, "nested-folder": submissions / student / "work",
              "zip": submissions.parent / "to_zip" / student}[packaging]
    folder.mkdir(parents=True)
    path = folder / f"{name}.ipynb"
    path.write_text(json.dumps(build_notebook(fixture, dist, out, name), indent=1))
    if packaging == "zip":
        with zipfile.ZipFile(submissions / f"{student}.zip", "w", zipfile.ZIP_DEFLATED) as zipped:
            zipped.write(path, path.name)
    return student


def grade_fixtures(dist: Path, out: Path, assignments: list[str] | None = None,
                   timeout: float = 10.0) -> dict[str, str]:
    """Build every assignment's fixture submissions into ``out/<assignment>/submissions`` and
    grade them into ``out/<assignment>/grades``; returns {assignment: the grades table}."""
    from course_utils.instructor.grading.grade import grade_all
    from course_utils.instructor.grading.grade_reports import table_text

    names = assignments or sorted(p.name for p in FIXTURES_DIR.iterdir() if p.is_dir())
    tables = {}
    for name in names:
        autograder = Path(dist) / "autograder" / name
        if not (autograder / "questions.json").exists():
            raise FileNotFoundError(f"{autograder} has no questions.json: run `make release`")
        folder = Path(out) / name
        if folder.exists():
            shutil.rmtree(folder)
        submissions, grades = folder / "submissions", folder / "grades"
        submissions.mkdir(parents=True)
        for fixture in sorted((FIXTURES_DIR / name).glob("*.py")):
            build_submission(fixture, Path(dist), submissions, grades, name)
        results = grade_all(submissions, autograder, grades, timeout=timeout, echo=False)
        info = json.loads((autograder / "questions.json").read_text(encoding="utf-8"))
        tables[name] = table_text(results, info["questions"])
    return tables
