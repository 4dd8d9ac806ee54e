"""Exercises and grading (issue 9) on notebook 07: release, leaks, and fixture submissions
graded to an exact grades.csv (solutions, the bare release, a wrong answer, an exception, two
infinite loops, a memory hog and three cheats).

The fixtures (tests/fixtures/submissions/07_im2col_and_fold/*.py) are edits to the current
student release, built into notebooks here, so they follow the master notebook.
"""

from __future__ import annotations

import copy
import json
import os
import re
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from course_utils.instructor.grading.export import cell_source
from course_utils.instructor.grading.fixtures import build_notebook, build_submission
from course_utils.instructor.grading.grade import grade_all
from course_utils.instructor.grading.grade_reports import grades_csv, marks_template, read_marks
from course_utils.instructor.grading.release import hidden_test_names, leaks, questions, release
from course_utils.instructor.grading.sandbox import isolation
from course_utils.instructor.grading.scoring import Graded
from course_utils.paths import PROJECT_ROOT

NAME = "07_im2col_and_fold"
MASTER = PROJECT_ROOT / "notebooks" / f"{NAME}.ipynb"
FIXTURES = PROJECT_ROOT / "tests" / "fixtures" / "submissions" / NAME
TIMEOUT = 2.0  # seconds per cell / per call in the test (make grade: 10)

EXPECTED = """\
student,unfolded_shape,im2col,col2im,why_fold_sums,conv_forward,conv_backward,total
cheat_allclose,1,3,3,,0,3,10
cheat_checks,1,3,3,,2,0,9
cheat_results_file,0,3,3,,2,3,11
loops,0,3,0,,2,0,5
memory_hog,1,3,3,,0,0,7
raises,1,3,3,,2,0,9
release,0,0,0,,0,0,0
solution,1,3,3,,2,3,12
wrong_conv_forward,1,3,3,,0,3,10
"""


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    release(MASTER, out)
    return out


def test_release_writes_student_and_autograder_versions(dist: Path) -> None:
    student, autograder = dist / "student" / NAME, dist / "autograder" / NAME
    assert sorted(p.name for p in (student / "tests").glob("*.py")) == \
        sorted(p.name for p in (autograder / "tests").glob("*.py"))
    notebook = json.loads((student / f"{NAME}.ipynb").read_text())
    assert all(not c.get("outputs") for c in notebook["cells"] if c["cell_type"] == "code")
    sources = [cell_source(c) for c in notebook["cells"]]
    assert any('grader.check("im2col")' in s for s in sources)
    assert sum("raise NotImplementedError(" in s for s in sources) == 4  # the four code answers
    assert "unfolded_shape = ..." in sources
    manual = [q["name"] for q in questions(MASTER) if q["manual"]]
    assert manual == ["why_fold_sums"]


def test_no_solution_and_no_hidden_test_reaches_the_student_release(dist: Path) -> None:
    student, autograder = dist / "student" / NAME, dist / "autograder" / NAME
    hidden = hidden_test_names(autograder / "tests")
    assert len(hidden) >= 5, hidden  # the check itself must see the hidden tests
    text = "\n".join(p.read_text() for p in student.rglob("*") if p.is_file())
    for name in hidden:
        assert name not in text
    assert "hidden=True" not in text
    assert leaks(student, MASTER, autograder) == []
    # the leak check finds a leak when there is one
    (student / "leak.txt").write_text("cols[:, i, j] = padded[:, :, i:i + stride * hout:stride,")
    assert leaks(student, MASTER, autograder)
    (student / "leak.txt").unlink()


def test_grading_fixture_submissions_gives_the_exact_grades(dist: Path, tmp_path: Path) -> None:
    submissions, out = tmp_path / "submissions", tmp_path / "grades"
    submissions.mkdir()
    names = [build_submission(f, dist, submissions, out, NAME)
             for f in sorted(FIXTURES.glob("*.py"))]
    assert len(names) == 9
    started = time.monotonic()
    results = grade_all(submissions, dist / "autograder" / NAME, out, timeout=TIMEOUT,
                        budget=60, echo=False)
    elapsed = time.monotonic() - started
    assert (out / "grades.csv").read_text() == EXPECTED
    seconds = {r.student: r.seconds for r in results}
    print(f"grading time per submission (s): {seconds}; all: {elapsed:.1f}")
    assert max(seconds.values()) < 60

    feedback = {n: (out / "feedback" / f"{n}.md").read_text() for n in names}
    assert "NotImplementedError" in feedback["release"] and "Hint" not in feedback["solution"]
    assert "one column per output position" in feedback["release"]  # the stub's hint is shown
    assert "IndexError" in feedback["raises"]
    assert f"no answer within {TIMEOUT:g} s" in feedback["loops"]
    assert "skipped" in feedback["loops"]  # the cell that loops at top level
    assert "MemoryError" in feedback["memory_hog"] or "Unable to allocate" in feedback["memory_hog"]
    assert re.search(r"FAILED: test_conv_forward_against_conv2d .*\n(.*\n)*.*got 0",
                     feedback["cheat_allclose"])
    assert "FAILED: test_conv_backward_against_autograd" in feedback["cheat_checks"]
    assert "(5, 5) is not the shape" in feedback["cheat_results_file"]
    for name in names:  # the fake files changed nothing the grader wrote
        assert '"score": 12' not in feedback[name]
    assert not list(out.glob("results*")) and not (submissions / "grades.csv").exists()
    written = (out / "written" / "why_fold_sums.md").read_text()
    assert "Fold is the transpose (adjoint) of unfold" in written
    summary = (out / "summary.md").read_text()
    if isolation().namespaces and os.geteuid() == 0:  # root with bwrap, as in CI's container
        assert "runs as nobody" in summary and "no network" in summary


def test_public_checks_run_in_the_student_kernel(dist: Path, tmp_path: Path) -> None:
    """The student path: otter's grader.check cells run the public tests in the kernel; with
    the solution they pass, with the stub they fail and show the hint."""
    solution = build_notebook(FIXTURES / "solution.py", dist, tmp_path, NAME)
    source = nbformat.reads(json.dumps(solution), as_version=4)
    folder = tmp_path / "student"
    folder.mkdir()
    (folder / "tests").symlink_to(dist / "student" / NAME / "tests")
    nbformat.write(source, folder / f"{NAME}.ipynb")  # otter.Notebook reads it
    keep = [c for c in source.cells if c.cell_type == "code" and (
        "import otter" in c.source or "import torch" in c.source
        or "parameters" in c.metadata.get("tags", []) or "#| export" in c.source
        or "otter_answer_cell" in c.metadata.get("tags", []) or "grader.check(" in c.source)]
    stub = copy.deepcopy(next(c for c in keep if "def col2im_matrix" in c.source))
    stub.source = stub.source.replace("    n, c, h, w = x_shape\n",
                                      "    raise NotImplementedError('col2im_matrix: hint')\n", 1)
    keep.append(stub)
    keep.append(nbformat.v4.new_code_cell('grader.check("col2im")'))
    source.cells = keep
    NotebookClient(source, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(folder)}}).execute()
    checks = [c for c in source.cells if "grader.check(" in c.source]
    texts = ["".join(str(o.get("data", {}).get("text/plain", "")) + o.get("text", "")
                     for o in c.outputs) for c in checks]
    assert len(texts) == 6
    assert all("passed" in t for t in texts[:-1]), texts
    assert "col2im_matrix: hint" in texts[-1] and "passed" not in texts[-1], texts[-1]


QUESTIONS = [{"name": "q_code", "points": 3, "manual": False},
             {"name": "q_written", "points": 2, "manual": True}]


def test_hand_marks_are_merged_into_the_grades(tmp_path: Path) -> None:
    results = [Graded("ann", scores={"q_code": 3.0}), Graded("bob", scores={"q_code": 1.5})]
    assert marks_template(results, QUESTIONS) == "student,q_written\nann,\nbob,\n"
    marks = tmp_path / "marks.csv"
    marks.write_text("student,q_written\nann,1.5\nbob,\n")
    for graded in results:
        graded.marks = read_marks(marks, QUESTIONS, ["ann", "bob"]).get(graded.student, {})
    assert grades_csv(results, QUESTIONS) == ("student,q_code,q_written,total\n"
                                              "ann,3,1.5,4.5\nbob,1.5,,1.5\n")


@pytest.mark.parametrize(("text", "message"), [
    ("student,q_written\ncarl,1\n", "line 2: no submission from student 'carl'"),
    ("student,q_code\nann,1\n", "column 'q_code' is not a hand-graded question"),
    ("student,q_written\nann,3\n", "line 2, q_written: 3 is outside 0..2"),
    ("student,q_written\nann,good\n", "line 2, q_written: 'good' is not a number"),
    ("name,q_written\nann,1\n", "no 'student' column"),
])
def test_a_bad_marks_file_is_refused_with_its_line(tmp_path: Path, text: str,
                                                   message: str) -> None:
    marks = tmp_path / "marks.csv"
    marks.write_text(text)
    with pytest.raises(ValueError, match=re.escape(message)):
        read_marks(marks, QUESTIONS, ["ann", "bob"])
