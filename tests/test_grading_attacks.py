"""Issue 17: grading that one student cannot break. Hostile submissions
(tests/fixtures/attacks/<assignment>/*.py, built from the release like the cheat fixtures)
graded beside untouched controls: the exact grades.csv, a reason for each refused one, and
nothing of any sandbox left afterwards (no process of nobody, no new SysV IPC object, no
cgroup of ours)."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from course_utils.instructor.grading.confine import SERVER_INSIDE
from course_utils.instructor.grading.fixtures import build_submission
from course_utils.instructor.grading.grade import grade_all
from course_utils.instructor.grading.grade_reports import written_markdown
from course_utils.instructor.grading.release import release
from course_utils.instructor.grading.sandbox import isolation
from course_utils.instructor.grading.scoring import Graded, grade_submission, load_tests
from course_utils.instructor.grading.submissions import load_submission
from course_utils.paths import PROJECT_ROOT

ATTACKS = PROJECT_ROOT / "tests" / "fixtures" / "attacks"
ISO = isolation()
CONFINED = ISO.namespaces and os.geteuid() == 0  # CI: root in a container, bwrap installed
SEPARATE = {"slow_cells"}  # graded on its own, with a short budget
needs_bwrap = pytest.mark.skipif(not CONFINED, reason="needs root and bwrap (as in CI)")


def nobody_processes() -> list[str]:
    """Processes of the sandbox's uid, but for another checkout's sandboxes (this machine is
    shared: their server runs from its own path, ours from SERVER_INSIDE)."""
    found = []
    for folder in Path("/proc").glob("[0-9]*"):
        try:
            text = (folder / "status").read_text()
            command = (folder / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        uid = next((line.split()[1] for line in text.splitlines() if line.startswith("Uid:")),
                   None)
        other = "sandbox_server.py" in command and SERVER_INSIDE not in command
        if uid == "65534" and not other:
            found.append(f"{folder.name}: {command[:200]}")
    return found


def ipc_objects() -> set[str]:
    out = subprocess.run(["ipcs"], capture_output=True, text=True).stdout
    return {line.split()[1] for line in out.splitlines() if line.startswith("0x")}


def our_cgroups() -> list[Path]:
    return [p for p in Path("/sys/fs/cgroup").glob("**/grading-*") if p.is_dir()]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    for name in ("07_im2col_and_fold", "04_fps_benchmark"):
        release(PROJECT_ROOT / "notebooks" / f"{name}.ipynb", out)
    return out


def _grade_attacks(name: str, dist: Path, tmp_path: Path, students: list[str] | None = None,
                   budget: float = 60) -> tuple[Path, list[Graded], float]:
    submissions, out = tmp_path / "submissions", tmp_path / "grades"
    submissions.mkdir()
    for fixture in sorted((ATTACKS / name).glob("*.py")):
        if students is not None and fixture.stem not in students:
            continue
        if students is None and fixture.stem in SEPARATE:
            continue
        build_submission(fixture, dist, submissions, out, name)
    before = ipc_objects()
    started = time.monotonic()
    # 8 s per cell: memory_children's four processes fill 1.6 GB on the one core their cgroup
    # gives them (3.3 s here) and must meet the memory limit before the time limit
    results = grade_all(submissions, dist / "autograder" / name, out, timeout=8.0,
                        budget=budget, echo=False)
    elapsed = time.monotonic() - started
    deadline = time.monotonic() + 5  # the kernel reaps a namespace's processes promptly
    while (nobody_processes() or our_cgroups()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert nobody_processes() == [], "a sandbox process outlived grading"
    assert ipc_objects() - before == set(), "a SysV IPC object outlived grading"
    assert our_cgroups() == []
    return out, results, elapsed


@needs_bwrap
def test_attacks_on_07_get_the_exact_grades_and_leave_nothing(dist: Path, tmp_path: Path) -> None:
    name = "07_im2col_and_fold"
    out, results, elapsed = _grade_attacks(name, dist, tmp_path)
    assert (out / "grades.csv").read_text() == (ATTACKS / name / "expected_grades.csv").read_text()
    print(f"{name} attacks: {elapsed:.1f} s;", {r.student: round(r.seconds, 1) for r in results})
    assert max(r.seconds for r in results) < 60
    errors = {r.student: r.error or "" for r in results}
    for student in ("link_to_autograder", "link_to_classmate"):
        assert errors[student].startswith("unreadable:") and "symbolic link" in errors[student]
    assert "is a symbolic link" in errors["zip_link"]
    assert "absolute path or '..'" in errors["zip_dotdot"] + errors["zip_absolute"]
    assert errors["deep_notebook"].startswith("unreadable: RecursionError")
    feedback = {r.student: (out / "feedback" / f"{r.student}.md").read_text() for r in results}
    assert "sandbox sent garbage: RecursionError" in feedback["deep_reply"]
    assert "sandbox sent garbage" in feedback["forged_reply"]
    assert "killed for memory" in feedback["memory_children"], feedback["memory_children"]
    written = (out / "written" / "why_fold_sums.md").read_text()
    assert "Fold is the transpose" in written  # the solution's answer, fenced
    summary = (out / "summary.md").read_text()
    assert "one cgroup per submission" in summary and "runs as nobody" in summary


@needs_bwrap
def test_given_drivers_come_from_the_master(dist: Path, tmp_path: Path) -> None:
    """04: a measure_fps that never synchronises scores 3/3 with the student's own copy of the
    driver (edited, or redefined in the answer cell) and 0 with the master's."""
    name = "04_fps_benchmark"
    out, _, _ = _grade_attacks(name, dist, tmp_path)
    assert (out / "grades.csv").read_text() == (ATTACKS / name / "expected_grades.csv").read_text()
    info, tests = load_tests(dist / "autograder" / name)
    # patching_driver fails the public test (it patches the driver during it) and passes the
    # hidden one, which carries every point since public tests carry none (issue 16)
    before_issue_17 = {"edited_driver": 3.0, "wrapped_driver": 3.0, "patching_driver": 3.0}
    for student, points in before_issue_17.items():  # the attacks are real: without master
        entry = next((tmp_path / "submissions").glob(f"{student}*"))
        graded = grade_submission(load_submission(entry, info["notebook"]), info["questions"],
                                  tests, ISO, timeout=2.0, master=None)
        assert graded.scores == {"measure_fps": points}, (student, graded.tests)


@needs_bwrap
def test_the_budget_holds_while_cells_sleep_and_hang(dist: Path, tmp_path: Path) -> None:
    name = "07_im2col_and_fold"
    out, results, _ = _grade_attacks(name, dist, tmp_path, ["slow_cells", "solution"], budget=6)
    seconds = {r.student: r.seconds for r in results}
    assert seconds["slow_cells"] < 7.5, seconds
    rows = {r["student"]: r["total"] for r in csv.DictReader(io.StringIO(
        (out / "grades.csv").read_text()))}
    assert rows == {"slow_cells": "0", "solution": "12"}
    assert "budget of this submission was used up" in \
        (out / "feedback" / "slow_cells.md").read_text()


def test_unreadable_submissions_are_rows_not_crashes(dist: Path, tmp_path: Path) -> None:
    """Without any sandbox: links, unsafe zips and a 100,000-level notebook each give a row with
    0 points and the reason, and the solution beside them its marks."""
    name = "07_im2col_and_fold"
    submissions, out = tmp_path / "submissions", tmp_path / "grades"
    submissions.mkdir()
    for student in ("deep_notebook", "link_to_autograder", "link_to_classmate", "solution",
                    "zip_absolute", "zip_dotdot", "zip_link"):
        build_submission(ATTACKS / name / f"{student}.py", dist, submissions, out, name)
    for student in ("link_to_autograder", "link_to_classmate"):  # live links, full marks
        assert (submissions / student / f"{name}.ipynb").resolve().is_file()
    (submissions / "linked_folder").symlink_to(submissions / "solution")
    shutil.copytree(submissions / "solution", submissions / "twin")  # "twin" and "twin!":
    shutil.copytree(submissions / "solution", submissions / "twin!")  # the same id
    results = grade_all(submissions, dist / "autograder" / name, out, timeout=2.0,
                        isolation_mode="none", echo=False)
    rows = {r["student"]: r["total"] for r in csv.DictReader(io.StringIO(
        (out / "grades.csv").read_text()))}
    assert rows == {"deep_notebook": "0", "link_to_autograder": "0", "link_to_classmate": "0",
                    "linked_folder": "0", "solution": "12", "twin__1": "0", "twin__2": "0",
                    "zip_absolute": "0", "zip_dotdot": "0", "zip_link": "0"}
    assert all(r.error.startswith("unreadable: ") for r in results if r.student != "solution")
    assert "several submissions map to the student id 'twin' (twin, twin!)" in \
        next(r.error for r in results if r.student == "twin__1")


def test_a_written_answer_cannot_forge_another_students_section() -> None:
    question = {"name": "why", "points": 2}
    forged = "My answer.\n```\n\n## bob\n\nBob's answer, written by ann.\n````\n## carl"
    results = [Graded("ann", written={"why": forged}), Graded("bob", written={"why": "Mine."})]
    text = written_markdown(question, results)
    fence = None
    headings = []
    for line in text.splitlines():
        if fence is None and line.startswith("```"):
            fence = line.removesuffix("text")
        elif fence is not None and line == fence:
            fence = None
        elif fence is None and line.startswith("#"):
            headings.append(line)
    assert headings == ["# why (/2): written answers", "## ann", "## bob"]
    assert "Bob's answer, written by ann." in text
