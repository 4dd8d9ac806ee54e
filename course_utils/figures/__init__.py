"""Plot helpers shared by the notebooks: PNG output only (nbval compares SVG as text)."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

from course_utils.atomic import atomic_write_bytes
from course_utils.paths import figures_dir

matplotlib.rcParams.update({"figure.dpi": 100, "savefig.dpi": 100, "figure.figsize": (6, 4)})


def save_figure(fig: matplotlib.figure.Figure, name: str) -> Path:
    """Save ``fig`` as ``<figures dir>/<name>.png`` (atomically) and return the path.

    PNG metadata carries no date or version, so the same figure gives the same bytes.
    """
    if not name or "/" in name or name.endswith(".png"):
        raise ValueError(f"figure name must be a bare name like 'loss_curves', got {name!r}")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight", metadata={"Software": None})
    return atomic_write_bytes(figures_dir() / f"{name}.png", buffer.getvalue())
