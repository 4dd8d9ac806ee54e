"""Checkpoints of a training run: written atomically after every epoch, read back with
weights_only=True, resumed only with the settings they were written with, and where a
notebook's run keeps them."""

from __future__ import annotations

import io
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from course_utils.atomic import atomic_write
from course_utils.part_one.presets import TrainConfig
from course_utils.paths import KEEP_CHECKPOINTS_ENV, PROJECT_ROOT, run_dir


def save_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    epoch: int, history: list[dict], config: TrainConfig) -> Path:
    """Write model, optimizer, finished-epoch count and history to ``path`` atomically.

    Only tensors, numbers, strings, lists and dicts: loadable with weights_only=True.
    """
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "epoch": int(epoch), "history": history, "config": asdict(config)}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return atomic_write(path, lambda handle: handle.write(buffer.getvalue()))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint`` (weights_only=True: no pickled code)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; train without resume=True first")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated or foreign file: say which, and what to do
        raise ValueError(f"checkpoint {path} cannot be read ({type(error).__name__}); delete it "
                         "and train again without resume=True") from error


#: Settings a resumed run may change: they do not alter the epochs already trained.
RESUMABLE_CHANGES = {"epochs", "progress", "device"}


def _check_same_run(saved: dict[str, Any], config: TrainConfig, path: str | Path) -> None:
    """Resuming with other settings would silently mix two runs: refuse, naming them."""
    current = asdict(config)
    # A field added since the checkpoint was written counts as its default (e.g. warmup_epochs).
    defaults = asdict(TrainConfig())
    changed = sorted(k for k in current if k not in RESUMABLE_CHANGES
                     and saved.get(k, defaults[k]) != current[k])
    if changed:
        details = ", ".join(f"{k}: {saved.get(k)!r} -> {current[k]!r}" for k in changed)
        raise ValueError(f"checkpoint {path} was written with other settings ({details}); "
                         "resume with the same settings, or train again without resume=True")


def resume_from(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                config: TrainConfig) -> tuple[int, list[dict]]:
    """Load the checkpoint at ``path`` into ``model`` and ``optimizer``, after checking that it
    was written with ``config``'s settings (RESUMABLE_CHANGES aside).

    Returns (epochs it had finished, their history rows).
    """
    state = load_checkpoint(path)
    _check_same_run(state["config"], config, path)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return state["epoch"], list(state["history"])


def checkpoint_path(name: str) -> Path | None:
    """Checkpoint file for notebook ``name``: ``checkpoints/<name>.pt`` outside a graded run.

    A graded run keeps no checkpoint (about 440 MB for the report's CNN): None, so ``fit``
    writes nothing, unless the runner was given ``--keep-checkpoints`` (which sets
    ``$COURSE_KEEP_CHECKPOINTS=1``); then ``<run>/checkpoints/<name>.pt``.
    """
    graded = run_dir()
    if graded is None:
        return PROJECT_ROOT / "checkpoints" / f"{name}.pt"
    if os.environ.get(KEEP_CHECKPOINTS_ENV) != "1":
        return None
    return graded / "checkpoints" / f"{name}.pt"
