"""The course gradebook in two learning-management systems' upload formats, through a student
id mapping file (``--mapping``): Canvas's gradebook CSV and Moodle's grade import CSV.

The mapping file is a CSV with a ``student`` column (the id of ``gradebook.csv``, as the
submission's file name gives it) and the columns the format needs:

- ``canvas``: ``name`` and ``canvas_id`` (Canvas's numeric user ID) or ``sis_user_id``;
  ``sis_login_id`` and ``section`` optional. Written as Canvas's gradebook export lays it out:
  ``Student, ID, SIS User ID, SIS Login ID, Section``, one column per assignment, and a
  ``Points Possible`` row under the header (Canvas matches students by ID or SIS ids; a column
  whose name is no assignment of the course becomes a new one on import).
- ``moodle``: ``email`` (or ``idnumber`` with ``--moodle-id idnumber``). Written as one
  identifier column (``Email address`` / ``ID number``) and one column per grade item; in
  Moodle's "Import from CSV" map that column to the user field and each column to its item.

Every student of the gradebook must be mapped: an unmapped one, a duplicate, a missing
column or an empty id stops the export with an error naming the file and the line.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
MOODLE_COLUMNS = {"email": "Email address", "idnumber": "ID number"}


def read_gradebook(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """(assignments, rows) of ``gradebook.csv``."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        rows = list(reader)
    if header[:1] != ["student"] or header[-1:] != ["total"]:
        raise ValueError(f"{path} is not a gradebook.csv (student, <assignments>, total)")
    return header[1:-1], rows


def read_mapping(path: Path, needed: list[str], one_of: list[str] = ()
                 ) -> dict[str, dict[str, str]]:
    """{course student id: its row} of the mapping file; ValueError naming the file (and the
    line) when a column is missing, an id is empty or a student appears twice."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [h.strip() for h in (reader.fieldnames or [])]
            rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()}
                    for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ValueError(f"{path}: cannot read the mapping file ({error})") from None
    missing = [c for c in ["student", *needed] if c not in header]
    if missing or (one_of and not set(one_of) & set(header)):
        want = ", ".join(["student", *needed] + ([" or ".join(one_of)] if one_of else []))
        raise ValueError(f"{path}: the mapping file needs the columns {want} (it has "
                         f"{', '.join(header) or 'none'})")
    mapping: dict[str, dict[str, str]] = {}
    for line, row in enumerate(rows, start=2):
        student = row["student"]
        empty = [c for c in needed if not row.get(c)]
        if one_of and not any(row.get(c) for c in one_of):
            empty.append(" or ".join(one_of))
        if not student or empty:
            raise ValueError(f"{path}, line {line}: empty {', '.join(empty) or 'student'}")
        if student in mapping:
            raise ValueError(f"{path}, line {line}: student {student!r} is mapped twice")
        mapping[student] = row
    return mapping


def _mapped(rows: list[dict[str, str]], mapping: dict[str, dict[str, str]], path: Path
            ) -> list[tuple[dict[str, str], dict[str, str]]]:
    unmapped = [r["student"] for r in rows if r["student"] not in mapping]
    if unmapped:
        raise ValueError(f"{path}: no LMS id for {len(unmapped)} students of the gradebook: "
                         f"{', '.join(unmapped[:10])}{' ...' if len(unmapped) > 10 else ''}; "
                         "add a row for each (or rename their submissions)")
    return [(r, mapping[r["student"]]) for r in rows]


def canvas_csv(gradebook: Path, mapping_file: Path, possible: dict[str, float]) -> str:
    """Canvas's gradebook CSV: ``possible`` gives the Points Possible row."""
    from course_utils.instructor.grading.grade_reports import format_points

    assignments, rows = read_gradebook(gradebook)
    mapping = read_mapping(mapping_file, ["name"], ["canvas_id", "sis_user_id"])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CANVAS_COLUMNS + assignments)
    writer.writerow(["Points Possible", "", "", "", ""]
                    + [format_points(possible[a]) for a in assignments])
    for row, person in _mapped(rows, mapping, mapping_file):
        writer.writerow([person["name"], person.get("canvas_id", ""),
                         person.get("sis_user_id", ""), person.get("sis_login_id", ""),
                         person.get("section", "")] + [row[a] for a in assignments])
    return buffer.getvalue()


def moodle_csv(gradebook: Path, mapping_file: Path, identifier: str = "email") -> str:
    """Moodle's grade import CSV: the identifier column, then one column per grade item."""
    if identifier not in MOODLE_COLUMNS:
        raise ValueError(f"--moodle-id {identifier!r}: one of {', '.join(MOODLE_COLUMNS)}")
    assignments, rows = read_gradebook(gradebook)
    mapping = read_mapping(mapping_file, [identifier])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([MOODLE_COLUMNS[identifier], *assignments])
    for row, person in _mapped(rows, mapping, mapping_file):
        writer.writerow([person[identifier]] + [row[a] for a in assignments])
    return buffer.getvalue()


def write_export(grades: Path, kind: str, mapping: Path, out: Path | None = None,
                 moodle_id: str = "email") -> Path:
    """Write ``grades/gradebook.csv`` as ``kind`` ("canvas" | "moodle") into ``out`` (default
    ``grades/lms/<kind>.csv``), atomically; returns the path."""
    import json

    from course_utils.atomic import atomic_write_text

    grades = Path(grades)
    gradebook = grades / "gradebook.csv"
    if not gradebook.is_file():
        raise FileNotFoundError(f"{gradebook} does not exist: run `make grade` (or `merge`) "
                                "for the course first")
    if kind == "canvas":
        possible_file = grades / "points_possible.json"
        possible = json.loads(possible_file.read_text(encoding="utf-8"))
        text = canvas_csv(gradebook, Path(mapping), possible)
    else:
        text = moodle_csv(gradebook, Path(mapping), moodle_id)
    return atomic_write_text(Path(out or grades / "lms" / f"{kind}.csv"), text)
