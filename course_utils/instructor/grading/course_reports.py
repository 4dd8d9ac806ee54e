"""The course's tables from a plan and its result files: per assignment what ``grade_all``
writes (grades.csv, feedback/, written/, summary.md), and for the course ``gradebook.csv``
(student x assignment totals, the marker's points included), ``marks_template.csv`` (every
hand-graded question of every submission, one row each), ``summary.md`` and the similarity
report. The tables depend on the plan and the results only, never on the order or the number
of processes or machines that graded them: one run, a resumed run and merged shards write the
same ``grades.csv`` and ``gradebook.csv``.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from course_utils.atomic import atomic_write_text
from course_utils.instructor.grading.course import Plan
from course_utils.instructor.grading.grade_reports import (
    feedback_markdown,
    format_points,
    grades_csv,
    marks_template,
    read_marks,
    summary_markdown,
    written_markdown,
)
from course_utils.instructor.grading.parallel import graded_from_dict, read_result, result_path
from course_utils.instructor.grading.scoring import Graded

COURSE_MARKS_COLUMNS = ["student", "assignment", "question", "points"]


@dataclass
class Described:
    """Stands for an ``Isolation`` in the reports: how the results' sandboxes were confined."""

    text: str

    def describe(self) -> str:
        return self.text


def collect_results(plan: Plan, folders: list[Path]) -> dict[str, dict]:
    """{task key: its result} from the first of ``folders`` (each a ``results/``) holding it.
    Raises ValueError naming the entries no folder holds (grade again to fill them in)."""
    found, missing = {}, []
    for task in (t for t in plan.tasks if t.assignment is not None):
        for folder in folders:
            result = read_result(result_path(folder, task), task)
            if result is not None:
                found[task.key] = result
                break
        else:
            missing.append(task.entry)
    if missing:
        raise ValueError(f"{len(missing)} submissions have no result in "
                         f"{', '.join(str(f) for f in folders)}: {', '.join(missing[:5])}"
                         + (" ..." if len(missing) > 5 else "")
                         + "; grade again (it grades only what is missing)")
    return found


def read_course_marks(path: Path, plan: Plan) -> dict[str, dict[str, dict[str, float]]]:
    """{assignment: {student: {question: points}}} from the marker's CSV: the course form
    (``student,assignment,question,points``, as ``marks_template.csv``) or, for a run of one
    assignment, that assignment's ``written/marks_template.csv``. ValueError names the file."""
    with open(path, newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle), [])
    students = {a: [t.student for t in plan.tasks if t.assignment == a] for a in plan.assignments}
    if "assignment" not in header:
        if len(plan.assignments) != 1:
            raise ValueError(f"{path}: no 'assignment' column; for the course use the form "
                             f"{','.join(COURSE_MARKS_COLUMNS)} (start from marks_template.csv)")
        (name, info), = plan.assignments.items()
        return {name: read_marks(Path(path), info["questions"], students[name])}
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if sorted(header) != sorted(COURSE_MARKS_COLUMNS):
        raise ValueError(f"{path}: columns {header}, expected {COURSE_MARKS_COLUMNS}")
    marks: dict[str, dict[str, dict[str, float]]] = {}
    for line, row in enumerate(rows, start=2):
        where = f"{path}, line {line}"
        assignment, student = row["assignment"].strip(), row["student"].strip()
        if assignment not in plan.assignments:
            raise ValueError(f"{where}: {assignment!r} is not an assignment of this run "
                             f"({', '.join(plan.assignments)})")
        manual = {q["name"]: q["points"] for q in plan.assignments[assignment]["questions"]
                  if q["manual"]}
        question, text = row["question"].strip(), (row["points"] or "").strip()
        if question not in manual:
            raise ValueError(f"{where}: {question!r} is not a hand-graded question of "
                             f"{assignment} (those are {sorted(manual)})")
        if student not in students[assignment]:
            raise ValueError(f"{where}: no submission of {assignment} from {student!r}")
        if not text:
            continue
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{where}: {text!r} is not a number") from None
        if not 0 <= value <= manual[question]:
            raise ValueError(f"{where}: {value:g} is outside 0..{manual[question]:g}")
        marks.setdefault(assignment, {}).setdefault(student, {})[question] = value
    return marks


def _course_marks_template(plan: Plan, graded: dict[str, list[Graded]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COURSE_MARKS_COLUMNS)
    for name, info in plan.assignments.items():
        for g in graded.get(name, []):
            for q in (q for q in info["questions"] if q["manual"]):
                mark = g.marks.get(q["name"])
                writer.writerow([g.student, name, q["name"],
                                 "" if mark is None else format_points(mark)])
    return buffer.getvalue()


def gradebook_csv(plan: Plan, graded: dict[str, list[Graded]]) -> str:
    """student x assignment totals (empty: no submission), and the course total."""
    totals: dict[str, dict[str, float]] = {}
    for name, rows in graded.items():
        for g in rows:
            totals.setdefault(g.student, {})[name] = g.total
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student", *plan.assignments, "total"])
    for student in sorted(totals):
        row = totals[student]
        writer.writerow([student] + [format_points(row[a]) if a in row else ""
                                     for a in plan.assignments]
                        + [format_points(sum(row.values()))])
    return buffer.getvalue()


def points_possible(plan: Plan) -> dict[str, float]:
    """{assignment: every question's points, hand-graded included} (the LMS exports)."""
    return {a: sum(q["points"] for q in info["questions"]) for a, info in plan.assignments.items()}


def _assignment_tables(out: Path, name: str, info: dict, rows: list[Graded],
                       iso: Described) -> None:
    questions = info["questions"]
    for g in rows:
        atomic_write_text(out / "feedback" / f"{g.student}.md",
                          feedback_markdown(g, questions, name, iso))
    current = {f"{g.student}.md" for g in rows}  # an entry gone from the inbox: its file too
    for stale in (out / "feedback").glob("*.md"):
        if stale.name not in current:
            stale.unlink()
    if any(q["manual"] for q in questions):
        for q in (q for q in questions if q["manual"]):
            atomic_write_text(out / "written" / f"{q['name']}.md", written_markdown(q, rows))
        atomic_write_text(out / "written" / "marks_template.csv", marks_template(rows, questions))
    atomic_write_text(out / "grades.csv", grades_csv(rows, questions))
    atomic_write_text(out / "summary.md", summary_markdown(
        rows, questions, name, iso, sum(g.seconds for g in rows)))


def _course_summary(plan: Plan, graded: dict[str, list[Graded]], iso: Described,
                    similar: dict[str, int]) -> str:
    lines = ["# The course's grades", "", f"Sandbox: {iso.describe()}.", "",
             "| assignment | submissions | with problems | mean total | out of | similar pairs |",
             "|---|---|---|---|---|---|"]
    possible = points_possible(plan)
    for name, rows in graded.items():
        mean = format_points(sum(g.total for g in rows) / len(rows)) if rows else ""
        lines.append(f"| {name} | {len(rows)} | {sum(bool(g.error) for g in rows)} | {mean} | "
                     f"{format_points(possible[name])} | {similar.get(name, 0)} |")
    unsorted = [t for t in plan.tasks if t.assignment is None]
    if unsorted:
        lines += ["", "Entries of no assignment of this run (not graded, in no table):", ""]
        lines += [f"- {t.entry}: {t.error}" for t in unsorted]
    if plan.filtered_out:
        lines += ["", f"{plan.filtered_out} submissions of other assignments were left out "
                      "(--assignment)."]
    lines += ["", "Totals in gradebook.csv include the hand-graded points merged with --marks "
              "(fill in marks_template.csv).", ""]
    return "\n".join(lines)


def build_tables(plan: Plan, results: list[Path], out: Path,
                 marks: Path | None = None) -> dict[str, list[Graded]]:
    """Write every table of the course into ``out`` from ``plan`` and the result folders;
    returns {assignment: its rows}. A bad marks file stops before anything is written."""
    from course_utils.instructor.grading.similarity_report import write_similarity

    found = collect_results(plan, results)
    hand = read_course_marks(Path(marks), plan) if marks else {}
    graded: dict[str, list[Graded]] = {name: [] for name in plan.assignments}
    answers: dict[str, dict[str, dict[str, str]]] = {name: {} for name in plan.assignments}
    described: list[str] = []
    for task in (t for t in plan.tasks if t.assignment is not None):
        result = found[task.key]
        g = graded_from_dict(result["graded"])
        g.marks = hand.get(task.assignment, {}).get(g.student, {})
        graded[task.assignment].append(g)
        answers[task.assignment][g.student] = result.get("answers") or {}
        if result["isolation"] not in described:
            described.append(result["isolation"])
    iso = Described(" | ".join(described) or "nothing graded")
    similar = {}
    for name, info in plan.assignments.items():
        _assignment_tables(Path(out) / name, name, info, graded[name], iso)
        similar[name] = write_similarity(Path(out) / name, name, answers[name], info)
    atomic_write_text(Path(out) / "gradebook.csv", gradebook_csv(plan, graded))
    atomic_write_text(Path(out) / "marks_template.csv", _course_marks_template(plan, graded))
    atomic_write_text(Path(out) / "summary.md", _course_summary(plan, graded, iso, similar))
    atomic_write_text(Path(out) / "plan.json", plan.to_json())
    atomic_write_text(Path(out) / "points_possible.json",
                      json.dumps(points_possible(plan), indent=1, sort_keys=True) + "\n")
    return graded

