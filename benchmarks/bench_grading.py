"""Grading the course: submissions per minute at --jobs 1 and on all cores, side by side.

Builds ``--students`` made-up students for every assignment with fixtures
(tests/fixtures/submissions: each student is one of its assignment's fixtures, in turn; 07's
``loops`` and ``memory_hog`` are left out: they sit out the 10 s limits on purpose and measure
the limits, not the grader), releases every assignment afresh into a temporary folder, and
grades the whole inbox with ``grade_course`` twice, into fresh folders: ``--jobs 1``, then
``--jobs`` = the cores this process may use. Prints:

- submissions per minute of each and RATIO all-cores / one (target >= 0.8 x cores), beside
  what a pure-Python loop gets from the same cores just then (on a shared machine, the most
  any parallel grader could have got);
- per assignment, the median time of one submission in the grader (sandbox start, cells,
  tests, kill) beside the time its hidden tests alone take (the master's solution run in-process,
  no sandbox: the least any grader can spend), and the sandbox's own start + kill;
- the run's fixed cost (isolation probe, reading the inbox, otter's import, the tables);
- 300 students x 6 assignments, EXTRAPOLATED from this run's all-cores rate, and PROJECTED
  for idle cores at the 0.8 x target from the --jobs 1 figures (neither is measured),
  against the goal of 10 minutes on 2 cores.

``--all-cores-only`` skips the ``--jobs 1`` run and prints the all-cores run's wall time as
measured: with ``--students 300`` that is the goal's figure itself (the README gives it, with
the machine it was measured on).

    PYTHONPATH=. .venv/bin/python benchmarks/bench_grading.py [--students 4] [--jobs N]
    PYTHONPATH=. .venv/bin/python benchmarks/bench_grading.py --students 300 --all-cores-only

Timings on a shared machine are noisy: the run says what else was running (load average).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from course_utils.instructor.grading.course_run import grade_course
from course_utils.instructor.grading.fixtures import FIXTURES_DIR, build_submission
from course_utils.instructor.grading.parallel import default_jobs
from course_utils.instructor.grading.release import release
from course_utils.paths import PROJECT_ROOT

SLOW_ON_PURPOSE = {"07_im2col_and_fold": {"loops", "memory_hog"}}
GOAL_STUDENTS, GOAL_MINUTES = 300, 10.0


def build_inbox(dist: Path, inbox: Path, scratch: Path, students: int) -> dict[str, int]:
    """``students`` zips/folders per assignment, ``s000__<assignment>``...; {assignment: n}."""
    counts = {}
    for folder in sorted(p for p in FIXTURES_DIR.iterdir() if p.is_dir()):
        name = folder.name
        fixtures = [f for f in sorted(folder.glob("*.py"))
                    if f.stem not in SLOW_ON_PURPOSE.get(name, set())]
        release(PROJECT_ROOT / "notebooks" / f"{name}.ipynb", dist)
        for i in range(students):
            build = scratch / name / str(i) / "submissions"  # its parent: to_zip/
            build.mkdir(parents=True)
            build_submission(fixtures[i % len(fixtures)], dist, build, scratch / "unused", name)
            for entry in build.iterdir():
                entry.rename(inbox / f"s{i:03d}__{name}{entry.suffix}")
        counts[name] = students
    return counts


def tests_alone(autograder: Path) -> float:
    """Seconds the hidden tests take against the master's solution run here, in-process."""
    from course_utils.instructor.grading.scoring import load_tests, one_torch_thread
    from course_utils.instructor.grading.submissions import graded_cells

    info, tests = load_tests(autograder)
    master = json.loads((autograder / info["notebook"]).read_text(encoding="utf-8"))
    namespace: dict = {"__name__": "__bench__"}
    for _, source in graded_cells(master, (), master):  # as the sandbox runs them: a cell
        try:  # that raises (a given cell before the answers it uses) is passed over
            exec(compile(source, "<master>", "exec"), namespace)  # noqa: S102  (our master)
        except Exception:  # noqa: BLE001, S110
            pass
    with one_torch_thread():  # as the grader runs them
        started = time.perf_counter()
        for test_file in tests.values():
            for case in test_file.test_cases:
                case.body.call_func(namespace)
        return time.perf_counter() - started


def sandbox_start(runs: int = 5, with_torch: bool = False) -> float:
    """Median seconds to start a sandbox (bwrap, cgroup, python + numpy), empty or importing
    torch as 03's does, and kill it."""
    from course_utils.instructor.grading.sandbox import Sandbox, isolation

    iso, times = isolation(), []
    cells = [("cell 1", "import torch")] if with_torch else []
    for _ in range(runs):
        started = time.perf_counter()
        box = Sandbox(cells, iso, memory_mb=6144, allow_imports=("torch",) if with_torch else ())
        box.start()
        box.kill()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _spin(seconds: float) -> int:
    count, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        count += 1
    return count


def machine_parallelism(cores: int, seconds: float = 3.0) -> float:
    """How many cores' worth a pure-Python loop gets here now: the loop's count in ``cores``
    processes at once over its count alone, in the same seconds (``cores`` on an idle
    machine; less when other work shares the cores)."""
    import multiprocessing

    alone = _spin(seconds)
    with multiprocessing.get_context("spawn").Pool(cores) as pool:
        together = sum(pool.map(_spin, [seconds] * cores))
    return together / alone


def per_submission(out: Path) -> dict[str, list[float]]:
    seconds: dict[str, list[float]] = {}
    for path in (out / "results").rglob("*.json"):
        data = json.loads(path.read_text())
        seconds.setdefault(data["assignment"], []).append(data["graded"]["seconds"])
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=4, help="per assignment")
    parser.add_argument("--jobs", type=int, default=None, help="default: every usable core")
    parser.add_argument("--all-cores-only", action="store_true",
                        help="grade once, on all cores, and print its wall time (measured)")
    args = parser.parse_args()
    cores = args.jobs or default_jobs()
    print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{default_jobs()} usable; load average before: {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        root = Path(tmp)
        dist, inbox = root / "dist", root / "inbox"
        inbox.mkdir()
        counts = build_inbox(dist, inbox, root / "scratch", args.students)
        total = sum(counts.values())
        runs = {}
        if args.all_cores_only:
            started = time.perf_counter()
            grade_course(inbox, dist / "autograder", root / "grades", jobs=cores, echo=False)
            seconds = time.perf_counter() - started
            print(f"MEASURED: {args.students} students x {len(counts)} assignments = {total} "
                  f"submissions at --jobs {cores} in {seconds / 60:.1f} minutes "
                  f"({60 * total / seconds:.1f} per minute; goal: {GOAL_STUDENTS} x "
                  f"{len(counts)} in under {GOAL_MINUTES:g} minutes on 2 cores); load average "
                  f"after: {os.getloadavg()[0]:.2f}")
            return
        for jobs in (1, cores):
            out = root / f"grades-{jobs}"
            started = time.perf_counter()
            grade_course(inbox, dist / "autograder", out, jobs=jobs, echo=False)
            runs[jobs] = (time.perf_counter() - started, per_submission(out))
            shutil.rmtree(out / "results")
            print(f"--jobs {jobs}: {total} submissions in {runs[jobs][0]:.1f} s = "
                  f"{60 * total / runs[jobs][0]:.1f} submissions/minute", flush=True)
        one, many = runs[1][0], runs[cores][0]
        ratio = one / many
        print(f"RATIO all cores / one: {ratio:.2f} (target >= {0.8 * cores:.1f} = 0.8 x {cores} "
              f"cores): {'met' if ratio >= 0.8 * cores else 'NOT met'}")
        print(f"for comparison, a pure-Python loop in {cores} processes got "
              f"{machine_parallelism(cores):.2f} cores' worth here just now (other work on the "
              "machine takes the rest)")
        print(f"sandbox start + kill alone: {sandbox_start():.2f} s empty, "
              f"{sandbox_start(with_torch=True):.2f} s importing torch (03's)")
        print("| assignment | one submission in the grader (median s, --jobs 1) | hidden tests "
              "alone (s) | overhead (s) |\n|---|---|---|---|")
        graded_sum = 0.0
        for name in counts:
            median = statistics.median(runs[1][1][name])
            graded_sum += sum(runs[1][1][name])
            alone = tests_alone(dist / "autograder" / name)
            print(f"| {name} | {median:.2f} | {alone:.2f} | {median - alone:.2f} |")
        fixed = max(one - graded_sum, 0.0)
        print(f"fixed cost of a run at --jobs 1 (probe, inbox, imports, tables): {fixed:.1f} s")
        print(f"PROJECTED (not measured) on {cores} idle cores at the 0.8 x target: "
              f"{(fixed + GOAL_STUDENTS * graded_sum / args.students / (0.8 * cores)) / 60:.1f}"
              f" minutes for {GOAL_STUDENTS} x {len(counts)}")
        per_job = (many - fixed) / total
        goal_total = GOAL_STUDENTS * len(counts)
        minutes = (fixed + goal_total * per_job) / 60
        print(f"EXTRAPOLATED (not measured): {GOAL_STUDENTS} students x {len(counts)} "
              f"assignments at --jobs {cores} here: {minutes:.1f} minutes (goal: under "
              f"{GOAL_MINUTES:g} on 2 cores): {'met' if minutes < GOAL_MINUTES else 'NOT met'}"
              f"; load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
