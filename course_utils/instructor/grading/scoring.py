"""Running the hidden tests against one submission: its graded cells run in a ``Sandbox``, and
each otter test runs here, in the grader's process, with proxies for the student's names."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from course_utils.instructor.grading import sandbox_server as wire
from course_utils.instructor.grading.sandbox import (
    BudgetExceeded,
    Isolation,
    Sandbox,
    SandboxError,
    StudentCodeError,
    StudentFunction,
)
from course_utils.instructor.grading.submissions import (
    Submission,
    given_names,
    graded_cells,
    written_answers,
)

MAX_MESSAGE = 3000


@dataclass
class TestResult:
    """The verdict of one test case (public or hidden) on one submission."""

    question: str
    name: str
    hidden: bool
    points: float
    passed: bool
    message: str = ""


@dataclass
class Graded:
    """One student's grading: points per question, every test, the cells' status, the written
    answers, the marker's points for hand-graded questions, and any error."""

    student: str
    scores: dict[str, float] = field(default_factory=dict)
    tests: list[TestResult] = field(default_factory=list)
    cells: dict[str, str] = field(default_factory=dict)
    written: dict[str, str] = field(default_factory=dict)
    marks: dict[str, float] = field(default_factory=dict)  # hand-graded questions, by the marker
    error: str | None = None
    seconds: float = 0.0

    @property
    def total(self) -> float:
        return sum(self.scores.values()) + sum(self.marks.values())


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """The grader's own torch (the tests' reference computations) on one thread, then as it
    was. The tensors are small: on a busy machine or with one worker per core, torch's
    default of a thread per core spins for its pool and made 07's tests 4-8x slower (1-2.5 s
    instead of 0.3 s per submission, measured on the shared 2-core machine). The sandbox
    already runs with OMP_NUM_THREADS=1."""
    try:
        import torch
    except ImportError:  # no torch, nothing to set
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def load_tests(autograder: Path) -> tuple[list[dict], dict[str, Any]]:
    """(questions from questions.json, {question: otter ExceptionTestFile})."""
    from otter.test_files.exception_test import ExceptionTestFile

    info = json.loads((Path(autograder) / "questions.json").read_text(encoding="utf-8"))
    tests = {}
    for question in info["questions"]:
        path = Path(autograder) / "tests" / f"{question['name']}.py"
        if not question["manual"]:
            if not path.exists():
                raise FileNotFoundError(f"{path} is missing: run `make release` again")
            tests[question["name"]] = ExceptionTestFile.from_file(str(path))
    return info, tests


def _parameters(test_file: Any) -> list[str]:
    names = []
    for case in test_file.test_cases:
        names += [n for n in case.body._get_func_params() if n != "env"]
    return names


def _case_name(case: Any) -> str:
    return getattr(case.body.test_func, "__name__", None) or case.name


def _message(error: BaseException) -> str:
    """What a student reads of a failed test: the error's own text (the checks name the
    input, what was expected, what came back, and a hint), never the test's source line,
    which otter's message quotes and which would show the hidden tests' calls."""
    if isinstance(error, StudentCodeError):  # the student's own exception, as raised
        text = str(error)
    else:
        text = f"{type(error).__name__}: {error}"
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + " [...]"


def grade_submission(submission: Submission, questions: list[dict], tests: dict[str, Any],
                     iso: Isolation, *, timeout: float = 10.0, budget: float = 120.0,
                     memory_mb: int = 1024, hide: list[Path] | None = None,
                     log_dir: Path | None = None, allow_imports: tuple[str, ...] = (),
                     master: dict | None = None) -> Graded:
    """Run one submission's cells in a sandbox and every test against them. ``master``: the
    autograder notebook, where the given cells come from. ``budget`` bounds everything, cells
    included; any error of this submission becomes its result (0 points and the reason)."""
    started = time.monotonic()
    try:
        return _grade(submission, questions, tests, iso, timeout=timeout, budget=budget,
                      memory_mb=memory_mb, hide=hide, log_dir=log_dir,
                      allow_imports=allow_imports, master=master, started=started)
    except Exception as error:  # noqa: BLE001  (one submission never stops the others)
        return failed_grading(submission.student, questions, tests,
                              f"grading failed: {type(error).__name__}: {str(error)[:300]}",
                              seconds=time.monotonic() - started)


def failed_grading(student: str, questions: list[dict], tests: dict[str, Any], reason: str,
                   seconds: float = 0.0) -> Graded:
    """A submission that could not be graded: 0 points for every auto-graded question, every
    test failed with ``reason``."""
    graded = Graded(student, seconds=seconds)
    graded.scores = {q["name"]: 0.0 for q in questions if not q["manual"]}
    graded.error = reason
    _fail_all(graded, tests, reason)
    return graded


def _grade(submission: Submission, questions: list[dict], tests: dict[str, Any],
           iso: Isolation, *, timeout: float, budget: float, memory_mb: int,
           hide: list[Path] | None, log_dir: Path | None, allow_imports: tuple[str, ...],
           master: dict | None, started: float) -> Graded:
    graded = Graded(submission.student)
    manual = [q["name"] for q in questions if q["manual"]]
    for question in questions:
        if not question["manual"]:
            graded.scores[question["name"]] = 0.0
    if submission.notebook is None:
        graded.error = submission.error
        _fail_all(graded, tests, graded.error or "no notebook")
        return graded
    graded.written = written_answers(submission.notebook, manual)
    blocked = tuple(n for n in wire.BLOCKED_IMPORTS if n not in allow_imports)
    sandbox = Sandbox(graded_cells(submission.notebook, blocked, master), iso,
                      memory_mb=memory_mb, cell_timeout=timeout, call_timeout=timeout, hide=hide,
                      log_dir=log_dir, allow_imports=allow_imports, deadline=started + budget,
                      protect=given_names(master, blocked) if master else None)
    try:
        try:
            sandbox.start()
            names = sorted({n for t in tests.values() for n in _parameters(t)})
            env: dict[str, Any] = {}
            for name, kind in sandbox.describe(names).items():
                if kind == "callable":
                    env[name] = StudentFunction(sandbox, name)
                elif kind == "value":
                    try:
                        env[name] = sandbox.get(name)
                    except SandboxError as error:
                        graded.cells[f"value of {name}"] = f"could not be read: {error}"
        except SandboxError as error:
            graded.error = f"the sandbox could not run this notebook: {error}"
            graded.cells.update(sandbox.cell_status)
            _fail_all(graded, tests, graded.error)
            return graded
        for question, test_file in tests.items():
            for case in test_file.test_cases:
                result = TestResult(question, _case_name(case), case.hidden, case.points, False)
                if time.monotonic() - started > budget:
                    result.message = f"not run: the {budget:g} s for this submission were used up"
                else:
                    try:
                        case.body.call_func(env)
                        result.passed = True
                    except BudgetExceeded as error:
                        result.message = f"stopped: {error}"
                    except Exception as error:
                        result.message = _message(error)
                graded.tests.append(result)
                if result.passed:
                    graded.scores[question] += case.points
        graded.cells.update(sandbox.cell_status)
    finally:
        sandbox.kill()
        if sandbox.notes:
            graded.cells["sandbox"] = "; ".join(dict.fromkeys(sandbox.notes))
        graded.seconds = time.monotonic() - started
    return graded


def _fail_all(graded: Graded, tests: dict[str, Any], message: str) -> None:
    for question, test_file in tests.items():
        for case in test_file.test_cases:
            graded.tests.append(TestResult(question, _case_name(case), case.hidden, case.points,
                                           False, message))
