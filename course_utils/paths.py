"""Where things live: the project root, the built-in dataset, figures and run folders.

Paths are resolved from this file, not the working directory, so notebooks (run from
``notebooks/``), papermill runs and tests all agree. Environment variables let a graded run
redirect outputs without touching the committed ``figures/``.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT: Path = Path(__file__).resolve().parent.parent
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
