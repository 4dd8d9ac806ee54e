"""The grading reports: grades.csv, each student's feedback, the summary, the written answers
for the marker, and the marks file (its template, and reading the marker's points back)."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from course_utils.instructor.grading.sandbox import Isolation
from course_utils.instructor.grading.scoring import Graded


def quoted(text: str) -> list[str]:
    """``text`` as a fenced block longer than any backtick run in it, so that a student's
    answer cannot close it and write headings (a fake ``## other_student``) for the marker."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + "text", *text.splitlines(), fence]


def format_points(value: float) -> str:
    """Points as written in every report: at most 4 decimals, no trailing zeros."""
    return f"{round(value, 4):g}"


def points_text(value: float) -> str:
    """``1 point``, ``0.5 points``, ``3 points``."""
    return f"{format_points(value)} point" + ("" if format_points(value) == "1" else "s")


def _cell(graded: Graded, question: dict) -> str:
    """A question's points for one student; a hand-graded one is empty until it is marked."""
    name = question["name"]
    if question["manual"]:
        return format_points(graded.marks[name]) if name in graded.marks else ""
    return format_points(graded.scores.get(name, 0.0))


def grades_csv(results: list[Graded], questions: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student"] + [q["name"] for q in questions] + ["total"])
    for graded in results:
        writer.writerow([graded.student]
                        + [_cell(graded, q) for q in questions]
                        + [format_points(graded.total)])
    return buffer.getvalue()


def feedback_markdown(graded: Graded, questions: list[dict], assignment: str,
                      iso: Isolation) -> str:
    lines = [f"# {assignment}: feedback for {graded.student}", ""]
    possible = sum(q["points"] for q in questions if not q["manual"])
    scored = format_points(sum(graded.scores.values()))
    lines.append(f"Autograded: **{scored} / {format_points(possible)}** "
                 f"point{'' if format_points(possible) == '1' else 's'}. "
                 "Hand-graded questions are marked separately.")
    if graded.error:
        lines += ["", f"**Problem:** {graded.error}"]
    lines += ["", "| question | points | out of |", "|---|---|---|"]
    said: dict[str, str] = {}  # message -> the first test that showed it
    for q in questions:
        score = ((_cell(graded, q) or "by hand") if q["manual"]
                 else format_points(graded.scores.get(q["name"], 0.0)))
        lines.append(f"| {q['name']} | {score} | {format_points(q['points'])} |")
    for q in questions:
        if q["manual"]:
            answer = graded.written.get(q["name"], "").strip() or "(no answer)"
            lines += ["", f"## {q['name']} (graded by hand)", "", *quoted(answer)]
            continue
        lines += ["", f"## {q['name']}", ""]
        for test in (t for t in graded.tests if t.question == q["name"]):
            kind = "hidden" if test.hidden else "public"
            mark = "passed" if test.passed else "FAILED"
            lines.append(f"- {mark}: {test.name} ({kind}, {points_text(test.points)})")
            if test.passed or not test.message:
                continue
            if test.message in said:  # one stub's error fails many tests: say it once
                lines[-1] += f": the same error as {said[test.message]}"
                continue
            said[test.message] = test.name
            lines += ["", "  ```", *("  " + m for m in test.message.splitlines()), "  ```", ""]
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
    header = ["student"] + [f"{q['name']} (/{format_points(q['points'])})" for q in questions] \
        + ["total", "seconds"]
    lines = [f"# {assignment}: grades", "",
             f"{len(results)} submissions graded in {seconds:.1f} s. Sandbox: {iso.describe()}.",
             "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for g in results:
        cells = [_cell(g, q) for q in questions]
        lines.append(f"| {g.student} | " + " | ".join(cells)
                     + f" | {format_points(g.total)} | {g.seconds:.1f} |")
    if results:
        means = [("" if q["manual"] else
                  format_points(sum(g.scores.get(q["name"], 0.0) for g in results) / len(results)))
                 for q in questions]
        lines.append("| *mean* | " + " | ".join(means)
                     + f" | {format_points(sum(g.total for g in results) / len(results))} | |")
    problems = [g for g in results if g.error]
    if problems:
        lines += ["", "Submissions with problems:", ""]
        lines += [f"- {g.student}: {' '.join(g.error.split())}" for g in problems]
    lines += ["", f"Autograded total out of {format_points(sum(q['points'] for q in auto))}; "
              "hand-graded: " + (", ".join(f"{q['name']} (/{format_points(q['points'])})"
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


def written_markdown(question: dict, results: list[Graded]) -> str:
    """``written/<question>.md``: every student's answer to one hand-graded question, each
    fenced (``quoted``): the only headings are the grader's, one per student."""
    text = [f"# {question['name']} (/{format_points(question['points'])}): written answers", ""]
    for graded in results:
        answer = graded.written.get(question["name"], "").strip() or "(no answer)"
        text += [f"## {graded.student}", "", *quoted(answer), ""]
    return "\n".join(text)
