"""The run's summary: summary.md and summary.csv, one table over the whole collection (every
notebook's status, time and device, and every row of its "Checks against the report")."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from course_utils.atomic import atomic_write_text
from course_utils.checks import BY_CONSTRUCTION, CHECK_COLUMNS, DIFFER, MATCH, UNEXPLAINED
from course_utils.instructor.markdown import markdown_table
from course_utils.instructor.notebook_execution import NotebookResult


def summary_frame(results: Sequence[NotebookResult]) -> pd.DataFrame:
    """One row per check of every notebook, with its notebook's status, time and device.

    A notebook without checks (failed early, or saved none) still gets one row.
    """
    rows = []
    for r in results:
        base = {"notebook": r.notebook, "status": r.status, "seconds": round(r.seconds, 1),
                "device": r.device, "failed cell": "" if r.cell is None else r.cell,
                "error": r.error or r.note}
        blank = dict.fromkeys(CHECK_COLUMNS, "")
        for check in r.checks or [None]:
            row = dict(base, **blank)
            if check is not None:
                row.update(check.display_row())
            rows.append(row)
    columns = ["notebook", "status", "seconds", "device", "failed cell", "error", *CHECK_COLUMNS]
    return pd.DataFrame(rows, columns=columns)


def summary_markdown(results: Sequence[NotebookResult], run_name: str,
                     params: dict[str, Any]) -> str:
    """summary.md: parameters, counts, a table of notebooks, then every check row."""
    checks = [(r.notebook, c) for r in results for c in r.checks]
    failed = [r for r in results if r.status != "ok"]
    verdicts = Counter(c.verdict for _, c in checks)
    unexplained = sum(c.verdict == DIFFER and c.why == UNEXPLAINED for _, c in checks)
    given = ", ".join(f"`{k}={v!r}`" for k, v in params.items()) or "none (notebook defaults)"
    lines = [
        f"# Run `{run_name}`", "",
        f"Parameters: {given}", "",
        f"{len(results)} notebooks: {len(results) - len(failed)} ok, {len(failed)} failed. "
        f"{len(checks)} checks: "
        + ", ".join(f"{verdicts[v]} {v}" for v in (MATCH, BY_CONSTRUCTION, DIFFER))
        + f" ({unexplained} unexplained).", "",
        "## Notebooks", "",
        markdown_table(["notebook", "status", "seconds", "device", "parameters", "failure"],
                       [[r.notebook, r.status, f"{r.seconds:.1f}", r.device,
                         ", ".join(f"{k}={v!r}" for k, v in r.parameters.items()),
                         r.failure or r.note] for r in results]),
        "## Checks against the report", "",
        markdown_table(["notebook", *CHECK_COLUMNS],
                       [[nb, *c.display_row().values()] for nb, c in checks]),
    ]
    return "\n".join(lines)


def write_summary(results: Sequence[NotebookResult], run_folder: Path,
                  params: dict[str, Any]) -> None:
    """Write summary.md and summary.csv into the run folder (atomically)."""
    atomic_write_text(run_folder / "summary.csv", summary_frame(results).to_csv(index=False))
    atomic_write_text(run_folder / "summary.md",
                      summary_markdown(results, run_folder.name, params))
