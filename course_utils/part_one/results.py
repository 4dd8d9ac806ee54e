"""A finished training run's results: the JSON record (configuration, history, confusion
matrix, machine), where a graded run writes it, and notebook 03's tables of it."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from course_utils.atomic import atomic_write_json
from course_utils.part_one.devices import environment_info
from course_utils.part_one.presets import TrainConfig
from course_utils.part_one.train import History
from course_utils.paths import run_dir


def confusion_matrix(true: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """counts[i, j] = images of class i predicted as class j; shape (num_classes, num_classes)."""
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(true), np.asarray(pred)), 1)
    return counts


def result_record(config: TrainConfig, history: History, classes: list[str],
                  device: torch.device | str) -> dict[str, Any]:
    """The JSON-ready result of a run: configuration, history, accuracy, confusion, versions."""
    counts = confusion_matrix(history.labels, history.predictions, len(classes))
    return {"config": asdict(config), "classes": list(classes), "history": history.epochs,
            "final_accuracy": history.final_accuracy, "confusion_matrix": counts.tolist(),
            "environment": environment_info(device)}


def save_result(path: str | Path, config: TrainConfig, history: History, classes: list[str],
                device: torch.device | str) -> Path:
    """Write ``result_record(...)`` to ``path`` as JSON (atomically)."""
    return atomic_write_json(path, result_record(config, history, classes, device))


def graded_result_path(name: str) -> Path | None:
    """``<run>/results/<name>.result.json`` in a graded run; None otherwise (nothing written)."""
    return None if run_dir() is None else run_dir() / "results" / f"{name}.result.json"


def history_frame(history: History, decimals: int = 4) -> pd.DataFrame:
    """Per-epoch losses and accuracy, rounded (no timings: they differ run to run)."""
    frame = pd.DataFrame(history.epochs, columns=["epoch", "train_loss", "test_loss",
                                                  "test_accuracy"])
    return frame.round(decimals).set_index("epoch")


def per_class_accuracy(counts: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """From a confusion matrix (K, K): test images, correct and accuracy per class."""
    images = counts.sum(axis=1)
    correct = np.diag(counts)
    return pd.DataFrame({"class": classes, "images": images, "correct": correct,
                         "accuracy": np.round(correct / np.maximum(images, 1), 4)})


def misclassified(true: np.ndarray, pred: np.ndarray, limit: int = 8) -> np.ndarray:
    """Indices (at most ``limit``) of wrongly predicted test images, spread over the classes.

    The first wrong image of each true class comes first, then the second of each, and so on,
    so the examples are not all of one class.
    """
    true = np.asarray(true)
    wrong = np.flatnonzero(true != np.asarray(pred))
    rank = np.array([np.sum(true[wrong[:k]] == true[i]) for k, i in enumerate(wrong)])
    order = np.lexsort((wrong, rank))  # by rank within its class, then by position
    return wrong[order][:limit]
