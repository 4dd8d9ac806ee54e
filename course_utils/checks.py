"""The "Checks against the report" table that ends every notebook.

Each row puts the report's printed value beside the value the notebook computed, says whether
they match and, where they do not, why (dataset, hardware, an error in the report). A match
that proves nothing, because the computed side was built from the report's number (the
built-in dataset is drawn at the report's resolution, a layer size was solved from the
report's parameter total), is labelled "by construction" with the reason, not "yes".

One rule for every notebook, enforced here rather than left to each call: for a report key this
project builds from the report's own value (``BUILT_FROM_REPORT``: Table 1's channels, the
loss and optimizer, the built-in dataset's class count...), and for a computed value that *is*
the report's value object, an agreeing ``check_value`` is labelled "by construction" even when
the caller gives no reason (the registry's reason is shown). A caller that really computed the
value without the report (another dataset that happens to have 6 classes) says so with
``independent=``. tests/test_checks_labels.py holds every notebook's source and saved rows to
the rule.

    rows = [check_value("params_1_channel", count_parameters(model))]
    show_checks("02_model_and_parameters", rows)   # displays the table, saves JSON in graded runs

In a graded run (``$COURSE_RUN_DIR`` set by the runner) the rows are also written as JSON to
``<run>/results/<notebook>.checks.json``, so the runner builds its summary from data, never by
scraping printed text. This module is the one definition of a row: its fields (``Check``), its
display names (``CHECK_COLUMNS``, ``Check.display_row``), its verdicts (``MATCH``,
``BY_CONSTRUCTION``, ``DIFFER``), its JSON form and the reading and writing of the files
(``save_checks`` / ``read_checks``, ``save_run_meta`` / ``read_run_meta``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from course_utils.atomic import atomic_write_json
from course_utils.checks_view import ChecksTable
from course_utils.paths import display_path, run_dir
from course_utils.report import REPORT

UNEXPLAINED = "unexplained difference"
#: A row's verdict, as the runner's summary counts them ("3 match, 1 by construction, 2 differ").
MATCH = "match"
#: A row that agrees because it was built to (also its label in the table's match column).
BY_CONSTRUCTION = "by construction"
DIFFER = "differ"
#: Each verdict as the table's match column shows it.
MATCH_COLUMN_LABELS = {MATCH: "yes", BY_CONSTRUCTION: BY_CONSTRUCTION, DIFFER: "no"}
#: The table's columns: a row's display names, in order (see ``Check.display_row``).
#: The verdict first, then what is compared and why it differs, then the values.
CHECK_COLUMNS = ("match", "quantity", "why not", "report", "computed", "source")
#: Folder of a run where notebooks save their rows and run facts.
RESULTS_DIR = "results"

#: Report keys whose computed side this project builds from the report's own value, and how.
#: An agreement on one of these proves nothing unless the caller says why it is independent.
_FITTED = "ReportCNN's kernel sizes and fc1 size were solved from the report's parameter counts"
_AS_STATED = "set up with the report's value"
BUILT_FROM_REPORT: dict[str, str] = {
    "total_feature_maps": "ReportCNN's conv channels were written from Table 1 (128 x 3 + 96 x 4)",
    "table1": "ReportCNN's layers and channels were written from Table 1",
    "num_classes": "the built-in dataset and ReportCNN's default fc2 were made with the "
                   "report's class count",
    "params_1_channel": _FITTED, "params_3_channel": _FITTED, "params_total_q4": _FITTED,
    "image_width": "the built-in generator draws the report's resolution",
    "image_height": "the built-in generator draws the report's resolution",
    "resize_to": "the image size was set to the report's value",
    "epochs": "the epoch count was set to the report's value",
    "fps_test_images": "the test split was generated with the report's image count",
    "loss": _AS_STATED, "optimizer": _AS_STATED, "lr": _AS_STATED,
    "weight_decay": _AS_STATED,
}


@dataclass(frozen=True)
class Check:
    """One row of the table.

    quantity: what is compared; source: where the report prints it; report / computed: the two
    values as display strings; match: whether they agree at the report's printed precision;
    why: for a mismatch, the reason ("" for a plain match; "by construction: <reason>" for a
    match by construction, so readers of ``match`` and ``why`` alone still see it);
    by_construction: for a match that holds by construction, the reason ("" otherwise);
    key: the report key compared (``check_value`` rows; "" for claims); independent: for a
    plain match of a key in ``BUILT_FROM_REPORT``, why it was computed without the report.
    """

    quantity: str
    source: str
    report: str
    computed: str
    match: bool
    why: str = ""
    by_construction: str = ""
    key: str = ""
    independent: str = ""

    @property
    def verdict(self) -> str:
        """MATCH, BY_CONSTRUCTION or DIFFER (by construction never hides a difference)."""
        if not self.match:
            return DIFFER
        return BY_CONSTRUCTION if self.by_construction else MATCH

    def display_row(self) -> dict[str, str]:
        """The row under its display names (``CHECK_COLUMNS``): match is "yes", "no" or
        "by construction"; "why not" gives the reason for the last two."""
        values = {"match": MATCH_COLUMN_LABELS[self.verdict], "quantity": self.quantity,
                  "why not": self.by_construction or self.why, "report": self.report,
                  "computed": self.computed, "source": self.source}
        return {name: values[name] for name in CHECK_COLUMNS}

    def to_json(self) -> dict[str, Any]:
        """The row's JSON form, as ``save_checks`` writes it."""
        return asdict(self)

    @classmethod
    def from_json(cls, fields: dict[str, Any]) -> Check:
        """A row from its JSON form; raises ValueError naming a missing field."""
        if not isinstance(fields, dict):
            raise ValueError(f"a check row should be a JSON object, got {fields!r}")
        missing = [name for name in ("quantity", "source", "report", "computed", "match")
                   if name not in fields]
        if missing:
            raise ValueError(f"a check row lacks {', '.join(missing)}: {fields!r}")
        return cls(quantity=str(fields["quantity"]), source=str(fields["source"]),
                   report=str(fields["report"]), computed=str(fields["computed"]),
                   match=bool(fields["match"]), why=str(fields.get("why", "")),
                   by_construction=str(fields.get("by_construction", "")),
                   key=str(fields.get("key", "")),
                   independent=str(fields.get("independent", "")))

    def label_problem(self) -> str:
        """Why this row breaks the label rule ("" when it does not): a plain match of a key this
        project builds from the report (``BUILT_FROM_REPORT``) with no ``independent`` reason, a
        by-construction row without its reason, or a reason on a plain match."""
        if self.verdict == MATCH and self.key in BUILT_FROM_REPORT and not self.independent:
            return (f"{self.quantity!r} is labelled a plain match, but {self.key!r} is built "
                    f"from the report ({BUILT_FROM_REPORT[self.key]}); pass by_construction= "
                    "or, if it was computed without the report, independent=")
        if self.verdict == BY_CONSTRUCTION and not self.why.startswith(BY_CONSTRUCTION):
            return f"{self.quantity!r} is by construction but its why does not say so"
        if self.verdict == MATCH and self.why:
            return f"{self.quantity!r} is a plain match with a reason {self.why!r}"
        return ""


def label_problems(checks: Iterable[Check]) -> list[str]:
    """``Check.label_problem`` of every row that has one (see ``BUILT_FROM_REPORT``)."""
    return [problem for problem in (c.label_problem() for c in checks) if problem]


def _is_report_object(computed: Any, printed: Any) -> bool:
    """True when ``computed`` is the report's value object itself (not a copy or a recount).

    Ints, bools and strings are left out: Python shares small ints and interned strings, so
    their identity says nothing about where they came from."""
    if printed is None or isinstance(printed, bool | int | str):
        return False
    return computed is printed


def _verdict(match: bool, why: str | None, by_construction: str | None) -> dict[str, Any]:
    """match / why / by_construction fields of a row (by_construction only applies to a match)."""
    if not match:
        return {"match": False, "why": why or UNEXPLAINED, "by_construction": ""}
    if by_construction:
        return {"match": True, "why": f"{BY_CONSTRUCTION}: {by_construction}",
                "by_construction": by_construction}
    return {"match": True, "why": "", "by_construction": ""}


def format_value(value: Any, decimals: int | None = None) -> str:
    """A short, stable display string for numbers, sequences and arrays (never summarised)."""
    if value is None:
        return "(not printed)"
    if isinstance(value, bool | str):
        return str(value)
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        return f"{float(value):.{decimals}f}" if decimals is not None else f"{float(value):.6g}"
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):  # ragged (a garbled print) or mixed: show it as printed
        return str(value)
    if decimals is not None:
        array = np.round(array, decimals)
    with np.printoptions(precision=decimals if decimals is not None else 8, suppress=True,
                         floatmode="maxprec", linewidth=200, threshold=sys.maxsize):
        return np.array2string(array, separator=", ").replace("\n", "")


def values_match(report: Any, computed: Any, *, decimals: int | None = None,
                 rtol: float = 0.0, atol: float = 0.0) -> bool:
    """True when ``computed`` equals ``report`` at the printed precision.

    decimals: round ``computed`` to this many decimals first (what printing did to the report);
    rtol / atol: a tolerance instead, for measured quantities.
    """
    if report is None:
        return False
    if isinstance(report, str) or isinstance(computed, str):
        return str(report) == str(computed)
    try:
        expected = np.asarray(report, dtype=float)
        actual = np.asarray(computed, dtype=float)
    except (TypeError, ValueError):
        return False  # a ragged (garbled) print cannot equal a real matrix
    if expected.shape != actual.shape:
        return False
    if decimals is not None:
        actual = np.round(actual, decimals)
        atol = max(atol, 0.5 * 10.0 ** (-decimals) * 1e-6)  # float noise after rounding
    return bool(np.allclose(actual, expected, rtol=rtol, atol=atol))


def check_value(key: str, computed: Any, *, decimals: int | None = None, rtol: float = 0.0,
                atol: float = 0.0, why: str | None = None, quantity: str | None = None,
                by_construction: str | None = None, independent: str | None = None) -> Check:
    """Compare ``computed`` with the report's value ``key`` (see ``course_utils.report``).

    why: the reason to show if they differ (a known error in the report, another dataset...);
    a difference with no reason is flagged as "unexplained difference".
    by_construction: if ``computed`` was made from the report's value (so agreeing proves
    nothing), why; a match is then shown as "by construction" (a difference stays a "no").
    Without it, a match is still "by construction" when ``key`` is in ``BUILT_FROM_REPORT``
    (with the registry's reason) or ``computed`` is the report's value object itself.
    independent: for a key in ``BUILT_FROM_REPORT``, why this value was computed without the
    report's (another dataset): the match then stays a plain "yes".
    """
    entry = REPORT[key]
    match = values_match(entry.value, computed, decimals=decimals, rtol=rtol, atol=atol)
    if not by_construction and not independent:
        if _is_report_object(computed, entry.value):
            by_construction = "the computed value is the report's own value"
        else:
            by_construction = BUILT_FROM_REPORT.get(key)
    return Check(
        quantity=quantity or key,
        source=entry.source,
        report=format_value(entry.value, decimals),
        computed=format_value(computed, decimals),
        key=key,
        independent=(independent or "") if match and not by_construction else "",
        **_verdict(match, why, by_construction),
    )


def check_claim(quantity: str, source: str, report: Any, computed: Any, match: bool,
                why: str | None = None, by_construction: str | None = None) -> Check:
    """A row for a claim the report makes in words (e.g. "the first conv layer triples").

    why, by_construction: as for ``check_value``; a match whose ``computed`` is the ``report``
    object itself is "by construction" even without a reason.
    """
    if not by_construction and _is_report_object(computed, report):
        by_construction = "the computed value is the report's own value"
    return Check(quantity=quantity, source=source, report=format_value(report),
                 computed=format_value(computed), **_verdict(bool(match), why, by_construction))


def checks_table(checks: Sequence[Check]) -> ChecksTable:
    """The checks as a DataFrame with columns ``CHECK_COLUMNS`` (see ``Check.display_row``),
    one row per check; it displays every cell whole and matrices side by side
    (``course_utils.checks_view``)."""
    return ChecksTable([c.display_row() for c in checks], columns=list(CHECK_COLUMNS))


def checks_path(results: Path, notebook: str) -> Path:
    """``<results>/<notebook>.checks.json``: the file of a notebook's rows."""
    return results / f"{notebook}.checks.json"


def meta_path(results: Path, notebook: str) -> Path:
    """``<results>/<notebook>.meta.json``: the file of a notebook's run facts (device...)."""
    return results / f"{notebook}.meta.json"


def save_checks(notebook: str, checks: Iterable[Check]) -> Path | None:
    """In a graded run, write the rows to ``<run>/results/<notebook>.checks.json`` (atomically).

    Returns the path written, or None outside a graded run (nothing is written).
    """
    folder = run_dir()
    if folder is None:
        return None
    rows = [c.to_json() for c in checks]
    return atomic_write_json(checks_path(folder / RESULTS_DIR, notebook),
                             {"notebook": notebook, "checks": rows})


def show_checks(notebook: str, checks: Sequence[Check]) -> ChecksTable:
    """Save the rows for the runner (graded runs only) and return the table for display."""
    save_checks(notebook, checks)
    return checks_table(checks)


def save_run_meta(notebook: str, device: str = "cpu", **fields: Any) -> Path | None:
    """In a graded run, write ``{"device": device, **fields}`` to
    ``<run>/results/<notebook>.meta.json`` (atomically) for the runner's summary.

    Returns the path written, or None outside a graded run (nothing is written).
    """
    folder = run_dir()
    if folder is None:
        return None
    return atomic_write_json(meta_path(folder / RESULTS_DIR, notebook),
                             {"notebook": notebook, "device": str(device), **fields})


def read_checks(results: Path, notebook: str) -> list[Check]:
    """The rows ``save_checks`` wrote for ``notebook`` into ``results`` ([] when none).

    Raises ValueError naming the file when it is not valid JSON or a row is malformed.
    """
    path = checks_path(results, notebook)
    rows = read_results_file(path).get("checks", [])
    try:
        return [Check.from_json(row) for row in rows]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{display_path(path)}: {exc}") from exc


def read_run_meta(results: Path, notebook: str) -> dict[str, Any]:
    """The fields ``save_run_meta`` wrote for ``notebook`` into ``results`` ({} when none)."""
    return read_results_file(meta_path(results, notebook))


def read_results_file(path: Path) -> dict[str, Any]:
    """A results file as a dict ({} when absent); a broken one is an error naming it."""
    if not path.is_file():
        return {}
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{display_path(path)} is not valid JSON ({exc}); write it with "
                         "course_utils.checks.save_checks / save_run_meta") from exc
    if not isinstance(loaded, dict):
        raise ValueError(f"{display_path(path)} should hold a JSON object")
    return loaded
