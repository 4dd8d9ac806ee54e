"""Splitting a course's grading over machines: ``--shard K/N`` grades the K-th of N disjoint
parts of the inbox, and ``merge`` builds the course's tables from the shards' folders.

A submission's shard is a stable hash of its entry's file name (SHA-256, modulo N), never its
position in the folder: a submission added later, or a machine listing the inbox in another
order, moves no other submission to another shard. Every shard reads the whole inbox (cheap:
the notebooks are only parsed) so that it routes and names submissions exactly as one run
would (two entries of one student and assignment, in different shards, are both rows
``<id>__<n>``); it grades only its part and writes ``plan.json`` and ``results/``.
``merge`` checks that the shards share one plan and that each of 0..N-1 is there, then writes
the same tables as one run (``course_reports.build_tables``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from course_utils.instructor.grading.course import Plan


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> (K, N) with 0 <= K < N; ValueError naming ``--shard`` otherwise."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard {text!r}: expected K/N (e.g. 0/3: the first of 3 parts; "
                         "Slurm: $SLURM_ARRAY_TASK_ID/3)") from None
    if not (count >= 1 and 0 <= index < count):
        raise ValueError(f"--shard {text!r}: K must be 0..N-1 and N at least 1")
    return index, count


def shard_of(entry: str, count: int) -> int:
    """Which of ``count`` shards grades the entry named ``entry`` (stable across machines)."""
    return int.from_bytes(hashlib.sha256(entry.encode("utf-8")).digest()[:8], "big") % count


def read_plan(folder: Path) -> Plan:
    path = Path(folder) / "plan.json"
    if not path.is_file():
        raise FileNotFoundError(f"{folder} has no plan.json: it is not the --out of a "
                                "`grade --shard K/N` run (or that run has not started)")
    return Plan.from_json(path.read_text(encoding="utf-8"), path)


def merge_plans(folders: list[Path]) -> Plan:
    """The one plan every shard folder holds; ValueError naming the folder that differs or
    the shards that are missing."""
    if not folders:
        raise ValueError("merge: name the shards' folders")
    plans = [read_plan(f) for f in folders]
    first = plans[0]
    for folder, plan in zip(folders, plans, strict=True):
        if [(t.entry, t.key) for t in plan.tasks] != [(t.entry, t.key) for t in first.tasks] \
                or plan.shards != first.shards:
            raise ValueError(f"{folder}: its plan is not {folders[0]}'s (another inbox, "
                             "autograder, setting or shard count): grade every shard of one "
                             "inbox with the same command")
    indices = sorted({p.extra.get("shard") for p in plans})
    missing = sorted(set(range(first.shards)) - set(indices))
    if missing:
        raise ValueError(f"merge: shards {missing} of {first.shards} are missing (given: "
                         f"{indices}); pass every shard's folder")
    first.extra = {}
    return first
