"""Notebook 03 on a second dataset: every statement it prints holds for that run's numbers.

The notebook takes ``data_dir``, so a sentence that states a result must be computed from the
run that printed it. Here it runs (papermill, as a graded run does) on a 3-class dataset, where
chance is 1/3 and a uniform guess costs ln(3), not the built-in dataset's 1/6 and ln(6); the
test reads the run's own history (results JSON) and step losses and checks every yes/no fact,
every "ln(K)" and the checks rows against them. About 30-40 s on 2 CPU cores.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from course_utils.part_one import cache
from course_utils.part_one.dataset_generator import generate_dataset
from course_utils.paths import FIGURES_ENV, NOTEBOOKS_DIR, RUN_DIR_ENV

CLASSES = ["checkerboard", "circles", "vertical_stripes"]
TRAIN_PER_CLASS, TEST_PER_CLASS = 6, 4
IMAGE_SIZE, BATCH_SIZE, EPOCHS = 32, 4, 2
LEARNING_RATES = [0.01, 0.0001]


@pytest.fixture
def three_class_dataset(tmp_path_factory: pytest.TempPathFactory):
    """A small 3-class dataset; its cache files in the project's data/cache/ are removed after."""
    root = generate_dataset(tmp_path_factory.mktemp("three_classes"), TRAIN_PER_CLASS,
                            TEST_PER_CLASS, seed=7, width=64, height=76, classes=CLASSES)
    yield root
    index_file = cache.cache_file(root, IMAGE_SIZE, 1)
    for path in [index_file, *index_file.parent.glob(f"{index_file.stem}.*.pixels.npy")]:
        path.unlink(missing_ok=True)


def run_notebook(root: Path, out_dir: Path) -> dict:
    """Execute notebook 03 on ``root`` with papermill's command line; the executed notebook."""
    output = out_dir / "03_training.ipynb"
    venv_bin = str(Path(sys.executable).parent)  # the kernel finds "python" through PATH
    env = {**os.environ, "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),
           FIGURES_ENV: str(out_dir / "figures"), RUN_DIR_ENV: str(out_dir / "run")}
    command = [sys.executable, "-m", "papermill", "-k", "python3",
               str(NOTEBOOKS_DIR / "03_training.ipynb"), str(output),
               "-p", "data_dir", str(root.resolve()), "-p", "image_size", str(IMAGE_SIZE),
               "-p", "epochs", str(EPOCHS), "-p", "batch_size", str(BATCH_SIZE),
               "-p", "progress", "False", "-y", f"compare_lrs: {LEARNING_RATES}",
               "-p", "compare_steps", "3", "--cwd", str(NOTEBOOKS_DIR), "--no-progress-bar"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(output.read_text(encoding="utf-8"))


def cell_texts(executed: dict, source_start: str) -> str:
    """All text output (stdout and text/plain) of the code cell whose source starts so."""
    for cell in executed["cells"]:
        if cell["cell_type"] == "code" and "".join(cell["source"]).startswith(source_start):
            parts = []
            for output in cell.get("outputs", []):
                parts.append("".join(output.get("text", "")))
                parts.append("".join(output.get("data", {}).get("text/plain", "")))
            return "\n".join(parts)
    raise AssertionError(f"no cell starts with {source_start!r}")


def all_texts(executed: dict, skip: tuple[str, ...] = ()) -> str:
    """The text output of every code cell except those whose source starts with ``skip``."""
    sources = ["".join(c["source"]) for c in executed["cells"] if c["cell_type"] == "code"]
    return "\n".join(cell_texts(executed, source[:40]) for source in sources
                     if source and not source.startswith(skip))


def fact(table: str, label: str) -> str:
    """The value column of one row of a printed one-column table."""
    for line in table.splitlines():
        if line.startswith(label):
            return line[len(label):].strip()
    raise AssertionError(f"no row {label!r} in:\n{table}")


def test_every_printed_statement_holds_for_another_dataset(three_class_dataset: Path,
                                                           tmp_path: Path) -> None:
    executed = run_notebook(three_class_dataset, tmp_path)
    result = json.loads((tmp_path / "run" / "results" / "03_training.result.json").read_text())
    history = result["history"]
    losses = [row["train_loss"] for row in history]
    chance = 1 / len(CLASSES)

    facts = cell_texts(executed, "# What any machine reproduces for this run")
    assert fact(facts, "epochs run") == str(EPOCHS) == str(len(history))
    batches = math.ceil(TRAIN_PER_CLASS * len(CLASSES) / BATCH_SIZE)
    assert fact(facts, "optimiser steps") == str(EPOCHS * batches)
    fell = all(b < a for a, b in zip(losses, losses[1:], strict=False))
    assert fact(facts, "train loss fell every epoch") == ("yes" if fell else "no")
    margin_label = f"test accuracy at least chance ({chance:.3f}) + 0.2"
    beat_chance = result["final_accuracy"] >= chance + 0.2
    assert fact(facts, margin_label) == ("yes" if beat_chance else "no")

    # Going further: each "loss jumped past 10 x ln(3)" verdict against the printed peak.
    peaks = cell_texts(executed, "# NBVAL_IGNORE_OUTPUT\nln_classes")
    assert f"ln({len(CLASSES)}) = {math.log(len(CLASSES)):.4f}" in peaks
    verdicts = cell_texts(executed, "# The losses' digits depend")
    assert f"loss jumped past 10 x ln({len(CLASSES)})" in verdicts
    for lr in LEARNING_RATES:
        ratio = float(re.search(rf"lr={lr:g}: .*?\(([\d.]+) x ln", peaks).group(1))
        row = re.search(rf"^{re.escape(f'{lr:g}')}\s+(yes|no)$", verdicts, re.M)
        assert row is not None, verdicts
        if abs(ratio - 10) > 0.1:  # the printed ratio is rounded to 0.1
            assert row.group(1) == ("yes" if ratio > 10 else "no"), (lr, ratio, verdicts)

    # No output of this run speaks of the built-in dataset's six classes (the committed curves,
    # a 6-class run on the built-in data, say so of themselves and are left out).
    this_run = all_texts(executed, skip=("curves", "if curves"))
    assert "ln(6)" not in this_run and "0.167" not in this_run

    checks = json.loads((tmp_path / "run" / "results" / "03_training.checks.json").read_text())
    rows = {row["quantity"]: row for row in checks["checks"]}
    assert rows["num_classes"]["match"] is False
    assert "another dataset" in rows["num_classes"]["why"]
    accuracy = rows["test accuracy after the last epoch"]
    assert accuracy["computed"] == f"{round(result['final_accuracy'], 2):.6g}"
    assert "another dataset" in accuracy["why"] or accuracy["match"]
