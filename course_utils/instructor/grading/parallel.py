"""Grading the tasks of a plan on all cores, each result written atomically as it finishes.

``--jobs N`` worker processes each take one submission at a time and grade it exactly as the
serial grader does (``scoring.grade_submission``): a ``Sandbox`` of its own, started for that
submission and killed after it (bubblewrap namespaces, its own cgroup, as in ``sandbox.py``).
Nothing is shared between two submissions but the worker's copy of the hidden tests, which
the grader (never the student's code) runs. ``--jobs 1`` grades in this process, in order.
The workers are forked from a fresh *fork server* (``multiprocessing``'s forkserver: nothing
of the grader's own state is inherited) that has imported otter and torch once (8-10 s of
imports that each worker would otherwise repeat).

Each result is ``results/<assignment>/<key>.json`` (``course.task_key``): a rerun grades only
the tasks without one (``regrade=True`` grades all again); a half-written file never exists
(``atomic.py``) and one that does not read back is graded again.

A worker that dies (killed for the grader's memory, say) breaks the whole pool, and every task
it held fails with it. Those tasks are graded again, each in a pool of its own: the others get
their grades, and a task whose worker dies again is that submission's result (0 points, "the
grader's worker died"), never a stop of the run.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict
from pathlib import Path
from typing import Any

from course_utils.atomic import atomic_write_text
from course_utils.instructor.grading.course import Plan, Task
from course_utils.instructor.grading.sandbox import Isolation
from course_utils.instructor.grading.scoring import Graded, TestResult
from course_utils.instructor.grading.submissions import Submission

RESULT_FORMAT = 1
PRELOAD = ["course_utils.instructor.grading.scoring", "otter.test_files.exception_test", "torch"]
_LOADED: dict[str, tuple[dict, dict, dict]] = {}  # autograder -> (info, tests, master): per worker


def default_jobs() -> int:
    """The cores this process may run on (``os.sched_getaffinity``: a Slurm or container CPU
    set, not the machine's count)."""
    return max(1, len(os.sched_getaffinity(0)))


def result_path(results: Path, task: Task) -> Path:
    return Path(results) / str(task.assignment) / f"{task.key}.json"


def graded_to_dict(graded: Graded) -> dict:
    return asdict(graded)


def graded_from_dict(data: dict) -> Graded:
    """A ``Graded`` back from its result file (floats round-trip exactly through JSON)."""
    fields = dict(data)
    fields["tests"] = [TestResult(**t) for t in fields.get("tests", [])]
    return Graded(**fields)


def read_result(path: Path, task: Task) -> dict | None:
    """The result file of ``task``, or None when missing or not this task's (graded again)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != RESULT_FORMAT \
            or data.get("key") != task.key or not isinstance(data.get("graded"), dict):
        return None
    return data


def _loaded(autograder: str) -> tuple[dict, dict, dict]:
    if autograder not in _LOADED:
        from course_utils.instructor.grading.scoring import load_tests

        info, tests = load_tests(Path(autograder))
        master = json.loads((Path(autograder) / info["notebook"]).read_text(encoding="utf-8"))
        _LOADED[autograder] = (info, tests, master)
    return _LOADED[autograder]


def grade_one(task: Task, submission: Submission, context: dict[str, Any]) -> dict:
    """Grade one task (in a worker or here) and write its result file; returns its content."""
    from course_utils.instructor.grading.scoring import grade_submission, one_torch_thread

    info, tests, master = _loaded(context["autograder"])
    settings = context["settings"]
    sandbox = info.get("sandbox", {})
    with one_torch_thread():
        graded = grade_submission(
            submission, info["questions"], tests, context["iso"], timeout=settings["timeout"],
            budget=settings["budget"],
            memory_mb=max(settings["memory_mb"], int(sandbox.get("memory_mb", 0))),
            hide=[Path(h) for h in context["hide"]],
            log_dir=Path(context["logs"]) / submission.student,
            allow_imports=tuple(sandbox.get("allow_imports", [])), master=master)
    return write_result(task, submission, context, graded)


def write_result(task: Task, submission: Submission, context: dict[str, Any],
                 graded: Graded) -> dict:
    """Write ``task``'s result file atomically; returns its content."""
    from course_utils.instructor.grading.similarity import answer_code

    result = {"format": RESULT_FORMAT, "key": task.key, "assignment": task.assignment,
              "entry": task.entry, "student": task.student,
              "isolation": context["iso"].describe(), "graded": graded_to_dict(graded),
              "answers": answer_code(submission.notebook) if submission.notebook else {}}
    atomic_write_text(result_path(context["results"], task), json.dumps(result, indent=1) + "\n")
    return result


def grade_alone(task: Task, submission: Submission, context: dict[str, Any], server: Any,
                grade: Callable[..., dict] = grade_one) -> dict:
    """Grade ``task`` in a pool of its own; a worker that dies on it gives its result."""
    from course_utils.instructor.grading.scoring import failed_grading

    with ProcessPoolExecutor(max_workers=1, mp_context=server) as pool:
        try:
            return pool.submit(grade, task, submission, context).result()
        except BrokenProcessPool:
            info, tests, _ = _loaded(context["autograder"])
            graded = failed_grading(submission.student, info["questions"], tests,
                                    "grading failed: the grader's worker died while grading "
                                    "this submission, twice (killed for memory?)")
            return write_result(task, submission, context, graded)


class Progress:
    """``grading: 12/40 done, 1 with problems`` on stderr: rewritten in place on a terminal,
    a line at most every ``every`` seconds (and the last) in a log file."""

    def __init__(self, total: int, already: int, every: float = 5.0):
        self.total, self.done, self.failed, self.already = total, already, 0, already
        self.every, self.last, self.tty = every, 0.0, sys.stderr.isatty()

    def step(self, result: dict) -> None:
        self.done += 1
        self.failed += bool(result["graded"].get("error"))
        self.show()

    def show(self, final: bool = False) -> None:
        now = time.monotonic()
        if not (final or self.tty or now - self.last >= self.every):
            return
        self.last = now
        kept = f", {self.already} kept from an earlier run" if self.already else ""
        line = (f"grading: {self.done}/{self.total} done, {self.failed} with problems{kept}")
        print(("\r" + line) if self.tty else line, end="\n" if final or not self.tty else "",
              file=sys.stderr, flush=True)


def grade_plan(plan: Plan, submissions: dict[str, Submission], out: Path, iso: Isolation, *,
               jobs: int, hide: list[Path], regrade: bool = False,
               grade: Callable[..., dict] = grade_one) -> dict[str, int]:
    """Grade every routed task of ``plan`` without a result in ``out/results`` (all of them
    with ``regrade``); returns {"graded": n, "kept": n}. ``grade``: what a worker runs for
    one task (``grade_one``; a module-level function, as workers import it)."""
    results = Path(out) / "results"
    todo = [t for t in plan.tasks if t.assignment is not None
            and (regrade or read_result(result_path(results, t), t) is None)]
    routed = sum(t.assignment is not None for t in plan.tasks)
    progress = Progress(routed, routed - len(todo))
    progress.show(final=not todo)

    def context(task: Task) -> dict[str, Any]:
        return {"autograder": plan.assignments[task.assignment]["autograder"],
                "settings": plan.settings, "iso": iso, "hide": [str(h) for h in hide],
                "logs": str(Path(out) / task.assignment / "logs"), "results": str(results)}

    if jobs <= 1 or len(todo) <= 1:
        for task in todo:
            progress.step(grade(task, submissions[task.entry], context(task)))
    else:
        server = multiprocessing.get_context("forkserver")
        server.set_forkserver_preload(PRELOAD)
        lost: list[Task] = []  # tasks of a pool a dead worker broke
        with ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=server) as pool:
            tasks = {pool.submit(grade, t, submissions[t.entry], context(t)): t for t in todo}
            pending = set(tasks)
            try:
                while pending:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished:
                        try:
                            progress.step(future.result())
                        except BrokenProcessPool:
                            lost.append(tasks[future])
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
        for task in sorted(lost, key=todo.index):
            progress.step(grade_alone(task, submissions[task.entry], context(task), server,
                                      grade))
    if todo:
        progress.show(final=True)
    return {"graded": len(todo), "kept": routed - len(todo)}
