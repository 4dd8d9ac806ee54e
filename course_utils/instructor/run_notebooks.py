"""Run every course notebook with papermill into ``runs/<name>/`` and summarise the checks.

    python -m course_utils.instructor.run_notebooks            # all notebooks -> runs/latest/
    python -m course_utils.instructor.run_notebooks --params grading.yaml -p epochs 2 --name graded
    python -m course_utils.instructor.run_notebooks --notebooks 03 --no-html  # a subset (prefix)
    python -m course_utils.instructor.run_notebooks --list-parameters [--markdown]
    python -m course_utils.instructor.run_notebooks --cell-timeout 0 -p preset report  # no limit

What a run folder ``runs/<name>/`` holds:

    <notebook>.ipynb                 executed copy (the sources in notebooks/ are never touched)
    <notebook>.html                  the same, exported for readers without Jupyter
    results/<notebook>.checks.json   the "Checks against the report" rows the notebook saved
    results/<notebook>.meta.json     {"device": ...} for notebooks that record one
    results/<notebook>.run.json      status, seconds, failing cell, parameters (from the runner)
    figures/                         figures the notebooks saved during this run
    mathjax/                         MathJax for the HTML pages (formulas render offline)
    checkpoints/                     only with --keep-checkpoints (a graded run keeps none)
    summary.md, summary.csv          one table over the whole collection

The executed copies and HTML pages read anywhere: markdown images of local files are embedded
as cell attachments, and the HTML loads MathJax from the run folder, not a CDN. A cell that
runs longer than ``--cell-timeout`` seconds is stopped and reported as "timed out".

Notebooks hand their rows over as data (``course_utils.checks.save_checks`` writes JSON when
``$COURSE_RUN_DIR`` is set); the runner never scrapes printed text. Exit status: 0 when every
notebook ran, 1 when one failed (the others still run), 2 for bad arguments (nothing runs).

This module is the command line and the loop over the notebooks; the work is done by
``notebook_parameters`` (which notebooks, what they declare), ``run_parameters`` (what was
given), ``notebook_execution`` (papermill, one notebook), ``html_export`` (MathJax, images),
``run_summary`` (summary.md/csv) and ``parameter_listing`` (``--list-parameters``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from course_utils.instructor.html_export import copy_mathjax
from course_utils.instructor.notebook_execution import (
    DEFAULT_CELL_TIMEOUT,
    NotebookResult,
    check_destination,
    kernel_environment,
    run_notebook,
)
from course_utils.instructor.notebook_parameters import (
    NotebookParameter,
    RunnerError,
    declared_parameters,
    find_notebooks,
)
from course_utils.instructor.parameter_listing import format_parameters, format_parameters_markdown
from course_utils.instructor.run_parameters import check_known, collect_params, params_for
from course_utils.instructor.run_summary import write_summary
from course_utils.paths import NOTEBOOKS_DIR, RUNS_DIR, display_path

DEFAULT_RUN_NAME = "latest"


def run_all(notebooks: Sequence[Path], run_folder: Path, params: dict[str, Any],
            declared: dict[str, list[NotebookParameter]], html: bool = True, *,
            cell_timeout: int | None = DEFAULT_CELL_TIMEOUT,
            keep_checkpoints: bool = False) -> list[NotebookResult]:
    """Run each notebook in order; a failure (or a cell over ``cell_timeout`` s) does not stop
    the others.

    Prints one line per notebook and rewrites summary.md/csv after each one.
    """
    check_destination(notebooks, run_folder)
    run_folder.mkdir(parents=True, exist_ok=True)
    if html:
        copy_mathjax(run_folder)  # once per run; every page loads it by a relative URL
    width = max(len(nb.stem) for nb in notebooks)
    results = []
    with kernel_environment(run_folder, keep_checkpoints):
        for nb in notebooks:
            result = run_notebook(nb, run_folder, params_for(params, declared[nb.name]), html,
                                  cell_timeout)
            status = "ok" if result.status == "ok" else f"FAILED: {result.failure}"
            print(f"{result.notebook:<{width}}  {result.seconds:7.1f} s  {status}", flush=True)
            results.append(result)
            # after every notebook, so an interrupted run still leaves a true summary
            write_summary(results, run_folder, params)
    return results


# ---- command line -----------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    """The command-line options (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m course_utils.instructor.run_notebooks",
        description="Execute the course notebooks with papermill into runs/<name>/.")
    parser.add_argument("--params", metavar="FILE.yaml",
                        help="YAML mapping `name: value` of parameters for all notebooks")
    parser.add_argument("-p", "--param", nargs=2, action="append", default=[],
                        metavar=("NAME", "VALUE"),
                        help="one parameter (repeatable; True/False/None, ints and floats are "
                             "converted as by papermill -p); overrides --params. Relative "
                             "paths are relative to notebooks/, where the kernels run")
    parser.add_argument("--name", default=DEFAULT_RUN_NAME,
                        help="run folder name under runs/ (default: %(default)s)")
    parser.add_argument("--notebooks", nargs="+", default=[], metavar="PATTERN",
                        help="only these notebooks: prefix (03), name or glob")
    parser.add_argument("--no-html", action="store_true", help="skip the HTML export")
    parser.add_argument("--cell-timeout", type=cell_timeout_arg, default=DEFAULT_CELL_TIMEOUT,
                        metavar="SECONDS",
                        help="stop a cell that runs longer than this and report the notebook "
                             "as 'timed out' (the others still run); 0 or none: no limit, e.g. "
                             "for -p preset report on a CPU (default: %(default)s)")
    parser.add_argument("--keep-checkpoints", action="store_true",
                        help="keep training checkpoints in runs/<name>/checkpoints/ (about "
                             "440 MB for notebook 03); by default a graded run writes none")
    parser.add_argument("--list-parameters", action="store_true",
                        help="print every notebook's parameters with defaults and types")
    parser.add_argument("--markdown", action="store_true",
                        help="with --list-parameters: the README's markdown table")
    parser.add_argument("--notebooks-dir", type=Path, default=NOTEBOOKS_DIR,
                        help="folder of the notebooks (default: notebooks/)")
    parser.add_argument("--runs-dir", type=Path, default=RUNS_DIR,
                        help="folder of the run folders (default: runs/)")
    return parser


def cell_timeout_arg(text: str) -> int | None:
    """``--cell-timeout`` value: whole seconds; 0 or "none" for no limit (None)."""
    if text.strip().lower() in ("0", "none"):
        return None
    try:
        seconds = int(text)
    except ValueError:
        seconds = 0
    if seconds < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (a whole number "
                                         ">= 1, or 0 / none for no limit)")
    return seconds


def check_run_name(name: str) -> str:
    """A run name is one plain folder name under runs/."""
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise RunnerError(f"--name {name!r} must be a plain folder name like 'graded-2024'")
    return name


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns 0 (all ran), 1 (a notebook failed) or 2 (bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.markdown and not args.list_parameters:
        parser.error("--markdown only goes with --list-parameters")  # never start a full run
    try:
        everything = declared_parameters(find_notebooks(args.notebooks_dir))
        notebooks = find_notebooks(args.notebooks_dir, args.notebooks)
        declared = {nb.name: everything[nb.name] for nb in notebooks}
        if args.list_parameters:
            listing = format_parameters_markdown if args.markdown else format_parameters
            print(listing(declared), end="")
            return 0
        if not notebooks:
            raise RunnerError(f"no notebooks in {display_path(args.notebooks_dir)}/")
        params = collect_params(args.params, args.param)
        # checked against every notebook, not just the selected ones: a grading file written for
        # the whole course stays valid for a subset run, while a typo is still caught
        check_known(params, everything)
        run_folder = args.runs_dir / check_run_name(args.name)
        check_destination(notebooks, run_folder)
    except RunnerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Running {len(notebooks)} notebooks into {display_path(run_folder)}/", flush=True)
    results = run_all(notebooks, run_folder, params, declared, html=not args.no_html,
                      cell_timeout=args.cell_timeout, keep_checkpoints=args.keep_checkpoints)
    print(f"Summary: {display_path(run_folder / 'summary.md')}")
    failed = [r for r in results if r.status != "ok"]
    for r in failed:
        print(f"FAILED: {r.notebook}: {r.failure}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
