"""Grading the whole course at once: which assignment each submission of the inbox is, and the
plan of one run (``make grade SUBMISSIONS=inbox``, no ``ASSIGNMENT``).

Every folder or zip of the inbox is read (never run) and routed to the assignment its
*notebook* declares (otter's metadata, else its ``otter.Notebook(...)`` line), else the one its
name gives (``<id>__<assignment>.zip``), else the one its notebook's file name is. A student may
hand in several assignments (one zip each). What cannot be graded is still a row, never graded
as another assignment: a name and a notebook that disagree (the row goes to the notebook's
assignment, with the reason), an unreadable entry (to the assignment its name gives), two
entries of the same student and assignment (rows ``<id>__1``, ``<id>__2``). An entry that names
no released assignment at all is listed as *unsorted* in the course summary.

Each task carries a *key*: a SHA-256 of the notebook's bytes (or of why it is unreadable),
the entry's name and student id, the assignment's autograder (questions, tests, notebook) and
the grading settings. A result file ``results/<assignment>/<key>.json`` therefore belongs to
exactly this submission graded this way: a rerun skips it, anything changed is graded again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from course_utils.instructor.grading.submissions import (
    Submission,
    assignment_mismatch,
    mark_duplicates,
    parse_entry_name,
    parse_notebook,
    read_notebook,
    unreadable,
)
from course_utils.submit import notebook_assignment

PLAN_FORMAT = 1


@dataclass
class Task:
    """One submission of the inbox, routed: ``assignment`` None means it names none released;
    ``error`` set means it is a row with that reason and is not graded."""

    entry: str  # the folder's or zip's name in the inbox
    student: str
    assignment: str | None
    key: str = ""
    error: str | None = None
    digest: str = ""  # SHA-256 of the notebook's bytes (or of the error)


@dataclass
class Plan:
    """Everything a run grades and the tables need: the tasks (sorted by entry), each
    assignment's questions, the entries that name no assignment, and how the run was set."""

    tasks: list[Task]
    assignments: dict[str, dict]  # name -> {"questions", "notebook", "fingerprint", ...}
    settings: dict[str, Any]
    filtered_out: int = 0  # entries of released assignments left out by --assignment
    shards: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"format": PLAN_FORMAT, "tasks": [asdict(t) for t in self.tasks],
                           "assignments": self.assignments, "settings": self.settings,
                           "filtered_out": self.filtered_out, "shards": self.shards,
                           "extra": self.extra}, indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, where: Path) -> Plan:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != PLAN_FORMAT:
            raise ValueError(f"{where} is not a grading plan of this version (format "
                             f"{PLAN_FORMAT}): grade the shard again")
        return cls([Task(**t) for t in data["tasks"]], data["assignments"], data["settings"],
                   data["filtered_out"], data["shards"], data.get("extra", {}))


def autograder_fingerprint(autograder: Path) -> str:
    """SHA-256 of what grades an assignment: questions.json, the notebook and every test."""
    digest = hashlib.sha256()
    files = [autograder / "questions.json", *sorted((autograder / "tests").glob("*.py"))]
    info = json.loads((autograder / "questions.json").read_text(encoding="utf-8"))
    for path in [*files, autograder / info["notebook"]]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def grader_fingerprint() -> str:
    """SHA-256 of the code that grades (this package's grading modules and the checks the
    tests call): a result of another version of it is graded again."""
    package = Path(__file__).resolve().parents[2]
    digest = hashlib.sha256()
    for path in sorted([*Path(__file__).resolve().parent.glob("*.py"),
                        *(package / "exercise_checks").glob("*.py")]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def released_assignments(autograders: Path, only: list[str] | None = None) -> dict[str, Path]:
    """{assignment: its dist/autograder folder} for every released assignment in
    ``autograders``, in course order; ``only`` must name released ones."""
    found = {p.name: p.resolve() for p in sorted(Path(autograders).glob("*"))
             if (p / "questions.json").is_file()}
    if not found:
        raise FileNotFoundError(f"{autograders} holds no released assignment (no "
                                "<assignment>/questions.json): run `make release` first")
    unknown = sorted(set(only or []) - set(found))
    if unknown:
        raise ValueError(f"--assignment {', '.join(unknown)}: not released in {autograders} "
                         f"(released: {', '.join(found)})")
    return found


def reference_answers(autograder: Path, info: dict) -> dict[str, dict[str, str]]:
    """{"solutions": the master's answer code per question, "stubs": the student release's}
    (the similarity report leaves both out); stubs are empty when dist/student is missing."""
    from course_utils.instructor.grading.similarity import answer_code

    def code(path: Path) -> dict[str, str]:
        return answer_code(json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else {}

    student = autograder.parent.parent / "student" / autograder.name / info["notebook"]
    return {"solutions": code(autograder / info["notebook"]), "stubs": code(student)}


def inbox_entries(inbox: Path) -> list[Path]:
    """The folders and zips of the inbox (hidden entries skipped), sorted by name."""
    if not Path(inbox).is_dir():
        raise FileNotFoundError(f"{inbox} is not a folder of submissions (SUBMISSIONS=...)")
    return [e for e in sorted(Path(inbox).iterdir()) if not e.name.startswith(".")
            and (e.is_dir() or e.suffix == ".zip" or e.is_symlink())]


def identify(entry: Path, known: list[str]) -> tuple[Submission, str | None, bytes]:
    """(the submission, the assignment it is routed to or None, the bytes its key hashes).

    The notebook's own declaration wins; a name that disagrees with it makes the submission a
    row of the notebook's assignment with the reason (``assignment_mismatch``)."""
    student, named, refused = parse_entry_name(entry.stem if entry.suffix == ".zip"
                                               else entry.name)
    submission = Submission(student, entry)
    if refused:
        submission.error = f"not graded: {refused}"
        return submission, named, submission.error.encode()
    try:
        wanted = [f"{named}.ipynb"] if named else [f"{a}.ipynb" for a in known]
        member, data = read_notebook(entry, wanted)
        notebook = parse_notebook(data, member)
        stem = Path(member).stem
        assignment = notebook_assignment(notebook) or named or (stem if stem in known else None)
        mismatch = assignment_mismatch(named, notebook, assignment) if assignment else None
        if mismatch:
            submission.error = mismatch
            return submission, assignment, mismatch.encode()
        submission.notebook = notebook
        return submission, assignment, data
    except Exception as error:  # noqa: BLE001  (a crafted entry is its own result)
        submission.error = unreadable(error)
        return submission, named, submission.error.encode()


def task_key(task: Task, fingerprint: str, settings: dict) -> str:
    """The stable name of a task's result file (see the module's docstring)."""
    material = json.dumps([PLAN_FORMAT, task.entry, task.student, task.assignment, task.error,
                           task.digest, fingerprint, settings], sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def plan_course(inbox: Path, autograders: Path, settings: dict,
                only: list[str] | None = None) -> tuple[Plan, dict[str, Submission]]:
    """The plan of grading ``inbox`` against the assignments released in ``autograders``
    (``only``: a filter), and {entry name: the submission read}, for the graded tasks."""
    released = released_assignments(autograders, only)
    known = list(released)
    wanted = set(only or known)
    routed = [identify(e, known) for e in inbox_entries(inbox)]
    mark_duplicates([s for s, _, _ in routed], [(s.student, a) for s, a, _ in routed])
    assignments: dict[str, dict] = {}
    for name, folder in released.items():
        if name in wanted:
            info = json.loads((folder / "questions.json").read_text(encoding="utf-8"))
            assignments[name] = {"questions": info["questions"], "notebook": info["notebook"],
                                 "fingerprint": autograder_fingerprint(folder),
                                 "autograder": str(folder), **reference_answers(folder, info)}
    tasks, submissions, filtered_out = [], {}, 0
    for submission, assignment, data in routed:
        if assignment in released and assignment not in wanted:
            filtered_out += 1
            continue
        target = assignment if assignment in assignments else None
        error = submission.error
        if target is None and error is None:
            error = (f"not graded: its notebook is {assignment}, which is not an assignment "
                     f"released in {autograders}" if assignment else
                     "not graded: neither its notebook nor its name says which assignment it is")
        task = Task(submission.source.name, submission.student, target, error=error,
                    digest=hashlib.sha256(data).hexdigest())
        if target is not None:
            task.key = task_key(task, assignments[target]["fingerprint"], settings)
        tasks.append(task)
        submissions[task.entry] = submission
    return Plan(tasks, assignments, settings, filtered_out), submissions
