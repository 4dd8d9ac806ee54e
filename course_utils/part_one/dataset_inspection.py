"""Inspecting a dataset for notebook 01: image sizes, example picks, pixel statistics.

Everything here works from a ``DatasetIndex`` (``find_images``): the files are scanned once.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from course_utils.part_one.data_errors import DatasetError, check_split_readable, warn_unreadable
from course_utils.part_one.data_spec import check_image_size
from course_utils.part_one.dataset import DatasetIndex, choose_subset
from course_utils.part_one.decode import decode_gray, decode_readable, load_image
from course_utils.validation import require_int


def inspect_dataset(index: DatasetIndex) -> pd.DataFrame:
    """One row per usable image: split, class, file (relative to the dataset), width, height, mode.

    From the image headers that ``find_images`` read: nothing is opened again.
    """
    entries = index.headers
    rows = [{"split": e.split, "class": e.class_name,
             "file": e.path.relative_to(index.root).as_posix(),
             "width": e.width, "height": e.height, "mode": e.mode} for e in entries]
    return pd.DataFrame(rows, columns=["split", "class", "file", "width", "height", "mode"])


def resolution_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """Images per (width, height, mode), most common first; ``frame`` from inspect_dataset."""
    counts = frame.groupby(["width", "height", "mode"]).size().rename("images")
    return counts.sort_values(ascending=False, kind="stable").reset_index()


def most_common_size(frame: pd.DataFrame) -> tuple[int, int]:
    """(width, height) shared by the most images of ``frame`` (from inspect_dataset)."""
    top = resolution_counts(frame).iloc[0]
    return int(top["width"]), int(top["height"])


def pick_examples(index: DatasetIndex, split: str, per_class: int,
                  seed: int = 0) -> list[list[Path]]:
    """``per_class`` random image paths of each class (seeded): one list per class, in order.

    The picks are decoded once: a file that does not decode is replaced by the class's next
    random file (one DatasetWarning names the ones passed over). Without such files the picks
    are those of ``choose_subset``.
    """
    require_int("per_class", per_class, error=DatasetError)
    rng = np.random.default_rng(seed)  # the same draws as choose_subset
    examples, skipped = [], []
    for label in range(index.num_classes):
        paths = [path for path, lab in index.files[split] if lab == label]
        positions = []
        for j in rng.permutation(len(paths)):
            if len(positions) == per_class:
                break
            _, readable, bad = decode_readable([paths[j]], decode_gray)
            positions += [j] if readable else []
            skipped += bad
        examples.append([paths[j] for j in sorted(positions)])
    warn_unreadable(index.root, skipped)
    return examples


def load_split_pixels(index: DatasetIndex, split: str, image_size: int,
                      subset: int | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Every image of a split, resized, as one grayscale array (for statistics and plots).

    Returns images uint8 (N, image_size, image_size) and labels int64 (N,). Files that do not
    decode are left out of both (one DatasetWarning names them); DatasetError if the split is
    left empty or mostly unusable.
    """
    image_size = check_image_size(image_size)
    items = choose_subset(index.files[split], subset, seed)
    pixels, kept, skipped = decode_readable(
        [path for path, _ in items], lambda path: load_image(path, image_size, 1)[0])
    check_split_readable(index.root, split, len(items), skipped)
    warn_unreadable(index.root, skipped)
    labels = np.array([items[i][1] for i in kept], dtype=np.int64)
    return np.stack(pixels), labels


def intensity_table(images: np.ndarray, labels: np.ndarray, classes: Sequence[str]) -> pd.DataFrame:
    """Pixel statistics per class (0-255 scale): images, mean, std, 1st and 99th percentile.

    images: uint8 (N, H, W); labels: (N,). A last row "all" covers every image; its mean and
    std (divided by 255) are what a Normalize transform would use.
    """
    rows = []
    groups = [(name, images[labels == i]) for i, name in enumerate(classes)]
    for name, group in [*groups, ("all", images)]:
        values = group.astype(np.float64).ravel()
        rows.append({"class": name, "images": len(group), "mean": values.mean(),
                     "std": values.std(), "p1": np.percentile(values, 1),
                     "p99": np.percentile(values, 99)})
    return pd.DataFrame(rows).set_index("class")

