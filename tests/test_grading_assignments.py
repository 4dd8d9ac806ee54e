"""Every exercise notebook except 07 (tests/test_grading.py goes deeper there): its release
leaks nothing, and its fixture submissions grade to the exact ``expected_grades.csv`` kept
beside them (tests/fixtures/submissions/<assignment>/). The solution must get every
autograded point and the bare student release none."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from course_utils.instructor.grading.__main__ import main as grading_main
from course_utils.instructor.grading.__main__ import master_notebooks
from course_utils.instructor.grading.fixtures import build_submission
from course_utils.instructor.grading.grade import grade_all
from course_utils.instructor.grading.release import (
    hidden_test_names,
    leaks,
    questions,
    questions_markdown,
    release,
)
from course_utils.paths import PROJECT_ROOT

FIXTURES = PROJECT_ROOT / "tests" / "fixtures" / "submissions"
ASSIGNMENTS = sorted(p.name for p in FIXTURES.iterdir()
                     if p.is_dir() and p.name != "07_im2col_and_fold")
TIMEOUT = 10.0  # seconds per cell / per call (an answer that imports torch needs ~3 s)


def _master(name: str) -> Path:
    return PROJECT_ROOT / "notebooks" / f"{name}.ipynb"


@pytest.fixture(scope="module", params=ASSIGNMENTS)
def released(request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    out = tmp_path_factory.mktemp(f"dist-{request.param}")
    release(_master(request.param), out)
    return request.param, out


def test_release_hides_the_solutions_and_hidden_tests(released: tuple[str, Path]) -> None:
    name, dist = released
    student, autograder = dist / "student" / name, dist / "autograder" / name
    hidden = hidden_test_names(autograder / "tests")
    assert hidden, f"{name} has no hidden test"
    text = "\n".join(p.read_text() for p in student.rglob("*") if p.is_file())
    assert not [h for h in hidden if h in text]
    assert leaks(student, _master(name), autograder) == []
    notebook = json.loads((student / f"{name}.ipynb").read_text())
    assert all(not c.get("outputs") for c in notebook["cells"] if c["cell_type"] == "code")


def test_fixture_submissions_get_the_exact_grades(released: tuple[str, Path],
                                                  tmp_path: Path) -> None:
    name, dist = released
    submissions, out = tmp_path / "submissions", tmp_path / "grades"
    submissions.mkdir()
    fixtures = sorted((FIXTURES / name).glob("*.py"))
    students = [build_submission(f, dist, submissions, out, name) for f in fixtures]
    assert {"solution", "release"} <= set(students)
    results = grade_all(submissions, dist / "autograder" / name, out, timeout=TIMEOUT,
                        budget=120, echo=False)
    got = (out / "grades.csv").read_text()
    assert got == (FIXTURES / name / "expected_grades.csv").read_text(), got
    print(f"{name}: grading time per submission (s):",
          {r.student: round(r.seconds, 1) for r in results})

    rows = {row["student"]: row for row in csv.DictReader(io.StringIO(got))}
    auto = [q for q in questions(_master(name)) if not q["manual"]]
    assert float(rows["solution"]["total"]) == sum(q["points"] for q in auto)
    assert float(rows["release"]["total"]) == 0


def test_readme_question_table_matches_the_masters() -> None:
    start, end = "<!-- questions:start -->", "<!-- questions:end -->"
    expected = questions_markdown(master_notebooks())
    text = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    fix = ("regenerate it with `python -m course_utils.instructor.grading questions` and paste "
           f"it between the lines {start} and {end} in README.md:\n{expected}")
    assert start in text and end in text, "README.md has no question table; " + fix
    assert text.split(start, 1)[1].split(end, 1)[0].strip() == expected.strip(), \
        "README.md's question table is stale; " + fix


def test_fixtures_are_reached_only_by_the_fixtures_command(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`make grade-fixtures` (the `fixtures` command) builds and grades them; `grade` on a
    folder that holds `<assignment>/*.py` grades it as submissions, never as fixture specs (a
    student's folder named like the assignment must not switch the grader to the fixtures)."""
    name = "04_fps_benchmark"  # the quickest to grade (no torch in its sandbox)
    release(_master(name), tmp_path / "dist")
    code = grading_main(["fixtures", name, "--out", str(tmp_path / "fixtures")])
    assert code == 0
    expected = (FIXTURES / name / "expected_grades.csv").read_text()
    assert (tmp_path / "fixtures" / name / "grades" / "grades.csv").read_text() == expected
    assert "wrong_measure_fps" in capsys.readouterr().out

    inbox = tmp_path / "inbox"
    (inbox / name).mkdir(parents=True)
    (inbox / name / "helper.py").write_text("x = 1\n")
    code = grading_main(["grade", str(inbox), "--assignment", name, "--autograder",
                         str(tmp_path / "dist" / "autograder" / name),
                         "--out", str(tmp_path / "grades")])
    assert code == 0
    rows = list(csv.DictReader(io.StringIO((tmp_path / "grades" / "grades.csv").read_text())))
    assert [(r["student"], r["total"]) for r in rows] == [(name, "0")]
    assert "unreadable" in (tmp_path / "grades" / "summary.md").read_text()
