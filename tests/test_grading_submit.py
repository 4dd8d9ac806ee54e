"""Issue 16, submissions that cannot go wrong and feedback a teacher would send: ``submit``
names the zip for student and assignment and refuses a mismatch, an overwrite and an unsaved
(untouched) notebook; grading reports a notebook of another assignment and otter's export name
as rows; ``release`` never overwrites a student's work; the feedback numbers cells as
JupyterLab does, shows no hidden-test source, says a repeated error once and "1 point"."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

from course_utils.instructor.grading.__main__ import main as grading_main
from course_utils.instructor.grading.export import cell_source
from course_utils.instructor.grading.fixtures import build_notebook
from course_utils.instructor.grading.grade import grade_all
from course_utils.instructor.grading.release import release, release_all
from course_utils.paths import PROJECT_ROOT
from course_utils.submit import main as submit_main
from course_utils.submit import notebook_assignment, submit

N07, N06 = "07_im2col_and_fold", "06_conv_backprop_by_hand"
FIXTURES = PROJECT_ROOT / "tests" / "fixtures" / "submissions"


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    for name in (N07, N06):
        release(PROJECT_ROOT / "notebooks" / f"{name}.ipynb", out)
    return out


def _write(notebook: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(notebook, indent=1))
    return path


def _solution(dist: Path, name: str, folder: Path) -> Path:
    notebook = build_notebook(FIXTURES / name / "solution.py", dist, folder, name)
    return _write(notebook, folder / name / f"{name}.ipynb")


def test_the_notebook_says_which_assignment_it_is(dist: Path) -> None:
    path = dist / "student" / N07 / f"{N07}.ipynb"
    notebook = json.loads(path.read_text())
    assert notebook_assignment(notebook) == N07
    del notebook["metadata"]["otter"]  # then the first cell's otter.Notebook("...") says it
    assert notebook_assignment(notebook) == N07
    notebook["cells"] = notebook["cells"][1:]
    assert notebook_assignment(notebook) is None


def test_submit_names_the_zip_for_student_and_assignment(dist: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    out = tmp_path / "submissions"
    nb07, nb06 = _solution(dist, N07, tmp_path / "work"), _solution(dist, N06, tmp_path / "work")
    target, replaced = submit(nb07, "alice", out)
    assert target == out / f"alice__{N07}.zip" and not replaced
    assert zipfile.ZipFile(target).namelist() == [f"{N07}.ipynb"]
    # a second assignment is a second zip, not an overwrite of the first
    assert submit(nb06, "alice", out, assignment=N06)[0] == out / f"alice__{N06}.zip"
    assert sorted(p.name for p in out.iterdir()) == [f"alice__{N06}.zip", f"alice__{N07}.zip"]

    before = target.read_bytes()
    with pytest.raises(ValueError, match="already exists.*--replace"):
        submit(nb07, "alice", out)
    assert target.read_bytes() == before
    with pytest.raises(ValueError, match=f"is notebook {N06}, not {N07}"):
        submit(nb06, "bob", out, assignment=N07)
    assert not (out / f"bob__{N07}.zip").exists() and not (out / f"bob__{N06}.zip").exists()

    assert submit_main([str(nb07), "--student", "alice", "--out", str(out), "--replace"]) == 0
    assert capsys.readouterr().out.startswith(f"replaced {target}")
    assert submit_main([str(nb06), "--student", "bob", "--assignment", N07,
                        "--out", str(out)]) == 2
    assert f"is notebook {N06}, not {N07}" in capsys.readouterr().err
    # `make submit` (the grading CLI) says the same
    assert grading_main(["submit", str(nb06), "--student", "bob", "--assignment", N07,
                         "--out", str(out)]) == 2


def test_an_unsaved_notebook_is_refused(dist: Path, tmp_path: Path) -> None:
    """Answers typed in JupyterLab but not saved leave the file as released: every stub still
    raises NotImplementedError. Zipping it would hand in a blank notebook without a word."""
    release_copy = dist / "student" / N07 / f"{N07}.ipynb"
    with pytest.raises(ValueError, match=r"still holds every stub.*save the notebook \(Ctrl\+S\)"):
        submit(release_copy, "alice", tmp_path)
    assert not list(tmp_path.iterdir())
    target, _ = submit(release_copy, "alice", tmp_path, allow_empty=True)  # on purpose: allowed
    assert target.name == f"alice__{N07}.zip"


def test_the_student_side_submit_needs_no_instructor_code() -> None:
    code = ("import sys, course_utils.submit; "
            "sys.exit(any(m.startswith('course_utils.instructor') for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT).returncode == 0


def test_grading_reads_student_and_assignment_and_reports_mismatches(
        dist: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inbox, out = tmp_path / "inbox", tmp_path / "grades"
    submit(_solution(dist, N07, tmp_path / "work"), "bob", inbox)
    submit(_solution(dist, N06, tmp_path / "work"), "alice", inbox)  # 06 in a 07 inbox
    (inbox / f"alice__{N06}.zip").rename(inbox / f"alice__{N07}.zip")  # even renamed: refused
    submit(dist / "student" / N07 / f"{N07}.ipynb", "carol", inbox, allow_empty=True)
    # grader.export's default name: a timestamp, not a student
    stamped = inbox / f"{N07}_2026_12_04T01_02_03_123456.zip"
    shutil.copy(inbox / f"bob__{N07}.zip", stamped)
    grade_all(inbox, dist / "autograder" / N07, out, timeout=5.0)
    rows = {r["student"]: r for r in csv.DictReader(io.StringIO((out / "grades.csv").read_text()))}
    assert sorted(rows) == [stamped.stem, "alice", "bob", "carol"]
    assert rows["bob"]["total"] == "12" and rows["carol"]["total"] == "0"
    assert rows["alice"]["total"] == "0" and rows[stamped.stem]["total"] == "0"
    alice = (out / "feedback" / "alice.md").read_text()
    assert f"this is notebook {N06} (its notebook says so), graded as {N07}" in alice
    assert f"ASSIGNMENT={N06}" in alice
    stamp = (out / "feedback" / f"{stamped.stem}.md").read_text()
    assert "otter's export default" in stamp and "<id>__<assignment>.zip" in stamp
    summary = (out / "summary.md").read_text()
    assert f"graded as {N07}" in summary and "otter's export default" in summary
    printed = capsys.readouterr().out
    assert "bob: 12 points" in printed and "alice: 0 points" in printed

    # the feedback of the untouched release, as a teacher would send it
    feedback = (out / "feedback" / "carol.md").read_text()
    student = json.loads((dist / "student" / N07 / f"{N07}.ipynb").read_text())
    stub_cell = next(i for i, c in enumerate(student["cells"])
                     if "otter_answer_cell" in c["metadata"].get("tags", [])
                     and "def im2col" in cell_source(c))
    assert f"in cell {stub_cell + 1}, line" in feedback  # JupyterLab's "Cell N/M"
    assert f"in cell {stub_cell}, line" not in feedback
    assert "Error at line" not in feedback
    for test_file in (dist / "autograder" / N07 / "tests").glob("*.py"):
        for line in test_file.read_text().splitlines():
            if re.match(r"\s+check_\w+\(", line):
                assert line.strip() not in feedback, line
    errors = [line.strip() for line in feedback.splitlines() if "NotImplementedError" in line]
    assert errors and len(errors) == len(set(errors))  # each stub's error said once
    assert "the same error as" in feedback
    assert "1 points" not in feedback and re.search(r"\(\w+, 1 point\)", feedback)


def test_wrote_names_written_only_when_there_is_a_written_question(
        dist: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    autograder = tmp_path / "autograder"
    shutil.copytree(dist / "autograder" / N07, autograder)
    (tmp_path / "inbox").mkdir()
    grade_all(tmp_path / "inbox", autograder, tmp_path / "with")
    assert "feedback/, written/, summary.md" in capsys.readouterr().out
    info = json.loads((autograder / "questions.json").read_text())
    info["questions"] = [q for q in info["questions"] if not q["manual"]]
    (autograder / "questions.json").write_text(json.dumps(info))
    grade_all(tmp_path / "inbox", autograder, tmp_path / "without")
    printed = capsys.readouterr().out
    assert "feedback/, summary.md" in printed and "written/" not in printed


def test_release_never_overwrites_a_students_work(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    master = PROJECT_ROOT / "notebooks" / f"{N07}.ipynb"
    out = tmp_path / "dist"
    student, _ = release(master, out)
    checkpoint = student / ".ipynb_checkpoints" / f"{N07}-checkpoint.ipynb"
    checkpoint.parent.mkdir()
    shutil.copy(student / f"{N07}.ipynb", checkpoint)  # JupyterLab's copy: not work
    (student / "tests" / "__pycache__").mkdir()
    (student / "tests" / "__pycache__" / "im2col.cpython-311.pyc").write_bytes(b"\0")  # nor this
    release(master, out)  # an untouched release (new cell ids) is replaced without a word

    notebook = json.loads((student / f"{N07}.ipynb").read_text())
    cell = next(c for c in notebook["cells"] if "otter_answer_cell" in c["metadata"].get("tags", [])
                and "unfolded_shape" in cell_source(c))
    cell["source"] = "unfolded_shape = (9, 9)"
    work = {f"{N07}.ipynb": json.dumps(notebook), ".OTTER_LOG": "log",
            f"{N07}_2026_12_04T01_02_03_123456.zip": "zip"}
    for name, text in work.items():
        (student / name).write_text(text)
    with pytest.raises(RuntimeError, match=r"holds work that release did not write .*\.OTTER_LOG"):
        release(master, out)
    assert {n: (student / n).read_text() for n in work} == work  # kept, byte for byte
    assert grading_main(["release", str(master), "--out", str(out)]) == 2
    assert "--backup" in capsys.readouterr().err
    assert {n: (student / n).read_text() for n in work} == work

    release(master, out, backup=True)
    backups = list((out / "student-backup").iterdir())
    assert len(backups) == 1 and backups[0].name.startswith(f"{N07}-")
    assert {n: (backups[0] / n).read_text() for n in work} == work
    assert "moved to" in capsys.readouterr().err
    assert not (student / ".OTTER_LOG").exists()
    fresh = json.loads((student / f"{N07}.ipynb").read_text())
    assert "unfolded_shape = ..." in [cell_source(c) for c in fresh["cells"]]


def test_fixtures_are_built_from_a_fresh_release(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    """`make grade-fixtures` never reads dist/: it releases each master into a temporary
    folder (an edited dist/student scored 7 instead of 0 for the bare "release" fixture)."""
    import course_utils.instructor.grading.release as release_module

    outs: list[Path] = []
    real = release_module.release

    def spy(master: Path, out: Path, backup: bool = False) -> tuple[Path, Path]:
        outs.append(Path(out))
        return real(master, out, backup)

    monkeypatch.setattr(release_module, "release", spy)
    name = "04_fps_benchmark"  # the quickest to grade
    assert grading_main(["fixtures", name, "--out", str(tmp_path / "fixtures")]) == 0
    assert len(outs) == 1 and outs[0].is_relative_to(tempfile.gettempdir())
    assert not outs[0].is_relative_to(PROJECT_ROOT / "dist") and not outs[0].exists()
    expected = (FIXTURES / name / "expected_grades.csv").read_text()
    assert (tmp_path / "fixtures" / name / "grades" / "grades.csv").read_text() == expected


def test_zip_names_give_student_and_assignment_never_a_timestamp() -> None:
    from course_utils.instructor.grading.submissions import assignment_mismatch, parse_entry_name

    assert parse_entry_name(f"alice__{N07}") == ("alice", N07, None)
    assert parse_entry_name("alice") == ("alice", None, None)
    assert parse_entry_name("jean__pierre") == ("jean_pierre", None, None)  # no assignment
    student, named, refused = parse_entry_name(f"{N07}_2026_12_04T01_02_03_123456")
    assert named is None and refused and "otter's export default" in refused
    notebook = {"metadata": {"otter": {"assignment_name": N07}}, "cells": []}
    assert assignment_mismatch(N07, notebook, N07) is None
    assert assignment_mismatch(None, {"cells": []}, N07) is None  # says nothing: graded
    assert f"this is notebook {N06} (its file name says so), graded as {N07}" in \
        assignment_mismatch(N06, notebook, N07)


def test_one_otter_process_releases_several_masters_and_names_a_failing_one(
        tmp_path: Path) -> None:
    broken = tmp_path / "99_broken.ipynb"
    broken.write_text("not a notebook")
    master = PROJECT_ROOT / "notebooks" / "05_chain_rule.ipynb"
    with pytest.raises(RuntimeError, match="otter assign failed on .*99_broken.ipynb"):
        release_all([master, broken], tmp_path / "dist")
    assert not (tmp_path / "dist" / "student").exists(), "a failed batch released nothing"
