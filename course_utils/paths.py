"""Where things live: the project root, the built-in dataset, figures and run folders.

Paths are resolved from this file, not the working directory, so notebooks (run from
``notebooks/``), papermill runs and tests all agree; only a package installed outside the
course folder looks for it (``find_project_root``). Environment variables let a graded run
redirect outputs without touching the committed ``figures/``.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Overrides the course folder when the package is installed outside it (a student's wheel).
COURSE_ROOT_ENV = "COURSE_ROOT"


def find_project_root(package_parent: Path | None = None, environ: dict | None = None,
                      cwd: Path | None = None) -> Path:
    """The folder holding ``notebooks/``: the package's parent in the repository or an editable
    install; else ``$COURSE_ROOT``; else the nearest ancestor of ``cwd`` holding ``notebooks/``
    (a notebook runs from ``notebooks/<NN_name>/``); else ``cwd``."""
    parent = package_parent or Path(__file__).resolve().parent.parent
    if (parent / "notebooks").is_dir():
        return parent
    value = (os.environ if environ is None else environ).get(COURSE_ROOT_ENV)
    if value:
        return Path(value).expanduser().resolve()
    here = (cwd or Path.cwd()).resolve()
    return next((folder for folder in (here, *here.parents) if (folder / "notebooks").is_dir()),
                here)


PROJECT_ROOT: Path = find_project_root()
NOTEBOOKS_DIR: Path = PROJECT_ROOT / "notebooks"
SAMPLE_DATA_DIR: Path = PROJECT_ROOT / "data" / "sample"
RUNS_DIR: Path = PROJECT_ROOT / "runs"

#: Set by the notebook runner so a graded run writes figures and results into its run folder.
FIGURES_ENV = "COURSE_FIGURES_DIR"
RUN_DIR_ENV = "COURSE_RUN_DIR"
#: Set to "1" by the runner's --keep-checkpoints; otherwise a graded run writes no checkpoint.
KEEP_CHECKPOINTS_ENV = "COURSE_KEEP_CHECKPOINTS"


def figures_dir() -> Path:
    """Folder for figures: ``$COURSE_FIGURES_DIR`` if set, else ``<project>/figures``."""
    folder = Path(os.environ.get(FIGURES_ENV) or PROJECT_ROOT / "figures")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def run_dir() -> Path | None:
    """The current graded run's folder (``$COURSE_RUN_DIR``), or None outside a graded run."""
    value = os.environ.get(RUN_DIR_ENV)
    return Path(value) if value else None


def display_path(path: str | os.PathLike) -> str:
    """``path`` relative to the project root when inside it (stable across machines)."""
    resolved = Path(path).resolve()
    try:
        return resolved.relative_to(PROJECT_ROOT).as_posix()
    except ValueError:
        return str(path)
