"""Grading the whole course at once (issue 19) on the two quickest assignments (04, 05):
routing by the notebook's own assignment, the gradebook, ``--jobs``, resuming, shards and
``merge``, the LMS exports and the similarity report.

The inbox is the fixture submissions of both (tests/fixtures/submissions), named as
``make submit`` names them (``<student>__<assignment>``, so "solution" and "release" each hand
in two), plus a notebook of 05 named as 04 (a row of 05, not graded), an entry that names
no assignment, and two students who handed in 05's wrong answer of ``wrong_backward`` (one
with other names, comments and layout): the similarity report must pair all three.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import grading_faults
import pytest

from course_utils.instructor.grading.course import plan_course
from course_utils.instructor.grading.course_reports import build_tables
from course_utils.instructor.grading.course_run import grade_course, merge
from course_utils.instructor.grading.fixtures import build_notebook, build_submission
from course_utils.instructor.grading.lms import write_export
from course_utils.instructor.grading.release import release
from course_utils.instructor.grading.sandbox import isolation
from course_utils.instructor.grading.shards import read_plan, shard_of
from course_utils.instructor.grading.similarity import normalise, similar_pairs
from course_utils.paths import PROJECT_ROOT

FIXTURES = PROJECT_ROOT / "tests" / "fixtures" / "submissions"
ATTACKS = PROJECT_ROOT / "tests" / "fixtures" / "attacks"
A04, A05 = "04_fps_benchmark", "05_chain_rule"
RENAMED_COPY = '''
def backward(c):
    # my own work, honestly
    fp = ACTIVATION_FUNCTIONS[c["f"]][1]
    gp = ACTIVATION_FUNCTIONS[c["g"]][1]
    err = c["y"] - c["t"]
    d2 = err * gp(c["y"])   # output delta
    dh = d2 * c["w3"]
    d1 = dh * fp(c["z1"])
    return {"dE_dy": err, "dE_dw3": d2 * c["h"], "dE_dh": dh,
            "dE_dw1": d1 * c["x1"],
            "dE_dw2": d1 * c["x2"]}
'''
EXPECTED_05 = (FIXTURES / A05 / "expected_grades.csv").read_text().splitlines()
EXPECTED_05 = "\n".join([EXPECTED_05[0], "copy_a,2,0,,2", "copy_b,2,0,,2", "mix,0,0,,0",
                         *EXPECTED_05[1:]]) + "\n"
EXPECTED_GRADEBOOK = """\
student,04_fps_benchmark,05_chain_rule,total
copy_a,,2,2
copy_b,,2,2
mix,,0,0
release,0,0,0
solution,3,5,8
wrong_backward,,2,2
wrong_measure_fps,0,,0
"""


def _tables(out: Path) -> dict[str, str]:
    names = ["gradebook.csv", "marks_template.csv", f"{A04}/grades.csv", f"{A05}/grades.csv",
             f"{A05}/written/marks_template.csv", f"{A05}/similarity.md"]
    return {n: (out / n).read_text() for n in names}


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with ``dist/`` (04 and 05 released) and ``inbox/``."""
    root = tmp_path_factory.mktemp("course")
    dist, inbox = root / "dist", root / "inbox"
    inbox.mkdir()
    for name in (A04, A05):
        release(PROJECT_ROOT / "notebooks" / f"{name}.ipynb", dist)
        build = root / "build" / name / "submissions"
        build.mkdir(parents=True)
        for fixture in sorted((FIXTURES / name).glob("*.py")):
            build_submission(fixture, dist, build, root / "unused", name)
        for entry in build.iterdir():
            entry.rename(inbox / f"{entry.stem}__{name}{entry.suffix}")
    wrong = build_notebook(FIXTURES / A05 / "wrong_backward.py", dist, root, A05)
    for student, edit in (("copy_a", None), ("copy_b", RENAMED_COPY)):
        notebook = json.loads(json.dumps(wrong))
        if edit:
            cell = next(c for c in notebook["cells"] if "def backward(" in "".join(c["source"])
                        and "otter_answer_cell" in c["metadata"].get("tags", []))
            cell["source"] = edit.strip("\n")
        with zipfile.ZipFile(inbox / f"{student}__{A05}.zip", "w") as archive:
            archive.writestr(f"{A05}.ipynb", json.dumps(notebook))
    solution = build_notebook(FIXTURES / A05 / "solution.py", dist, root, A05)
    with zipfile.ZipFile(inbox / f"mix__{A04}.zip", "w") as archive:  # 05's notebook named 04
        archive.writestr(f"{A05}.ipynb", json.dumps(solution))
    with zipfile.ZipFile(inbox / "stray.zip", "w") as archive:
        archive.writestr("notes.txt", "no notebook here")
    return root


@pytest.fixture(scope="module")
def serial(course: Path) -> Path:
    out = course / "serial"
    counts = grade_course(course / "inbox", course / "dist" / "autograder", out, jobs=1,
                          echo=False)
    assert counts["graded"] == 9 and counts["kept"] == 0
    return out


def test_each_submission_is_graded_as_the_assignment_its_notebook_declares(serial: Path
                                                                            ) -> None:
    assert (serial / A04 / "grades.csv").read_text() == \
        (FIXTURES / A04 / "expected_grades.csv").read_text()
    assert (serial / A05 / "grades.csv").read_text() == EXPECTED_05
    assert (serial / "gradebook.csv").read_text() == EXPECTED_GRADEBOOK
    mix = (serial / A05 / "feedback" / "mix.md").read_text()
    assert "wrong assignment" in mix and "file name" in mix
    summary = (serial / "summary.md").read_text()
    assert "stray.zip" in summary and "not graded" in summary
    assert "solution,05_chain_rule,dead_relu," in (serial / "marks_template.csv").read_text()


def test_two_entries_of_one_student_and_assignment_are_rows_not_graded(course: Path,
                                                                     tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for entry in (f"solution__{A04}", f"solution__{A05}", f"copy_a__{A05}.zip"):
        source = course / "inbox" / entry
        (shutil.copytree if source.is_dir() else shutil.copy)(source, inbox / entry)
    shutil.copy(course / "inbox" / f"copy_a__{A05}.zip", inbox / f"solution__{A05}.zip")
    plan, _ = plan_course(inbox, course / "dist" / "autograder", {})
    rows = {(t.student, t.assignment): t.error for t in plan.tasks}
    assert rows[("solution", A04)] is None and rows[("copy_a", A05)] is None
    for student in ("solution__1", "solution__2"):
        assert "several submissions map to the student id 'solution'" in rows[(student, A05)]


def test_all_cores_give_byte_identical_tables(course: Path, serial: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = course / "parallel"
    counts = grade_course(course / "inbox", course / "dist" / "autograder", out, jobs=2,
                          echo=False)
    assert counts["graded"] == 9
    assert _tables(out) == _tables(serial)
    assert "grading: 9/9 done, 1 with problems" in capsys.readouterr().err  # mix


def test_a_worker_that_dies_costs_only_its_submission(course: Path, serial: Path) -> None:
    """A dead worker breaks the whole pool; its tasks are graded again one at a time, so only
    the submission whose worker dies again is lost, as its own row, and the run ends."""
    out = course / "dying"
    counts = grade_course(course / "inbox", course / "dist" / "autograder", out, jobs=2,
                          grade=grading_faults.grade_or_die, echo=False)
    assert counts["graded"] == 9
    assert (out / A04 / "grades.csv").read_text() == (serial / A04 / "grades.csv").read_text()
    ours, theirs = ((folder / A05 / "grades.csv").read_text().splitlines()
                    for folder in (out, serial))
    dying = grading_faults.DYING_STUDENT
    assert [r for r in ours if not r.startswith(dying + ",")] == \
        [r for r in theirs if not r.startswith(dying + ",")]
    row = next(r for r in ours if r.startswith(dying + ","))
    assert row.split(",")[-1] == "0" and next(
        r for r in theirs if r.startswith(dying + ",")).split(",")[-1] != "0"
    assert "the grader's worker died" in (out / A05 / "summary.md").read_text()


def _left_behind() -> list[str]:
    """Processes of ``nobody`` running our sandbox server, and our cgroups."""
    found = [str(p) for p in Path("/sys/fs/cgroup").glob("**/grading-*") if p.is_dir()]
    for folder in Path("/proc").glob("[0-9]*"):
        try:
            status = (folder / "status").read_text()
            command = (folder / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        uid = next((ln.split()[1] for ln in status.splitlines() if ln.startswith("Uid:")), "")
        if uid == "65534" and "/grading/sandbox_server.py" in command:
            found.append(f"{folder.name}: {command[:100]}")
    return found


@pytest.mark.skipif(not (isolation().namespaces and os.geteuid() == 0),
                    reason="needs root and bwrap (as in CI)")
def test_hostile_submissions_graded_two_at_a_time_get_the_serial_grades(
        tmp_path: Path) -> None:
    """07's attacks (tests/test_grading_attacks.py grades them one after another), two
    sandboxes at once: the same grades.csv, and nothing of any sandbox left afterwards (the
    shared-memory writer and reader may now run side by side)."""
    name = "07_im2col_and_fold"
    dist, inbox, build = tmp_path / "dist", tmp_path / "inbox", tmp_path / "build" / "subs"
    release(PROJECT_ROOT / "notebooks" / f"{name}.ipynb", dist)
    inbox.mkdir()
    build.mkdir(parents=True)
    for fixture in sorted((ATTACKS / name).glob("*.py")):
        if fixture.stem != "slow_cells":  # graded on its own there, with a short budget
            build_submission(fixture, dist, build, tmp_path / "grades" / name, name)
    for entry in build.iterdir():
        entry.rename(inbox / f"{entry.stem}__{name}{entry.suffix}")
    grade_course(inbox, dist / "autograder", tmp_path / "grades", jobs=2, timeout=2.0,
                 budget=60, echo=False)
    assert (tmp_path / "grades" / name / "grades.csv").read_text() == \
        (ATTACKS / name / "expected_grades.csv").read_text()
    deadline = time.monotonic() + 5  # the kernel reaps a namespace's processes promptly
    while _left_behind() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _left_behind() == []


def test_a_rerun_grades_only_what_has_no_result(course: Path, serial: Path) -> None:
    out = course / "resumed"
    results = sorted((serial / "results").rglob("*.json"))
    for path in results[::2]:  # half of them kept, as an interrupted run leaves them
        target = out / path.relative_to(serial)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    broken = out / results[1].relative_to(serial)
    broken.write_text('{"format": 1, "key": "not this one"')  # does not read back: graded
    counts = grade_course(course / "inbox", course / "dist" / "autograder", out, jobs=2,
                          echo=False)
    assert counts == {**counts, "graded": len(results) - len(results[::2]),
                      "kept": len(results[::2])}
    assert _tables(out) == _tables(serial)
    counts = grade_course(course / "inbox", course / "dist" / "autograder", out, jobs=1,
                          only=[A04], regrade=True, echo=False)
    assert counts["graded"] == 3 and counts["kept"] == 0  # 04's three


def test_a_killed_run_started_again_ends_with_the_same_tables(course: Path, serial: Path
                                                              ) -> None:
    out = course / "killed"
    command = [sys.executable, "-m", "course_utils.instructor.grading", "grade",
               str(course / "inbox"), "--autograders", str(course / "dist" / "autograder"),
               "--out", str(out), "--jobs", "2"]  # workers, sandboxes and all killed
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    process = subprocess.Popen(command, env=env, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while len(list(out.rglob("results/*/*.json"))) < 3 and time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before it could be interrupted"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    kept = len(list(out.rglob("results/*/*.json")))
    assert 3 <= kept < 9 and not (out / "gradebook.csv").exists()
    left = [str(p) for p in Path("/sys/fs/cgroup").glob(f"**/grading-{process.pid}-*")]
    time.sleep(2.5)  # cgroup.remove_stale leaves cgroups younger than 2 s (being set up)
    counts = grade_course(course / "inbox", course / "dist" / "autograder", out, jobs=1,
                          echo=False)
    assert (counts["graded"], counts["kept"]) == (9 - kept, kept)
    assert _tables(out) == _tables(serial)
    assert [p for p in left if Path(p).exists()] == []  # the killed run's cgroups: removed


def test_three_shards_as_separate_processes_merge_into_one_runs_tables(
        course: Path, serial: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    shards = [course / f"shard-{k}" for k in range(3)]
    processes = [subprocess.Popen(
        [sys.executable, "-m", "course_utils.instructor.grading", "grade",
         str(course / "inbox"), "--autograders", str(course / "dist" / "autograder"),
         "--out", str(shards[k]), "--jobs", "1", "--shard", f"{k}/3"], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for k in range(3)]
    for process in processes:
        assert process.wait(timeout=300) == 0, process.stderr.read()
    keys = [{p.stem for p in s.rglob("results/*/*.json")} for s in shards]
    assert sum(len(k) for k in keys) == 9 and len(set().union(*keys)) == 9  # disjoint
    plan = read_plan(shards[0])
    for k, shard in enumerate(shards):  # each holds exactly its entries, by name
        mine = {t.key for t in plan.tasks if t.assignment and shard_of(t.entry, 3) == k}
        assert keys[k] == mine
        assert not (shard / "gradebook.csv").exists()
    with pytest.raises(ValueError, match=r"shards \[1\] of 3 are missing"):
        merge([shards[0], shards[2]], course / "merged")
    merge(list(reversed(shards)), course / "merged")
    assert _tables(course / "merged") == _tables(serial)


def test_one_assignment_is_a_filter_of_the_course(course: Path, serial: Path) -> None:
    out = course / "only-04"
    shutil.copytree(serial / "results", out / "results")  # same keys: nothing to grade again
    counts = grade_course(course / "inbox", course / "dist" / "autograder", out, jobs=1,
                          only=[A04], echo=False)
    assert (counts["graded"], counts["kept"]) == (0, 3)
    assert (out / A04 / "grades.csv").read_text() == (serial / A04 / "grades.csv").read_text()
    assert not (out / A05).exists()
    assert (out / "gradebook.csv").read_text().splitlines()[0] == f"student,{A04},total"
    assert "were left out (--assignment)" in (out / "summary.md").read_text()
    with pytest.raises(ValueError, match="99_none: not released"):
        grade_course(course / "inbox", course / "dist" / "autograder", out, only=["99_none"])
    with pytest.raises(ValueError, match="merge --marks"):  # a shard would drop the marks
        grade_course(course / "inbox", course / "dist" / "autograder", out, shard=(0, 2),
                     marks=course / "marks.csv", echo=False)


def test_an_entry_gone_from_the_inbox_leaves_no_feedback_behind(course: Path, serial: Path,
                                                                 tmp_path: Path) -> None:
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    shutil.copytree(course / "inbox", inbox)
    shutil.copytree(serial / "results", out / "results")
    grade_course(inbox, course / "dist" / "autograder", out, jobs=1, echo=False)
    assert (out / A05 / "feedback" / "copy_b.md").exists()
    (inbox / f"copy_b__{A05}.zip").unlink()
    grade_course(inbox, course / "dist" / "autograder", out, jobs=1, echo=False)
    assert not (out / A05 / "feedback" / "copy_b.md").exists()
    assert (out / A05 / "feedback" / "copy_a.md").exists()


def test_hand_marks_are_merged_into_the_gradebook(course: Path, serial: Path) -> None:
    plan, marks = read_plan(serial), course / "marks.csv"
    marks.write_text("student,assignment,question,points\nsolution,05_chain_rule,dead_relu,1.5\n"
                     "copy_a,05_chain_rule,dead_relu,\n")
    graded = build_tables(plan, [serial / "results"], course / "marked", marks)
    assert [g.total for g in graded[A05] if g.student == "solution"] == [6.5]
    rows = {r["student"]: r for r in csv.DictReader(
        io.StringIO((course / "marked" / "gradebook.csv").read_text()))}
    assert (rows["solution"][A05], rows["solution"]["total"]) == ("6.5", "9.5")
    assert "solution,2,3,1.5,6.5" in (course / "marked" / A05 / "grades.csv").read_text()
    for bad, why in (("solution,05_chain_rule,backward,1", "not a hand-graded question"),
                     ("solution,05_chain_rule,dead_relu,3", "outside 0..2"),
                     ("nobody,05_chain_rule,dead_relu,1", "no submission of 05_chain_rule")):
        marks.write_text(f"student,assignment,question,points\n{bad}\n")
        with pytest.raises(ValueError, match=rf"marks.csv, line 2: .*{why}"):
            build_tables(plan, [serial / "results"], course / "bad-marks", marks)


def test_canvas_and_moodle_exports(course: Path, serial: Path) -> None:
    students = ["copy_a", "copy_b", "mix", "release", "solution", "wrong_backward",
                "wrong_measure_fps"]
    mapping = course / "ids.csv"
    mapping.write_text("student,name,canvas_id,sis_user_id,section,email\n" + "".join(
        f"{s},Student {s},{100 + i},S{i},A,{s}@uni.example\n" for i, s in enumerate(students)))
    canvas = write_export(serial, "canvas", mapping).read_text().splitlines()
    assert canvas[:3] == [
        "Student,ID,SIS User ID,SIS Login ID,Section,04_fps_benchmark,05_chain_rule",
        "Points Possible,,,,,3,7", "Student copy_a,100,S0,,A,,2"]
    assert "Student solution,104,S4,,A,3,5" in canvas and len(canvas) == 2 + len(students)
    moodle = write_export(serial, "moodle", mapping).read_text().splitlines()
    assert moodle[0] == "Email address,04_fps_benchmark,05_chain_rule"
    assert "solution@uni.example,3,5" in moodle
    mapping.write_text("student,name,canvas_id\nsolution,S,1\n")
    with pytest.raises(ValueError, match=r"ids.csv: no LMS id for 6 students.*copy_a"):
        write_export(serial, "canvas", mapping)
    with pytest.raises(ValueError, match=r"ids.csv: the mapping file needs the columns "
                                         r"student, email"):
        write_export(serial, "moodle", mapping)
    mapping.write_text("student,name,canvas_id\nsolution,S,\n")
    with pytest.raises(ValueError, match=r"ids.csv, line 2: empty canvas_id or sis_user_id"):
        write_export(serial, "canvas", mapping)


def test_the_similarity_report_pairs_the_copies_and_leaves_out_stub_and_master(
        serial: Path) -> None:
    report = (serial / A05 / "similarity.md").read_text()
    ranked = [line for line in report.splitlines() if line.startswith("| ") and "%" in line]
    pairs = {line.split(" | ")[2] for line in ranked}
    assert pairs == {"copy_a, copy_b", "copy_a, wrong_backward", "copy_b, wrong_backward"}
    assert all(" backward " in line for line in ranked)
    assert "release" not in report  # the stub is no answer
    assert "# my own work, honestly" in report  # the answers as handed in, side by side
    master = report.split("master's solution (in no pair)")[1]
    assert "relu_derivative: copy_a, copy_b, solution, wrong_backward" in master
    assert "<pre>" in (serial / A05 / "similarity.html").read_text()


def test_normalising_ignores_names_comments_docstrings_and_layout() -> None:
    first = 'def f(x):\n    """Sum of squares."""\n    t = 0  # start\n    for v in x:\n' \
            '        t += v * v\n    return t\n'
    second = "def g(values):\n    acc=0\n    for item in values: acc += item*item\n    return acc"
    other = "def f(x):\n    return sum(map(lambda q: q ** 2, x))\n"
    assert "Sum of squares" not in normalise(first) and "#" not in normalise(first)
    answers = {"ann": {"q": first}, "bob": {"q": second}, "cy": {"q": other},
               "dee": {"q": "def f(x):\n    raise NotImplementedError\n"}}
    pairs, like_master = similar_pairs(answers, {"q": "def f(x):\n    raise "
                                                      "NotImplementedError\n"}, {})
    assert [(p.first, p.second, p.similarity) for p in pairs] == [("ann", "bob", 1.0)]
    pairs, like_master = similar_pairs(answers, {}, {"q": other})
    assert like_master == {"q": ["cy"]} and ("ann", "bob") in {(p.first, p.second)
                                                               for p in pairs}
