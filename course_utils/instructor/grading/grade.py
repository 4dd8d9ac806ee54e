"""``make grade``: grade every submission with the hidden tests, outside the student's kernel.

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
"""

from __future__ import annotations

import ast
import csv
import io
import json
import re
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from course_utils.atomic import atomic_write_text
from course_utils.instructor.grading import sandbox_server as wire
from course_utils.instructor.grading.export import is_export_cell
from course_utils.instructor.grading.sandbox import (
    Isolation,
    Sandbox,
    SandboxError,
    StudentFunction,
    isolation,
)

ANSWER_TAG = "otter_answer_cell"
SOLUTION_TAG = "otter_assign_solution_cell"  # the same cells in dist/autograder's notebook
MAX_NOTEBOOK_BYTES = 20 << 20
MAX_MESSAGE = 3000


@dataclass
class Submission:
    student: str
    source: Path
    notebook: dict | None = None
    error: str | None = None


@dataclass
class TestResult:
    question: str
    name: str
    hidden: bool
    points: float
    passed: bool
    message: str = ""


@dataclass
class Graded:
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


# ---------------------------------------------------------------------------------------------
# Reading submissions
# ---------------------------------------------------------------------------------------------


def student_id(name: str) -> str:
    """A file-name-safe id from a folder or zip name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "unnamed"


def _parse_notebook(data: bytes, where: str) -> dict:
    if len(data) > MAX_NOTEBOOK_BYTES:
        raise ValueError(f"{where} is larger than {MAX_NOTEBOOK_BYTES >> 20} MB")
    notebook = json.loads(data.decode("utf-8"))
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise ValueError(f"{where} is not a Jupyter notebook (no cell list)")
    for cell in notebook["cells"]:
        source = cell.get("source", "") if isinstance(cell, dict) else None
        if not isinstance(source, str | list) or (
                isinstance(source, list) and not all(isinstance(s, str) for s in source)):
            raise ValueError(f"{where} has a malformed cell")
    return notebook


def _pick(names: list[str], notebook_name: str, where: str) -> str:
    candidates = [n for n in names if n.endswith(".ipynb") and "__MACOSX" not in n
                  and ".ipynb_checkpoints" not in n]
    exact = [n for n in candidates if Path(n).name == notebook_name]
    chosen = exact or candidates
    if len(chosen) != 1:
        raise ValueError(f"{where}: expected one {notebook_name}, found "
                         f"{len(chosen)} notebooks {[Path(n).name for n in chosen][:5]}")
    return chosen[0]


def load_submission(entry: Path, notebook_name: str) -> Submission:
    """A submission from a folder or a zip (the zip is read in memory, never extracted)."""
    student = student_id(entry.stem if entry.suffix == ".zip" else entry.name)
    submission = Submission(student, entry)
    try:
        if entry.is_dir():
            names = [str(p.relative_to(entry)) for p in sorted(entry.rglob("*.ipynb"))]
            path = entry / _pick(names, notebook_name, entry.name)
            submission.notebook = _parse_notebook(path.read_bytes(), path.name)
        else:
            with zipfile.ZipFile(entry) as archive:
                member = _pick(archive.namelist(), notebook_name, entry.name)
                if archive.getinfo(member).file_size > MAX_NOTEBOOK_BYTES:
                    raise ValueError(f"{member} is larger than {MAX_NOTEBOOK_BYTES >> 20} MB")
                submission.notebook = _parse_notebook(archive.read(member), member)
    except (OSError, ValueError, zipfile.BadZipFile, UnicodeDecodeError) as error:
        submission.error = f"could not read the submission: {error}"
    return submission


def load_submissions(folder: Path, notebook_name: str) -> list[Submission]:
    """Every folder and zip in ``folder`` (hidden entries skipped), sorted by name."""
    entries = [e for e in sorted(Path(folder).iterdir()) if not e.name.startswith(".")
               and (e.is_dir() or e.suffix == ".zip")]
    submissions = [load_submission(e, notebook_name) for e in entries]
    ids = [s.student for s in submissions]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"several submissions map to the same student id: {duplicates}; "
                         "rename them")
    return submissions


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _only_definitions(source: str) -> bool:
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return False
    allowed = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)
    return bool(body) and all(isinstance(node, allowed) for node in body)


def _without_magics(source: str) -> str:
    """IPython lines (``%time``, ``!ls``) commented out: the sandbox runs plain Python."""
    return "\n".join(f"# {line}  (IPython line, not run when grading)"
                     if line.lstrip().startswith(("%", "!")) else line
                     for line in source.splitlines())


def _imported_packages(source: str) -> set[str]:
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return set()
    names = set()
    for node in body:
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def graded_cells(notebook: dict, blocked: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """(label, source) of the cells run when grading: answer cells, ``#| export`` cells and
    cells that only define functions, classes or imports. A *given* cell that imports a
    package the sandbox blocks (02's model class needs torch) is left out: it could only fail,
    and no answer depends on it; an answer cell is always run."""
    cells = []
    for index, cell in enumerate(notebook["cells"]):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = _source(cell)
        metadata = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
        tags = metadata.get("tags", []) if isinstance(metadata.get("tags"), list) else []
        answer = bool({ANSWER_TAG, SOLUTION_TAG} & set(map(str, tags)))
        if not (answer or is_export_cell(cell) or _only_definitions(source)):
            continue
        if not answer and _imported_packages(source) & set(blocked):
            continue
        cells.append((f"cell {index}", _without_magics(source)))
    return cells


def written_answers(notebook: dict, manual: list[str]) -> dict[str, str]:
    """The markdown answer cells, in order, matched to the hand-graded questions in order."""
    answers = [_source(c) for c in notebook["cells"] if isinstance(c, dict)
               and c.get("cell_type") == "markdown"
               and {ANSWER_TAG, SOLUTION_TAG} & set(c.get("metadata", {}).get("tags", []))]
    return {name: (answers[i] if i < len(answers) else "") for i, name in enumerate(manual)}


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------


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


def _message(error: BaseException, test_file: Any) -> str:
    try:
        text = test_file._generate_error_message(error)
    except Exception:  # the traceback is not the shape otter expects
        text = f"{type(error).__name__}: {error}"
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + " [...]"


def grade_submission(submission: Submission, questions: list[dict], tests: dict[str, Any],
                     iso: Isolation, *, timeout: float = 10.0, budget: float = 120.0,
                     memory_mb: int = 1024, hide: list[Path] | None = None,
                     log_dir: Path | None = None, allow_imports: tuple[str, ...] = ()) -> Graded:
    """Run one submission's cells in a sandbox and every test against them."""
    started = time.monotonic()
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
    sandbox = Sandbox(graded_cells(submission.notebook, blocked), iso, memory_mb=memory_mb,
                      cell_timeout=timeout, call_timeout=timeout, hide=hide, log_dir=log_dir,
                      allow_imports=allow_imports)
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
                    except Exception as error:
                        result.message = _message(error, test_file)
                graded.tests.append(result)
                if result.passed:
                    graded.scores[question] += case.points
        graded.cells.update(sandbox.cell_status)
        if sandbox.confinement.get("not_hidden"):
            graded.cells["sandbox"] = "not hidden: " + "; ".join(sandbox.confinement["not_hidden"])
    finally:
        sandbox.kill()
        graded.seconds = time.monotonic() - started
    return graded


def _fail_all(graded: Graded, tests: dict[str, Any], message: str) -> None:
    for question, test_file in tests.items():
        for case in test_file.test_cases:
            graded.tests.append(TestResult(question, _case_name(case), case.hidden, case.points,
                                           False, message))


# ---------------------------------------------------------------------------------------------
# Reports
# ---------------------------------------------------------------------------------------------


def _points(value: float) -> str:
    return f"{round(value, 4):g}"


def _cell(graded: Graded, question: dict) -> str:
    """A question's points for one student; a hand-graded one is empty until it is marked."""
    name = question["name"]
    if question["manual"]:
        return _points(graded.marks[name]) if name in graded.marks else ""
    return _points(graded.scores.get(name, 0.0))


def grades_csv(results: list[Graded], questions: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student"] + [q["name"] for q in questions] + ["total"])
    for graded in results:
        writer.writerow([graded.student]
                        + [_cell(graded, q) for q in questions]
                        + [_points(graded.total)])
    return buffer.getvalue()


def feedback_markdown(graded: Graded, questions: list[dict], assignment: str,
                      iso: Isolation) -> str:
    lines = [f"# {assignment}: feedback for {graded.student}", ""]
    possible = sum(q["points"] for q in questions if not q["manual"])
    lines.append(f"Autograded: **{_points(sum(graded.scores.values()))} / {_points(possible)}**"
                 " points. "
                 "Hand-graded questions are marked separately.")
    if graded.error:
        lines += ["", f"**Problem:** {graded.error}"]
    lines += ["", "| question | points | out of |", "|---|---|---|"]
    for q in questions:
        score = ((_cell(graded, q) or "by hand") if q["manual"]
                 else _points(graded.scores.get(q["name"], 0.0)))
        lines.append(f"| {q['name']} | {score} | {_points(q['points'])} |")
    for q in questions:
        if q["manual"]:
            answer = graded.written.get(q["name"], "").strip() or "(no answer)"
            lines += ["", f"## {q['name']} (graded by hand)", "", answer]
            continue
        lines += ["", f"## {q['name']}", ""]
        for test in (t for t in graded.tests if t.question == q["name"]):
            kind = "hidden" if test.hidden else "public"
            mark = "passed" if test.passed else "FAILED"
            lines.append(f"- {mark}: {test.name} ({kind}, {_points(test.points)} points)")
            if not test.passed and test.message:
                lines += ["", "  ```", *("  " + m for m in test.message.splitlines()), "  ```",
                          ""]
    problems = {k: v for k, v in graded.cells.items() if v != "ok"}
    if problems:
        lines += ["", "## Cells that did not run cleanly when grading", ""]
        lines += [f"- {label}: {text}" for label, text in problems.items()]
    lines += ["", f"_Graded in {graded.seconds:.1f} s; sandbox: {iso.describe()}._", ""]
    return "\n".join(lines)


def table_text(results: list[Graded], questions: list[dict]) -> str:
    rows = list(csv.reader(io.StringIO(grades_csv(results, questions))))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)


def summary_markdown(results: list[Graded], questions: list[dict], assignment: str,
                     iso: Isolation, seconds: float) -> str:
    auto = [q for q in questions if not q["manual"]]
    header = ["student"] + [f"{q['name']} (/{_points(q['points'])})" for q in questions] \
        + ["total", "seconds"]
    lines = [f"# {assignment}: grades", "",
             f"{len(results)} submissions graded in {seconds:.1f} s. Sandbox: {iso.describe()}.",
             "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for g in results:
        cells = [_cell(g, q) for q in questions]
        lines.append(f"| {g.student} | " + " | ".join(cells)
                     + f" | {_points(g.total)} | {g.seconds:.1f} |")
    if results:
        means = [("" if q["manual"] else
                  _points(sum(g.scores.get(q["name"], 0.0) for g in results) / len(results)))
                 for q in questions]
        lines.append("| *mean* | " + " | ".join(means)
                     + f" | {_points(sum(g.total for g in results) / len(results))} | |")
    problems = [g for g in results if g.error]
    if problems:
        lines += ["", "Submissions with problems:", ""]
        lines += [f"- {g.student}: {g.error}" for g in problems]
    lines += ["", f"Autograded total out of {_points(sum(q['points'] for q in auto))}; "
              "hand-graded: " + (", ".join(f"{q['name']} (/{_points(q['points'])})"
                                           for q in questions if q["manual"]) or "none")
              + " (answers in written/; merge the marker's points with --marks "
              "written/marks_template.csv once filled in).", ""]
    return "\n".join(lines)


def read_marks(path: Path, questions: list[dict], students: list[str]) -> dict[str, dict]:
    """The marker's points for the hand-graded questions: a CSV with a ``student`` column and
    one column per hand-graded question (``written/marks_template.csv`` is one to fill in).
    Empty cells are not marked yet. Raises ValueError naming the file, row and column of a
    student, question or value it cannot use."""
    manual = {q["name"]: q["points"] for q in questions if q["manual"]}
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if rows and "student" not in rows[0]:
        raise ValueError(f"{path}: no 'student' column; start from written/marks_template.csv")
    marks: dict[str, dict] = {}
    for line, row in enumerate(rows, start=2):
        student = (row.pop("student") or "").strip()
        if student not in students:
            raise ValueError(f"{path}, line {line}: no submission from student {student!r}")
        for question, text in row.items():
            if question not in manual:
                raise ValueError(f"{path}: column {question!r} is not a hand-graded question "
                                 f"(those are {sorted(manual)})")
            if text is None or not text.strip():
                continue
            try:
                value = float(text)
            except ValueError:
                raise ValueError(f"{path}, line {line}, {question}: {text!r} is not a number"
                                 ) from None
            if not 0 <= value <= manual[question]:
                raise ValueError(f"{path}, line {line}, {question}: {value:g} is outside "
                                 f"0..{manual[question]:g}")
            marks.setdefault(student, {})[question] = value
    return marks


def marks_template(results: list[Graded], questions: list[dict]) -> str:
    """The CSV a marker fills in (``--marks``): one row per student, hand-graded columns."""
    manual = [q["name"] for q in questions if q["manual"]]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student", *manual])
    for graded in results:
        writer.writerow([graded.student] + [_cell(graded, q) for q in questions if q["manual"]])
    return buffer.getvalue()


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
    iso = isolation(isolation_mode)
    submissions = load_submissions(Path(submissions_dir), info["notebook"])
    hand_marks = (read_marks(Path(marks), questions, [s.student for s in submissions])
                  if marks else {})  # read first: a bad marks file stops before any grading
    hide = [Path(submissions_dir).resolve(), out, autograder]
    settings = info.get("sandbox", {})
    memory_mb = max(memory_mb, int(settings.get("memory_mb", 0)))
    allow_imports = tuple(settings.get("allow_imports", []))
    results = []
    for submission in submissions:
        graded = grade_submission(submission, questions, tests, iso, timeout=timeout,
                                  budget=budget, memory_mb=memory_mb, hide=hide,
                                  log_dir=out / "logs" / submission.student,
                                  allow_imports=allow_imports)
        graded.marks = hand_marks.get(graded.student, {})
        results.append(graded)
        atomic_write_text(out / "feedback" / f"{graded.student}.md",
                          feedback_markdown(graded, questions, info["assignment"], iso))
        if echo:
            print(f"{graded.student}: {_points(graded.total)} points ({graded.seconds:.1f} s)",
                  flush=True)
    for q in (q for q in questions if q["manual"]):
        text = [f"# {q['name']} (/{_points(q['points'])}): written answers", ""]
        for graded in results:
            text += [f"## {graded.student}", "", graded.written.get(q["name"], "").strip()
                     or "(no answer)", ""]
        atomic_write_text(out / "written" / f"{q['name']}.md", "\n".join(text))
    if any(q["manual"] for q in questions):
        atomic_write_text(out / "written" / "marks_template.csv",
                          marks_template(results, questions))
    atomic_write_text(out / "grades.csv", grades_csv(results, questions))
    atomic_write_text(out / "summary.md", summary_markdown(
        results, questions, info["assignment"], iso, time.monotonic() - started))
    if echo:
        print("\n" + table_text(results, questions))
        print(f"\nSandbox: {iso.describe()}.\nWrote {out / 'grades.csv'}, feedback/, written/, "
              "summary.md")
    return results
