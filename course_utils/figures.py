"""Every figure of the course, the one module that imports matplotlib.

The notebooks call ``figures.plot_*`` and save the result with ``save_figure`` (PNG only: nbval
compares SVG as text). The computing modules (``part_one``, ``part_two``) never import this one,
so they run without matplotlib (e.g. on a GPU box that only trains or benchmarks).
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from course_utils.atomic import atomic_write_bytes
from course_utils.part_two.chain_rule import ACTIVATION_NAMES, Activation
from course_utils.part_two.chain_rule_descent import Step, history_frame
from course_utils.paths import figures_dir

if TYPE_CHECKING:  # annotations only: `save_figure` alone must not load torch (seconds)
    import pandas as pd
    import torch

    from course_utils.part_one.lr_study import StepRun
    from course_utils.part_one.train import History
    from course_utils.part_two.worked_example import Inputs

matplotlib.rcParams.update({"figure.dpi": 100, "savefig.dpi": 100, "figure.figsize": (6, 4)})


def save_figure(fig: Figure, name: str) -> Path:
    """Save ``fig`` as ``<figures dir>/<name>.png`` (atomically) and return the path.

    PNG metadata carries no date or version, so the same figure gives the same bytes.
    """
    if not name or "/" in name or name.endswith(".png"):
        raise ValueError(f"figure name must be a bare name like 'loss_curves', got {name!r}")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight", metadata={"Software": None})
    return atomic_write_bytes(figures_dir() / f"{name}.png", buffer.getvalue())


# ---------------------------------------------------------------------------------------------
# Part One: the dataset (notebook 01)
# ---------------------------------------------------------------------------------------------


def plot_class_balance(counts: pd.DataFrame) -> Figure:
    """Bar chart of images per class and split; counts from DatasetIndex.counts()."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    counts.plot.bar(ax=ax, rot=30)
    ax.set_ylabel("images")
    ax.set_ylim(0, 1.3 * counts.to_numpy().max())  # room for the legend above the bars
    ax.legend(loc="upper center", ncol=len(counts.columns))
    ax.set_title("Images per class")
    for container in ax.containers:
        ax.bar_label(container, fontsize=8)
    fig.tight_layout()
    return fig


def plot_sample_grid(examples: list[list[Path]], classes: Sequence[str],
                     image_size: int) -> Figure:
    """One row per class, one column per example, each resized to image_size (as trained)."""
    from course_utils.part_one.decode import load_image  # here: it loads torch

    rows, cols = len(examples), max(len(row) for row in examples)
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols + 1.2, 1.3 * rows), squeeze=False)
    for r, (name, paths) in enumerate(zip(classes, examples, strict=True)):
        for c, ax in enumerate(axes[r]):
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(paths):
                ax.imshow(load_image(paths[c], image_size, 1)[0], cmap="gray", vmin=0, vmax=255)
        axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(f"Random training images per class, resized to {image_size}x{image_size}")
    fig.tight_layout()
    return fig


def plot_intensity_histograms(images: np.ndarray, labels: np.ndarray,
                              classes: Sequence[str]) -> Figure:
    """One pixel-intensity histogram (0-255, as a density) per class; images uint8 (N, H, W)."""
    fig, axes = plt.subplots(2, math.ceil(len(classes) / 2), figsize=(10, 5), sharex=True,
                             sharey=True, squeeze=False)
    bins = np.arange(0, 257, 4)
    for i, (ax, name) in enumerate(zip(axes.flat, classes, strict=False)):
        ax.hist(images[labels == i].ravel(), bins=bins, density=True, color="0.3")
        ax.set_title(name, fontsize=9)
    for ax in axes.flat[len(classes):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("pixel value")
    fig.suptitle("Pixel intensity per class")
    fig.tight_layout()
    return fig


def plot_resize(path: str | os.PathLike, image_size: int) -> Figure:
    """An image as stored (left) and after the resize to image_size x image_size (right).

    Both are drawn at their true aspect ratio, so the squeeze of 800x947 into a square shows.
    """
    from course_utils.part_one.decode import decode_gray, load_image  # here: it loads torch

    original = np.asarray(decode_gray(path))
    resized = load_image(path, image_size, 1)[0]
    fig, axes = plt.subplots(1, 2, figsize=(6.5, 3.6),
                             gridspec_kw={"width_ratios": [original.shape[1] / original.shape[0],
                                                           1]})
    for ax, pixels, title in ((axes[0], original, "as stored"),
                              (axes[1], resized, "resized")):
        ax.imshow(pixels, cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"{title}: {pixels.shape[1]}x{pixels.shape[0]}")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def plot_channels(pixels: np.ndarray) -> Figure:
    """The channels of one loaded image side by side; pixels uint8 (C, H, W)."""
    fig, axes = plt.subplots(1, len(pixels), figsize=(2.2 * len(pixels), 2.4), squeeze=False)
    for c, ax in enumerate(axes[0]):
        ax.imshow(pixels[c], cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"channel {c}")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# Part One: training (notebook 03)
# ---------------------------------------------------------------------------------------------


def plot_step_losses(runs: list[StepRun]) -> Figure:
    """Train loss per optimiser step for each lr (log scale)."""
    fig, ax = plt.subplots()
    for run in runs:
        steps = range(1, len(run.step_losses) + 1)
        ax.plot(steps, run.step_losses, "o-", markersize=3, label=f"lr={run.lr:g}")
    ax.set(xlabel="optimiser step", ylabel="train loss of the batch (log scale)", yscale="log",
           title="Same model, data and seed; only the learning rate differs")
    ax.legend()
    return fig


def plot_train_curves(record: dict, report_accuracy: float, title: str) -> Figure:
    """Test accuracy (left) and train loss (right, log scale) per epoch for every run of a
    training-curves result, with the report's accuracy and chance."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, run in enumerate(record["runs"]):
        epochs = [e["epoch"] for e in run["history"]]
        style = "s--" if run["batch_size"] != record["config"]["batch_size"] or \
            run["warmup_epochs"] else "o-"
        left.plot(epochs, [e["test_accuracy"] for e in run["history"]], style, color=f"C{i}",
                  label=run["name"])
        right.plot(epochs, [e["train_loss"] for e in run["history"]], style, color=f"C{i}",
                   label=run["name"])
    left.axhline(report_accuracy, color="black", linestyle="-.",
                 label=f"the report: {report_accuracy:.0%}")
    left.axhline(1 / len(record["classes"]), color="gray", linestyle=":", label="chance")
    left.set(xlabel="epoch", ylabel="test accuracy", ylim=(0, 1), title="Test accuracy")
    right.set(xlabel="epoch", ylabel="train loss (log scale)", yscale="log",
              title="Train loss per epoch")
    for ax in (left, right):
        ax.xaxis.get_major_locator().set_params(integer=True)
    left.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_losses(histories: dict[str, History]) -> Figure:
    """Train (solid) and test (dashed) loss per epoch for each named run; log scale."""
    fig, ax = plt.subplots()
    for i, (name, history) in enumerate(histories.items()):
        color = f"C{i}"
        ax.plot(history.column("epoch"), history.column("train_loss"), "o-", color=color,
                label=f"{name}: train")
        ax.plot(history.column("epoch"), history.column("test_loss"), "s--", color=color,
                label=f"{name}: test")
    ax.set(xlabel="epoch", ylabel="cross-entropy loss (log scale)", yscale="log",
           title="Loss per epoch")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend()
    return fig


def plot_accuracy(histories: dict[str, History], chance: float) -> Figure:
    """Test accuracy per epoch for each named run, with the chance level (1 / classes)."""
    fig, ax = plt.subplots()
    for name, history in histories.items():
        ax.plot(history.column("epoch"), history.column("test_accuracy"), "o-", label=name)
    ax.axhline(chance, color="gray", linestyle=":", label="chance")
    ax.set(xlabel="epoch", ylabel="test accuracy", ylim=(0, 1), title="Test accuracy per epoch")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend()
    return fig


def plot_confusion(counts: np.ndarray, classes: list[str]) -> Figure:
    """The confusion matrix: rows true class, columns predicted class, counts in the cells."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.imshow(counts, cmap="Blues")
    for (i, j), value in np.ndenumerate(counts):
        ax.text(j, i, str(value), ha="center", va="center",
                color="white" if value > counts.max() / 2 else "black")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set(xlabel="predicted class", ylabel="true class", title="Confusion matrix (test)")
    return fig


def plot_examples(images: torch.Tensor, true: np.ndarray, pred: np.ndarray,
                  classes: list[str], indices: np.ndarray) -> Figure:
    """Test images at ``indices`` (images: uint8 (N, C, H, W)), titled true -> predicted."""
    count = max(len(indices), 1)
    fig, axes = plt.subplots(1, count, figsize=(2 * count, 2.4), squeeze=False)
    for ax, i in zip(axes[0], indices, strict=False):
        ax.imshow(images[i, 0].numpy(), cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"{classes[true[i]]}\n-> {classes[pred[i]]}", fontsize=8)
    for ax in axes[0]:
        ax.axis("off")
    return fig


# ---------------------------------------------------------------------------------------------
# Part One: speed (notebook 04)
# ---------------------------------------------------------------------------------------------


def plot_fps_vs_batch(model_only: Sequence[dict], warm: Sequence[dict], report_fps: float,
                      cold: Sequence[dict] = ()) -> Figure:
    """FPS against batch size (log 2 axis): model-only line, cold and warm points, the report."""
    fig, ax = plt.subplots()
    ax.plot([r["batch_size"] for r in model_only], [r["fps"] for r in model_only], "o-",
            label="model-only (tensors in memory)")
    if cold:
        ax.plot([r["batch_size"] for r in cold], [r["fps"] for r in cold], "^",
                markersize=9, label="cold (files decoded -> model)")
    ax.plot([r["batch_size"] for r in warm], [r["fps"] for r in warm], "s",
            markersize=9, label="warm (files -> decoded cache -> model)")
    ax.axhline(report_fps, color="gray", linestyle=":", label=f"report: {report_fps} FPS")
    ax.set_xscale("log", base=2)
    ax.set_xticks([r["batch_size"] for r in model_only],
                  [str(r["batch_size"]) for r in model_only])
    ax.set(xlabel="batch size", ylabel="images per second", title="FPS against batch size")
    ax.legend()
    return fig


def plot_end_to_end_vs_model(model_only: Sequence[dict], warm: Sequence[dict],
                             cold: Sequence[dict] = ()) -> Figure:
    """Bars per batch size measured end to end: model-only, decode-only, cold and warm FPS."""
    by_batch = {r["batch_size"]: r["fps"] for r in model_only}
    cold_by_batch = {r["batch_size"]: r for r in cold}
    shared = [r for r in warm if r["batch_size"] in by_batch]
    series = [("model-only", [by_batch[r["batch_size"]] for r in shared])]
    if cold:
        series += [("decode-only (no model)",
                    [cold_by_batch[r["batch_size"]]["decode_only_fps"]
                     if r["batch_size"] in cold_by_batch else 0 for r in shared]),
                   ("cold", [cold_by_batch[r["batch_size"]]["fps"]
                             if r["batch_size"] in cold_by_batch else 0 for r in shared])]
    series.append(("warm", [r["fps"] for r in shared]))
    positions = np.arange(len(shared))
    width = 0.8 / len(series)
    fig, ax = plt.subplots()
    for number, (label, values) in enumerate(series):
        ax.bar(positions + (number - (len(series) - 1) / 2) * width, values, width, label=label)
    ax.set_xticks(positions, [f"batch {r['batch_size']}" for r in shared])
    ax.set(ylabel="images per second", title="Cold and warm against model-only")
    ax.legend()
    return fig


# ---------------------------------------------------------------------------------------------
# Part Two: the chain rule (notebook 05)
# ---------------------------------------------------------------------------------------------


def plot_activations(activation_functions: dict[str, tuple[Callable, Callable]],
                     z_min: float = -4.0, z_max: float = 4.0) -> plt.Figure:
    """Each activation of notebook 05's ``{name: (value, derivative)}`` (top row) and its
    derivative (bottom row) on [z_min, z_max]."""
    z = np.linspace(z_min, z_max, 401)
    acts = [Activation(name, *activation_functions[name]) for name in ACTIVATION_NAMES]
    fig, axes = plt.subplots(2, len(acts), figsize=(9, 4.5), sharex=True)
    for column, act in enumerate(acts):
        axes[0, column].plot(z, [act.value(v) for v in z])
        axes[0, column].set_title(act.name)
        axes[1, column].plot(z, [act.derivative(v) for v in z], color="tab:orange")
        if act.name == "relu":  # no derivative at 0: mark the value the code chose
            axes[1, column].plot([0.0], [act.derivative(0.0)], "o", color="black",
                                 label=f"a'(0) = {act.derivative(0.0):g} in the code")
            axes[1, column].legend(loc="center right", fontsize=8)
        axes[1, column].set_xlabel("z")
    axes[0, 0].set_ylabel("value a(z)")
    axes[1, 0].set_ylabel("derivative a'(z)")
    for ax in axes.flat:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_descent(history: list[Step], title: str) -> plt.Figure:
    """E against the step (left, log scale when E > 0) and the three weights (right)."""
    frame = history_frame(history)
    fig, (ax_error, ax_weights) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax_error.plot(frame.index, frame["E"], marker=".")
    if (frame["E"] > 0).all():
        ax_error.set_yscale("log")  # E shrinks by orders of magnitude near the target
    ax_error.set_xlabel("gradient-descent step")
    ax_error.set_ylabel("E = 1/2 (y - t)^2")
    ax_error.set_title(title)
    for name in ("w1", "w2", "w3"):
        ax_weights.plot(frame.index, frame[name], label=name)
    ax_weights.set_xlabel("gradient-descent step")
    ax_weights.set_ylabel("weight value")
    ax_weights.legend()
    for ax in (ax_error, ax_weights):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# Part Two: the worked example (notebook 06)
# ---------------------------------------------------------------------------------------------


def plot_recovered_image(inputs: Inputs, search_entries: Collection[tuple[int, int]],
                         winners: list[tuple[int, int]]) -> Figure:
    """The recovered image X (5, 5), coloured by where each entry comes from (``entry_kinds``).

    Each winning max-pool window (top-left corner in ``winners``) is boxed as the 2x2 patch of X
    that produced it. Returns a figure with one axes.
    """
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Rectangle

    from course_utils.part_two.worked_example_recovery import entry_kinds  # here: loads torch

    fig, ax = plt.subplots(figsize=(5, 4.6))
    colors = ListedColormap(["#d9d9d9", "#fdd49e", "#9ecae1"])
    ax.imshow(entry_kinds(search_entries), cmap=colors, vmin=0, vmax=2)
    for (i, j), v in np.ndenumerate(inputs.x):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=11)
    for i, (r, c) in enumerate(winners):
        # a conv output at (r, c) reads X[r:r+2, c:c+2]; -0.5 puts the box on pixel edges
        ax.add_patch(Rectangle((c - 0.5, r - 0.5), 2, 2, fill=False, lw=2, ec=f"C{i}", ls="-"))
    ax.set_xticks(range(5))
    ax.set_yticks(range(5))
    ax.set_title("Recovered image X: blue = searched (13), orange = fixed by\n"
                 "the rounded conv output, grey = public copy (11); boxes = winning windows",
                 fontsize=9)
    return fig


def plot_backward_maps(results: dict[str, np.ndarray], winners: list[tuple[int, int]]) -> Figure:
    """Four heat maps: conv output (4, 4), max-pool delta (4, 4), dL/dX (5, 5), dL/dK (2, 2).

    results: from ``forward_backward``; the winning conv outputs are boxed in the first panel.
    Each panel has its own symmetric colour scale (red positive, blue negative).
    Returns a figure with four axes.
    """
    from matplotlib.patches import Rectangle

    fig, axes = plt.subplots(1, 4, figsize=(13, 3.4))
    panels = [("conv output (winners boxed)", results["conv_output"]),
              ("max-pool delta", results["maxpool_delta"]),
              ("conv delta input dL/dX", results["conv_delta_input"]),
              ("conv delta kernel dL/dK", results["conv_delta_kernel"])]
    for ax, (title, matrix) in zip(axes, panels, strict=True):
        limit = np.max(np.abs(matrix))  # symmetric scale: zero is white in every panel
        ax.imshow(matrix, cmap="RdBu_r", vmin=-limit, vmax=limit)
        for (i, j), v in np.ndenumerate(matrix):
            ax.text(j, i, f"{v:.3f}", ha="center", va="center", fontsize=7)
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    for r, c in winners:
        axes[0].add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, lw=2, ec="k"))
    fig.suptitle("Forward output and the gradients flowing back (red positive, blue negative)")
    return fig
