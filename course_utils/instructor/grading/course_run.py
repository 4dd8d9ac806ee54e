"""``make grade`` for the whole course: plan the inbox (``course``), grade what has no result
yet on all cores (``parallel``), then write the tables (``course_reports``); with
``shard=(K, N)`` only the K-th part is graded and the tables wait for ``merge``."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from course_utils.atomic import atomic_write_text
from course_utils.instructor.grading.cgroup import remove_stale
from course_utils.instructor.grading.confine import confined
from course_utils.instructor.grading.course import grader_fingerprint, plan_course
from course_utils.instructor.grading.course_reports import build_tables
from course_utils.instructor.grading.parallel import default_jobs, grade_one, grade_plan
from course_utils.instructor.grading.shards import merge_plans, shard_of


def grade_course(inbox: Path, autograders: Path, out: Path, *, only: list[str] | None = None,
                 jobs: int | None = None, shard: tuple[int, int] | None = None,
                 regrade: bool = False, marks: Path | None = None, timeout: float = 10.0,
                 budget: float = 120.0, memory_mb: int = 1024, isolation_mode: str = "auto",
                 echo: bool = True, grade: Callable[..., dict] = grade_one) -> dict:
    """Grade every submission of ``inbox`` against the assignment it declares; returns
    {"graded", "kept", "tasks", "seconds"}. Results go to ``out/results``; the tables to
    ``out`` (per assignment ``out/<assignment>/``, and ``gradebook.csv``) unless sharded.
    ``grade``: what grades one task (``parallel.grade_one``; tests pass one that fails)."""
    if marks and shard is not None:
        raise ValueError("--marks with --shard: a shard writes no tables; pass the marks file "
                         "to `merge --marks` (make merge-grades GRADE_ARGS=--marks=FILE)")
    started = time.monotonic()
    inbox, autograders, out = Path(inbox).resolve(), Path(autograders).resolve(), \
        Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)  # exists before the first sandbox, so it is hidden
    remove_stale()  # empty cgroups of a grader that was killed (a resumed run's predecessor)
    iso = confined(isolation_mode)
    settings = {"timeout": timeout, "budget": budget, "memory_mb": memory_mb,
                "isolation": iso.describe(), "grader": grader_fingerprint()}
    plan, submissions = plan_course(inbox, autograders, settings, only)
    if marks:  # a bad marks file stops before any grading
        from course_utils.instructor.grading.course_reports import read_course_marks

        read_course_marks(Path(marks), plan)
    mine = plan
    if shard is not None:
        index, plan.shards = shard
        plan.extra = {"shard": index}
        atomic_write_text(out / "plan.json", plan.to_json())
        mine = type(plan)([t for t in plan.tasks if shard_of(t.entry, plan.shards) == index],
                          plan.assignments, plan.settings)
    counts = grade_plan(mine, submissions, out, iso, jobs=jobs or default_jobs(),
                        hide=[inbox, out, autograders], regrade=regrade, grade=grade)
    if shard is None:
        build_tables(plan, [out / "results"], out, marks)
    counts.update(tasks=len(mine.tasks), seconds=time.monotonic() - started)
    if echo and shard is None:
        rows = [line.split(",") for line in (out / "gradebook.csv").read_text().splitlines()]
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        print("\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                        for r in rows))
    if echo:
        where = (f"shard {shard[0]}/{shard[1]}: results in {out / 'results'} (then `merge`)"
                 if shard else f"tables in {out} (gradebook.csv, summary.md, <assignment>/)")
        print(f"{counts['graded']} graded, {counts['kept']} kept from an earlier run, in "
              f"{counts['seconds']:.1f} s; {where}. Sandbox: {iso.describe()}.",
              file=sys.stderr)
    return counts


def merge(shard_folders: list[Path], out: Path, marks: Path | None = None) -> None:
    """The course's tables in ``out`` from the ``--out`` folders of every shard."""
    plan = merge_plans([Path(f) for f in shard_folders])
    build_tables(plan, [Path(f) / "results" for f in shard_folders], Path(out), marks)
