"""Notebooks 01, 03 and 04 on two made-up datasets unlike the built-in one: every statement
they print holds for that run's numbers.

The notebooks take ``data_dir``, so a sentence that states a result must be computed from the
run that printed it. Each notebook runs (papermill, as a graded run does) on
``made_up_datasets.digits_dataset`` (10 grayscale classes at 800x947: chance 1/10, ln(10)) and
``mixed_rgb_dataset`` (4 RGB classes, every image its own size, a truncated PNG, a stray
file, RGBA and 16-bit images, one class given away by its brightness). The tests read every
printed yes/no and sentence and check it against the numbers printed beside it, against the
checks rows the run saved, and against what the dataset is known to hold. A claim that was true
only of the built-in dataset (its six classes, its one size, a reason naming the preset when
a parameter was the cause) fails here. Everything is tiny (32x32, a few images, 1-2 epochs,
3 optimiser steps per learning rate, 2 batch sizes): about 2-3 minutes on 2 busy cores.
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
from made_up_datasets import MadeUp, digits_dataset, mixed_rgb_dataset
from markdown_claims import unproved
from PIL import Image

from course_utils.checks import label_problems, read_checks
from course_utils.part_one import cache
from course_utils.paths import FIGURES_ENV, NOTEBOOKS_DIR, RUN_DIR_ENV

IMAGE_SIZE = 32
LEARNING_RATES = [0.01, 0.0001]
#: Per dataset, the parameters that differ: the digits run gives epochs and batch_size, the
#: mixed run leaves them to the quick preset, so both kinds of reason are read.
GIVEN = {"digits": {"epochs": 1, "batch_size": 8}, "mixed": {}}
QUICK = {"epochs": 2, "batch_size": 8}  # the quick preset's defaults (presets.PRESETS)
COMMON = {
    "01_data_exploration": [],
    "03_training": ["-p", "progress", "False", "-y", f"compare_lrs: {LEARNING_RATES}",
                    "-p", "compare_steps", "3"],
    "04_fps_benchmark": ["-p", "batch_sizes", "[2, 4]", "-p", "end_to_end_batch_sizes", "[2, 4]",
                         "-p", "latency_images", "2"],
}
NOTEBOOKS = tuple(COMMON)
MAKERS = {"digits": digits_dataset, "mixed": mixed_rgb_dataset}


def run_papermill(notebook: str, made: MadeUp, given: dict, out_dir: Path) -> dict:
    """Execute ``notebook`` on ``made`` with papermill's command line; the executed notebook."""
    output = out_dir / f"{notebook}.ipynb"
    venv_bin = str(Path(sys.executable).parent)  # the kernel finds "python" through PATH
    env = {**os.environ, "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),
           FIGURES_ENV: str(out_dir / "figures"), RUN_DIR_ENV: str(out_dir / "run")}
    extra = [] if notebook != "03_training" else [
        arg for name, value in given.items() for arg in ("-p", name, str(value))]
    command = [sys.executable, "-m", "papermill", "-k", "python3",
               str(NOTEBOOKS_DIR / f"{notebook}.ipynb"), str(output),
               "-p", "data_dir", str(made.root.resolve()), "-p", "image_size", str(IMAGE_SIZE),
               *COMMON[notebook], *extra, "--cwd", str(NOTEBOOKS_DIR), "--no-progress-bar"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(output.read_text(encoding="utf-8"))


@pytest.fixture(scope="module", params=sorted(MAKERS))
def dataset_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """One made-up dataset and the three notebooks executed on it: (name, MadeUp, {notebook:
    executed notebook}, results folder). The cache files the notebooks wrote into the
    project's data/cache/ are removed after."""
    name = request.param
    made = MAKERS[name](tmp_path_factory.mktemp(name))
    out_dir = tmp_path_factory.mktemp(f"{name}_runs")
    executed = {nb: run_papermill(nb, made, GIVEN[name], out_dir) for nb in NOTEBOOKS}
    yield name, made, executed, out_dir / "run" / "results"
    index_file = cache.cache_file(made.root, IMAGE_SIZE, 1)
    for path in [index_file, *index_file.parent.glob(f"{index_file.stem}.*.pixels.npy")]:
        path.unlink(missing_ok=True)


def cell_text(executed: dict, source_start: str) -> str:
    """All text output (stdout and text/plain) of the code cell whose source starts so."""
    for cell in executed["cells"]:
        if cell["cell_type"] == "code" and "".join(cell["source"]).startswith(source_start):
            return "\n".join("".join(output.get("text", "")) + "".join(
                output.get("data", {}).get("text/plain", "")) for output in cell.get("outputs", []))
    raise AssertionError(f"no cell starts with {source_start!r}")


def stdout(executed: dict) -> str:
    """Every stdout output of the notebook, joined."""
    return "\n".join("".join(o["text"]) for c in executed["cells"] for o in c.get("outputs", [])
                     if o.get("name") == "stdout")


def line_of(text: str, pattern: str) -> re.Match:
    """The first match of ``pattern`` (a regex, multiline) in ``text``; fails showing the text."""
    found = re.search(pattern, text, re.M)
    assert found is not None, f"no line matches {pattern!r} in:\n{text}"
    return found


def checks(results: Path, notebook: str) -> dict[str, dict]:
    """The checks rows a notebook saved in this run, by quantity; every row keeps the label
    rule (a value read off this dataset is a plain match, never "by construction")."""
    assert label_problems(read_checks(results, notebook)) == []
    rows = json.loads((results / f"{notebook}.checks.json").read_text())["checks"]
    return {row["quantity"]: row for row in rows}


def verdict(row: dict) -> str:
    return "no" if not row["match"] else ("by construction" if row["by_construction"] else "yes")


def agrees(value: float, threshold: float, printed_yes: bool, rounding: float) -> None:
    """A printed yes/no says value > threshold, unless the rounded print cannot tell."""
    if abs(value - threshold) > rounding:
        assert printed_yes == (value > threshold), (value, threshold, printed_yes)


def test_notebook01_statements_hold(dataset_run) -> None:
    name, made, executed, results = dataset_run
    nb = executed["01_data_exploration"]
    k, train, test = len(made.classes), sum(made.train.values()), sum(made.test.values())
    first = cell_text(nb, "import numpy")
    assert f": {train} train + {test} test images, {k} classes (images that decode)" in first
    assert "this run's data is the built-in dataset: no" in first
    assert f"files skipped: {len(made.skipped)}" in first
    for file_name, kind in made.skipped.items():
        reason = line_of(first, rf"^  skipped \S*{re.escape(file_name)}: (.*)$").group(1)
        assert ("truncated" if kind == "does not decode" else "not an image") in reason

    counts = cell_text(nb, "counts = index.counts()")
    assert (f"not the built-in dataset: {min(made.train.values())}-{max(made.train.values())} "
            f"train and {min(made.test.values())}-{max(made.test.values())} test") in counts
    for cls in made.classes:
        assert line_of(counts, rf"^{cls}\s+(\d+)\s+(\d+)$").groups() == (
            str(made.train[cls]), str(made.test[cls]))
    balance = cell_text(nb, "fig = figures.plot_class_balance")
    assert (f"chance accuracy (always the biggest test class): "
            f"{round(max(made.test.values()) / test, 3)}") in balance

    sizes = cell_text(nb, "frame = dataset_inspection")
    distinct = set(made.sizes)
    if len(distinct) == 1:
        (w, h), = distinct
        assert f"every one of the {train + test} images is {w} wide x {h} high" in sizes
    else:
        widths, heights = [w for w, _ in made.sizes], [h for _, h in made.sizes]
        assert (f"{len(distinct)} different sizes in {train + test} images: width "
                f"{min(widths)}-{max(widths)}, height {min(heights)}-{max(heights)}") in sizes

    examples = cell_text(nb, "examples = dataset_inspection")
    assert "drawn by the built-in generator (random placement, contrast, noise): no" in examples

    brightness = cell_text(nb, "mean, std = stats.loc")
    found = line_of(brightness, r"test accuracy ([\d.]+), chance ([\d.]+);")
    accuracy, chance = map(float, found.groups())
    assert chance == round(max(made.test.values()) / test, 3)
    separates = line_of(brightness, r"beats chance by more than 0.2: (yes|no)").group(1) == "yes"
    agrees(accuracy, chance + 0.2, separates, 0.001)
    if name == "mixed":  # built so: "dark_flat" is dark and flat, the others are not
        assert separates, brightness

    resize = cell_text(nb, "example = examples[0][0]")
    example, w, h = line_of(resize, r"^example: (\S+) \((\d+) wide x (\d+) high\)$").groups()
    with Image.open(made.root / example) as image:
        assert image.size == (int(w), int(h))
    size_name = "size" if len(distinct) == 1 else "most common size"
    assert f"this dataset's {size_name}, " in resize

    rows = checks(results, "01_data_exploration")
    for quantity in ("total feature maps, 1 channel", "total feature maps, 3 channels"):
        assert verdict(rows[quantity]) == "by construction", rows[quantity]
    assert verdict(rows["num_classes"]) == "no" and rows["num_classes"]["computed"] == str(k)
    assert rows["test images"]["computed"] == f"{test:,}"
    width_row = rows["image width (our reading: the first number)"]
    if len(distinct) > 1:
        assert f"{len(distinct)} sizes" in width_row["why"]
    elif distinct == {(800, 947)}:  # the report's size, read off these files: not by construction
        assert verdict(width_row) == "yes" and width_row["independent"], width_row


def test_each_run_breaks_the_sentences_it_is_named_for(dataset_run) -> None:
    """The sentences ``markdown_claims`` forbids, named for this dataset's runs, are false here
    (``test_markdown_claims`` keeps them out of the notebooks)."""
    name, _, executed, _ = dataset_run
    for notebook, nb in executed.items():
        assert unproved(f"{notebook[:2]}_{name}", stdout(nb)) == [], notebook


def test_notebook03_statements_hold(dataset_run) -> None:
    name, made, executed, results = dataset_run
    nb = executed["03_training"]
    given = GIVEN[name]
    epochs = given.get("epochs", QUICK["epochs"])
    batch = given.get("batch_size", QUICK["batch_size"])
    k, train, test = len(made.classes), sum(made.train.values()), sum(made.test.values())
    result = json.loads((results / "03_training.result.json").read_text())
    history = result["history"]
    losses = [row["train_loss"] for row in history]
    chance, ln_k = 1 / k, math.log(k)

    data = cell_text(nb, "train_batches, test_batches, classes")
    batches = math.ceil(train / batch)
    assert f"classes ({k}):" in data
    assert f"train: {train} images in {batches} batches of {batch}; test: {test} images" in data

    facts = cell_text(nb, "# What any machine reproduces for this run")
    assert line_of(facts, r"^epochs run\s+(\d+)$").group(1) == str(epochs) == str(len(history))
    assert line_of(facts, r"^optimiser steps\s+(\d+)$").group(1) == str(epochs * batches)
    fell = line_of(facts, r"^train loss fell every epoch\s+(.+)$").group(1)
    if epochs == 1:
        assert fell == "n/a (1 epoch)"
    else:
        assert fell == ("yes" if all(b < a for a, b in zip(losses, losses[1:], strict=False))
                        else "no")
    margin = line_of(facts, rf"^test accuracy at least chance \({chance:.3f}\) \+ 0.2\s+(yes|no)$")
    assert margin.group(1) == ("yes" if result["final_accuracy"] >= chance + 0.2 else "no")

    # Going further: the comparison's steps as a fraction of this dataset's epoch.
    steps = min(3, batches)  # compare_steps 3, never more than one epoch
    assert (f"{steps} steps are {steps / batches:.0%} of one epoch ({batches} batches)"
            in stdout(nb))
    # Each "loss jumped past 10 x ln(K)" verdict against the printed peak.
    peaks = cell_text(nb, "# NBVAL_IGNORE_OUTPUT\nln_classes")
    assert f"ln({k}) = {ln_k:.4f}" in peaks
    table = cell_text(nb, "# The losses' digits depend")
    assert f"loss jumped past 10 x ln({k})" in table
    jumped = {}
    for lr in LEARNING_RATES:
        ratio = float(line_of(peaks, rf"lr={lr:g}: .*?\(([\d.]+) x ln").group(1))
        jumped[lr] = line_of(table, rf"^{re.escape(f'{lr:g}')}\s+(yes|no)$").group(1) == "yes"
        agrees(ratio, 10, jumped[lr], 0.1)  # the printed ratio is rounded to 0.1

    curves = cell_text(nb, "curves = train_curves.load_train_curves()")
    if "no training curves committed" not in curves:
        size = int(line_of(curves, r"\), (\d+)x\1, \d+ train").group(1))
        at_report = line_of(curves, r"at the report's size \(256x256\): (yes|no)").group(1)
        assert at_report == ("yes" if size == 256 else "no")

    # No output of this run speaks of the built-in dataset's six classes (the committed curves,
    # a 6-class run on the built-in data, say so of themselves and are left out).
    sources = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    this_run = "\n".join(cell_text(nb, s[:40]) for s in sources
                         if s and not s.startswith(("curves", "if curves")))
    assert "ln(6)" not in this_run and "0.167" not in this_run

    rows = checks(results, "03_training")
    for quantity, parameter in (("epochs", "epochs"), ("batch size", "batch_size")):
        why = rows[quantity]["why"]
        if parameter in given:
            assert f"-p {parameter} {given[parameter]} was given" in why and "preset" not in why
        else:
            assert "the quick preset's default" in why and "was given" not in why
    assert f"-p image_size {IMAGE_SIZE} was given" in rows["resize_to"]["why"]
    assert "preset" not in rows["resize_to"]["why"]
    assert verdict(rows["num_classes"]) == "no" and f"({k} classes)" in rows["num_classes"]["why"]
    for quantity in ("loss", "optimizer", "weight_decay"):
        assert verdict(rows[quantity]) == "by construction", rows[quantity]
    lr_why = rows["lr"]["why"]
    assert verdict(rows["lr"]) == "no" and "the quick preset's default" in lr_why
    assert ("made the loss jump past" if jumped[0.01] else "kept the loss under") in lr_why
    assert f"10 x ln({k})" in lr_why
    accuracy = rows["test accuracy after the last epoch"]
    assert accuracy["computed"] == f"{round(result['final_accuracy'], 2):.6g}"
    assert "another dataset" in accuracy["why"] or accuracy["match"]
    assert (f"{epochs} epochs (" + ("-p epochs" if "epochs" in given else "the quick preset")
            in accuracy["why"])


def test_notebook04_statements_hold(dataset_run) -> None:
    name, made, executed, results = dataset_run
    nb = executed["04_fps_benchmark"]
    k, test = len(made.classes), sum(made.test.values())
    first = cell_text(nb, "import pandas as pd")
    assert (f"{test} test images at {IMAGE_SIZE}x{IMAGE_SIZE}, 1 channel(s), {k} classes"
            in first)
    printed = stdout(nb)
    assert f"every one of the {test} test images was counted once" in printed
    assert f"each ran the model on {test} of {test} test images" in printed

    sweep = cell_text(nb, "# NBVAL_IGNORE_OUTPUT\nmodel_only = fps.fps_sweep")
    fps_by_batch = {int(b): float(f) for b, f in re.findall(
        r"^\d+\s+\d+\s+(\d+)\s+[\d.]+\s+([\d.]+)\s+\w+$", sweep, re.M)}
    assert sorted(fps_by_batch) == [2, 4], sweep
    grew = line_of(sweep, r"^FPS grew at every larger batch size on this run: (yes|no) "
                          r"\(best: batch (\d+)\)$")
    agrees(fps_by_batch[4] - fps_by_batch[2], 0, grew.group(1) == "yes", 0.001)
    assert int(grew.group(2)) == max(fps_by_batch, key=fps_by_batch.get)

    warm = cell_text(nb, "# NBVAL_IGNORE_OUTPUT\nwarm = [fps.warm_fps")
    ahead = []
    for batch, ratio, said in re.findall(
            r"^batch (\d+): warm / model-only ([\d.]+); warm ahead by more than 5%: (yes|no)$",
            warm, re.M):
        agrees(float(ratio), 1.05, said == "yes", 0.0005)
        ahead += [batch] if said == "yes" else []
    assert len(re.findall(r"^batch \d+: warm / model-only", warm, re.M)) == 2, warm
    gap = cell_text(nb, "# NBVAL_IGNORE_OUTPUT\n# (computed from the committed")
    if "no GPU result committed" not in gap:
        said = line_of(gap, r"^this run \(section 4\), .* more than 5% at (.*)$").group(1)
        assert said.startswith(f"batch {', '.join(ahead)}:" if ahead else "no batch size")

    rows = checks(results, "04_fps_benchmark")
    why = rows["fps_test_images"]["why"]
    assert "this run's dataset" in why and f"{test} test images" in why and "built-in" not in why
    assert rows["fps_test_images"]["computed"] == f"{test:,}"
    assert f"-p image_size {IMAGE_SIZE} was given" in rows["resize_to"]["why"]
    assert "preset" not in rows["resize_to"]["why"]
