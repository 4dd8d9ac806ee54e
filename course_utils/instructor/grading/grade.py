"""One assignment's folder of submissions graded with the hidden tests, outside the student's
kernel, one after another (``grade --autograder dist/autograder/NN``, ``make grade-fixtures``;
``make grade`` grades the whole course with the same steps: ``course_run.py``).

For each submission (a folder or a zip holding the student's notebook):

1. the notebook is read as JSON (never executed here) and its *graded cells* are picked: the
   answer cells (otter's ``otter_answer_cell`` tag), the given ``#| export`` cells, and any cell
   that only defines functions, classes or imports (a student's helpers);
2. those cells run in a ``Sandbox`` (its own process, confined; see ``sandbox.py``), a cell that
   raises or times out is reported and the others still run;
3. the grader process runs every test of ``dist/autograder/<assignment>/tests`` (otter's
   exception-based test files, public and hidden) with *proxies* for the student's names: a
   call runs the student's function in the sandbox and returns its value as plain data, which
   the test compares, here, with PyTorch. So nothing the student's code does to numpy, to the
   checks or to otter in its own process can change a verdict: it can only return values.

Outputs in ``--out``: ``grades.csv`` (student x question points and the total of the
autograded questions; hand-graded questions left empty), ``feedback/<student>.md`` (every test
with its message, cell errors, the written answers), ``written/<question>.md`` (every student's
answer to a hand-graded question, for the marker) and ``summary.md``.

This module runs the whole grading (``grade_all``); the steps live in ``submissions`` (reading,
picking the graded cells), ``scoring`` (the tests against the sandbox) and ``grade_reports``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from course_utils.atomic import atomic_write_text
from course_utils.instructor.grading.confine import confined
from course_utils.instructor.grading.grade_reports import (
    feedback_markdown,
    grades_csv,
    marks_template,
    points_text,
    read_marks,
    summary_markdown,
    table_text,
    written_markdown,
)
from course_utils.instructor.grading.scoring import (
    Graded,
    grade_submission,
    load_tests,
    one_torch_thread,
)
from course_utils.instructor.grading.submissions import load_submissions


def grade_all(submissions_dir: Path, autograder: Path, out: Path, *, timeout: float = 10.0,
              budget: float = 120.0, memory_mb: int = 1024, isolation_mode: str = "auto",
              echo: bool = True, marks: Path | None = None) -> list[Graded]:
    """Grade every submission in ``submissions_dir``; write the reports into ``out``."""
    started = time.monotonic()
    autograder, out = Path(autograder).resolve(), Path(out).resolve()
    if not (autograder / "questions.json").exists():
        raise FileNotFoundError(f"{autograder} has no questions.json: run `make release` first")
    info, tests = load_tests(autograder)
    questions = info["questions"]
    out.mkdir(parents=True, exist_ok=True)  # exists before the first sandbox, so it is hidden
    iso = confined(isolation_mode)
    submissions = load_submissions(Path(submissions_dir), info["notebook"], info["assignment"])
    hand_marks = (read_marks(Path(marks), questions, [s.student for s in submissions])
                  if marks else {})  # read first: a bad marks file stops before any grading
    hide = [Path(submissions_dir).resolve(), out, autograder]
    settings = info.get("sandbox", {})
    memory_mb = max(memory_mb, int(settings.get("memory_mb", 0)))
    allow_imports = tuple(settings.get("allow_imports", []))
    # the given cells (drivers the tests call) come from here, never from a submission
    master = json.loads((autograder / info["notebook"]).read_text(encoding="utf-8"))
    results = []
    for submission in submissions:
        with one_torch_thread():
            graded = grade_submission(submission, questions, tests, iso, timeout=timeout,
                                      budget=budget, memory_mb=memory_mb, hide=hide,
                                      log_dir=out / "logs" / submission.student,
                                      allow_imports=allow_imports, master=master)
        graded.marks = hand_marks.get(graded.student, {})
        results.append(graded)
        atomic_write_text(out / "feedback" / f"{graded.student}.md",
                          feedback_markdown(graded, questions, info["assignment"], iso))
        if echo:
            print(f"{graded.student}: {points_text(graded.total)} ({graded.seconds:.1f} s)"
                  + (f": {graded.error}" if graded.error else ""), flush=True)
    for q in (q for q in questions if q["manual"]):
        atomic_write_text(out / "written" / f"{q['name']}.md", written_markdown(q, results))
    if any(q["manual"] for q in questions):
        atomic_write_text(out / "written" / "marks_template.csv",
                          marks_template(results, questions))
    atomic_write_text(out / "grades.csv", grades_csv(results, questions))
    atomic_write_text(out / "summary.md", summary_markdown(
        results, questions, info["assignment"], iso, time.monotonic() - started))
    if echo:
        written = "written/, " if any(q["manual"] for q in questions) else ""
        print("\n" + table_text(results, questions))
        print(f"\nSandbox: {iso.describe()}.\nWrote {out / 'grades.csv'}, feedback/, {written}"
              "summary.md")
    return results
