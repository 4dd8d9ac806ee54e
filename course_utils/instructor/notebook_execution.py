"""Run one notebook with papermill into the run folder and collect what it produced: status,
time, the cell to blame for a failure, and the checks and device the notebook saved."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from course_utils.atomic import atomic_write_json
from course_utils.checks import RESULTS_DIR, Check, read_checks, read_run_meta
from course_utils.instructor.html_export import embed_images, export_html
from course_utils.instructor.notebook_parameters import RunnerError
from course_utils.paths import FIGURES_ENV, KEEP_CHECKPOINTS_ENV, RUN_DIR_ENV, display_path

KERNEL_NAME = "python3"

# papermill tags: the cell it inserts with the overrides, and the markdown cells it adds on error.
INJECTED_TAG = "injected-parameters"
ERROR_CELL_TAG = "papermill-error-cell-tag"
NO_DEVICE = "-"
#: Seconds one cell may run: far above any cell of the default run (notebook 03's training cell,
#: the slowest, took 1-4 minutes on a shared 2-core CPU), low enough that a hung cell does not
#: stall grading.
DEFAULT_CELL_TIMEOUT = 900


@dataclass
class NotebookResult:
    """What running one notebook produced.

    status: "ok" or "failed"; cell: index of the failing cell in the *source* notebook (None
    when nothing failed or no cell is to blame); execution_count: its ``In [n]`` in the executed
    copy; checks: the rows the notebook saved (``course_utils.checks.read_checks``).
    """

    notebook: str
    status: str
    seconds: float
    device: str = NO_DEVICE
    cell: int | None = None
    execution_count: int | None = None
    error: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    note: str = ""

    @property
    def failure(self) -> str:
        """One line naming the cell and the error, "" when the notebook ran."""
        if self.status == "ok":
            return ""
        if self.cell is None:
            return self.error
        count = "" if self.execution_count is None else f" (In [{self.execution_count}])"
        return f"cell {self.cell}{count}: {self.error}"


@contextlib.contextmanager
def kernel_environment(run_folder: Path, keep_checkpoints: bool = False) -> Iterator[None]:
    """Environment the kernels inherit during a run; restored afterwards.

    COURSE_RUN_DIR / COURSE_FIGURES_DIR send results and figures into the run folder;
    COURSE_KEEP_CHECKPOINTS=1 only with ``keep_checkpoints`` (else removed, so a value from the
    shell cannot keep 440 MB per run). The kernelspec starts "python" through PATH, so put this
    interpreter's folder first: a direct ``.venv/bin/python -m ...`` call must not start a
    system Python without the packages.
    """
    updates = {
        RUN_DIR_ENV: str(run_folder.resolve()),
        FIGURES_ENV: str((run_folder / "figures").resolve()),
        KEEP_CHECKPOINTS_ENV: "1" if keep_checkpoints else None,
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
        "PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED", "0"),  # as `make` sets it
    }
    saved = {name: os.environ.get(name) for name in updates}
    _set_environment(updates)
    try:
        yield
    finally:
        _set_environment(saved)


def _set_environment(values: dict[str, str | None]) -> None:
    """Set each variable; None removes it."""
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def execute(source: Path, output: Path, params: dict[str, Any],
            cell_timeout: int | None = None) -> Exception | None:
    """Execute ``source`` into ``output`` with papermill; return the error, None if it ran.

    The kernel's working directory is the notebook's folder, as in Jupyter. A cell running
    longer than ``cell_timeout`` seconds (None: no limit) is interrupted and fails the notebook.
    """
    import papermill  # imported here: --list-parameters and bad input stay fast

    try:
        with quiet_papermill():
            papermill.execute_notebook(
                str(source), str(output), parameters=params, kernel_name=KERNEL_NAME,
                cwd=str(source.parent), progress_bar=False, log_output=False,
                execution_timeout=cell_timeout,
                # the kernel's own log (transport warnings, shutdown notes) is not the
                # notebook's output; cell errors still arrive through papermill
                extra_arguments=["--IPKernelApp.log_level=CRITICAL"])
    except Exception as exc:  # any failure is recorded in the summary; the next notebook runs
        return exc
    return None


@contextlib.contextmanager
def quiet_papermill() -> Iterator[None]:
    """Hide papermill's warnings while it runs a notebook.

    papermill re-parses the parameters cell with a regex that drops any line holding two "="
    and then warns "Passed unknown parameter" for names the notebook does declare; the runner
    has already checked every name (``check_known``). Real failures still raise.
    """
    logger = logging.getLogger("papermill")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def failing_cell(error: Exception, executed: Path) -> tuple[int | None, int | None]:
    """(source cell index, execution count) of the cell to blame, or (None, None).

    A cell that raised is named by papermill. When the kernel died or timed out there is no
    such cell: blame the last cell that started. papermill's index counts its injected cell,
    which the source notebook does not have, so subtract it when it came before.
    """
    index = getattr(error, "cell_index", None)
    try:
        cells = [c for c in nbformat.read(executed, as_version=4).cells
                 if ERROR_CELL_TAG not in c.get("metadata", {}).get("tags", [])]
    except Exception:  # no readable copy (papermill failed before writing it)
        return index, getattr(error, "exec_count", None)
    if index is None:
        started = [i for i, c in enumerate(cells)
                   if c.get("metadata", {}).get("papermill", {}).get("start_time")]
        if not started:
            return None, None
        index = started[-1]
    injected = sum(INJECTED_TAG in c.get("metadata", {}).get("tags", []) for c in cells[:index])
    return index - injected, cells[index].get("execution_count")


def error_text(error: Exception, cell_timeout: int | None = None) -> str:
    """``Type: message`` on one line (papermill errors carry the kernel's ename/evalue).

    A cell stopped by the time limit reads "timed out after N s".
    """
    from nbclient.exceptions import CellTimeoutError

    if isinstance(error, CellTimeoutError):
        return f"timed out after {cell_timeout} s" if cell_timeout else "timed out"
    name = getattr(error, "ename", None) or type(error).__name__
    message = getattr(error, "evalue", None)
    if message is None:
        message = str(error)
    line = f"{name}: {message}".strip().replace("\n", " ")
    return line if len(line) <= 300 else line[:297] + "..."


def read_results(results: Path, stem: str) -> tuple[list[Check], str]:
    """The check rows and device a notebook saved ("-" when it recorded no device)."""
    device = read_run_meta(results, stem).get("device", NO_DEVICE)
    return read_checks(results, stem), str(device)


def remove_stale(run_folder: Path, stem: str) -> None:
    """Delete a previous run's files for this notebook, so none can pass for this run's."""
    stale = [run_folder / f"{stem}.ipynb", run_folder / f"{stem}.html",
             run_folder / "checkpoints" / f"{stem}.pt"]  # 440 MB for 03, even without the flag
    stale += (run_folder / RESULTS_DIR).glob(f"{stem}.*.json")  # checks, meta, run and the like
    for path in stale:
        path.unlink(missing_ok=True)


def run_notebook(source: Path, run_folder: Path, params: dict[str, Any], html: bool = True,
                 cell_timeout: int | None = DEFAULT_CELL_TIMEOUT) -> NotebookResult:
    """Execute one notebook into ``run_folder`` and collect what it produced.

    cell_timeout: seconds one cell may run (None: no limit).
    """
    stem = source.stem
    executed = run_folder / source.name
    remove_stale(run_folder, stem)
    start = time.perf_counter()
    error = execute(source, executed, params, cell_timeout)
    seconds = time.perf_counter() - start
    result = NotebookResult(stem, "ok" if error is None else "failed", seconds, parameters=params)
    if error is not None:
        result.cell, result.execution_count = failing_cell(error, executed)
        result.error = error_text(error, cell_timeout)
    if executed.is_file():  # a failed notebook's copy and page show where it stopped
        try:
            embed_images(executed, source.parent, run_folder / "figures")
            if html:
                export_html(executed, run_folder / f"{stem}.html")
        except Exception as exc:  # recorded, and the run goes on
            result.status = "failed"
            result.error = result.error or f"images/HTML export failed: {error_text(exc)}"
    try:
        result.checks, result.device = read_results(run_folder / RESULTS_DIR, stem)
    except ValueError as exc:  # a broken results file fails this notebook, not the run
        result.status, result.error = "failed", result.error or str(exc)
    if result.status == "ok" and not result.checks:
        result.note = f'no checks saved (does it call show_checks("{stem}", rows)?)'
    atomic_write_json(run_folder / RESULTS_DIR / f"{stem}.run.json", asdict(result))
    return result


def check_destination(notebooks: Sequence[Path], run_folder: Path) -> None:
    """Refuse a run folder where an executed copy would overwrite its source."""
    for nb in notebooks:
        if (run_folder / nb.name).resolve() == nb.resolve():
            raise RunnerError(f"run folder {display_path(run_folder)!r} is the notebooks' own "
                              "folder: executed copies would overwrite the sources; pick "
                              "another --name or --runs-dir")
