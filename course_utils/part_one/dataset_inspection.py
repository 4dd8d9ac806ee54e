"""Inspecting a dataset for notebook 01: decodable images, sizes, examples, pixel statistics.

Everything here works from a ``DatasetIndex`` (``find_images``): the files are scanned once;
``drop_undecodable`` decodes each image once more, so the counts that follow are of images that
load.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from course_utils.part_one.data_errors import DatasetError, check_split_readable, warn_unreadable
from course_utils.part_one.data_spec import check_image_size
from course_utils.part_one.dataset import DatasetIndex, choose_subset
from course_utils.part_one.dataset_generator import SPLITS
from course_utils.part_one.decode import decode_gray, decode_readable, load_image
from course_utils.paths import display_path
from course_utils.validation import require_int


def drop_undecodable(index: DatasetIndex, workers: int | None = None) -> DatasetIndex:
    """``index`` without the images whose pixels do not decode (a truncated file: its header
    reads, so ``find_images`` kept it).

    Every usable image is decoded once (``workers`` threads; None: one per core). Those that
    fail move to ``skipped`` with their reason (out of ``files``, ``headers`` and
    ``converted``), and one DatasetWarning names them. DatasetError, naming the folder, if a
    split is left empty or mostly unusable, or a class is left with no image.
    """
    paths = [entry.path for entry in index.headers]
    _, _, bad = decode_readable(paths, decode_gray, workers)
    if not bad:
        return index
    broken = {path for path, _ in bad}
    split_of = {entry.path: entry.split for entry in index.headers}
    for split in SPLITS:
        in_split = [(p, reason) for p, reason in bad if split_of[p] == split]
        check_split_readable(index.root, split, len(index.files[split]), in_split)
    files = {split: [(p, label) for p, label in items if p not in broken]
             for split, items in index.files.items()}
    for split, items in files.items():
        empty = sorted(set(range(index.num_classes)) - {label for _, label in items})
        if empty:
            folders = [display_path(index.root / split / index.classes[i]) for i in empty]
            raise DatasetError(
                f"class folder(s) {folders} "
                "have no image that decodes; re-export the images or remove the class from "
                "both train/ and test/")
    warn_unreadable(index.root, bad)
    return dataclasses.replace(
        index, files=files, skipped=[*index.skipped, *bad],
        converted=[(p, m) for p, m in index.converted if p not in broken],
        headers=[entry for entry in index.headers if entry.path not in broken])


def skipped_lines(index: DatasetIndex) -> list[str]:
    """One line per file left out of ``index``: '<file, relative to the dataset>: <reason>'."""
    def relative(path: Path) -> str:
        try:
            return path.relative_to(index.root).as_posix()
        except ValueError:
            return str(path)
    return [f"{relative(path)}: {reason}" for path, reason in index.skipped]


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


def size_summary(frame: pd.DataFrame) -> dict[str, int]:
    """How the image sizes of ``frame`` (from inspect_dataset) vary.

    Returns {"images", "distinct_sizes": distinct (width, height) pairs, "width_min",
    "width_max", "height_min", "height_max", "common_width", "common_height": the most common
    size, "common_images": how many images have it}.
    """
    sizes = frame.groupby(["width", "height"]).size().sort_values(ascending=False, kind="stable")
    (common_width, common_height), common_images = sizes.index[0], sizes.iloc[0]
    return {"images": len(frame), "distinct_sizes": len(sizes),
            "width_min": int(frame["width"].min()), "width_max": int(frame["width"].max()),
            "height_min": int(frame["height"].min()), "height_max": int(frame["height"].max()),
            "common_width": int(common_width), "common_height": int(common_height),
            "common_images": int(common_images)}


def size_sentence(summary: dict[str, int]) -> str:
    """'every one of the N images is W wide x H high' or, when sizes vary, how many sizes,
    their range and the most common one (``summary`` from size_summary)."""
    common = f"{summary['common_width']} wide x {summary['common_height']} high"
    if summary["distinct_sizes"] == 1:
        return f"every one of the {summary['images']} images is {common}"
    return (f"{summary['distinct_sizes']} different sizes in {summary['images']} images: "
            f"width {summary['width_min']}-{summary['width_max']}, height "
            f"{summary['height_min']}-{summary['height_max']}; the most common, {common}, "
            f"is shared by {summary['common_images']} image(s)")


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



def brightness_features(images: np.ndarray) -> np.ndarray:
    """What an image's brightness histogram says in two numbers: (N, H, W) uint8 -> (N, 2),
    each image's pixel mean and pixel standard deviation (0-255 scale)."""
    values = images.reshape(len(images), -1).astype(np.float64)
    return np.stack([values.mean(axis=1), values.std(axis=1)], axis=1)


def brightness_only_accuracy(train_images: np.ndarray, train_labels: np.ndarray,
                             test_images: np.ndarray, test_labels: np.ndarray,
                             num_classes: int) -> dict[str, object]:
    """How well brightness alone tells the classes apart: a nearest-class-mean classifier on
    ``brightness_features`` (standardised by the training images' spread), fitted on the
    training images, scored on the test images.

    images: uint8 (N, H, W); labels: int (N,). Returns {"accuracy": on the test images,
    "chance": the largest class's share of them (always answering it scores that),
    "recall": per-class accuracy, one float per class (nan for a class with no test image)}.
    """
    train_x, test_x = brightness_features(train_images), brightness_features(test_images)
    scale = train_x.std(axis=0)
    scale[scale == 0] = 1.0
    centres = np.stack([train_x[train_labels == k].mean(axis=0) for k in range(num_classes)])
    distances = (((test_x[:, None, :] - centres[None]) / scale) ** 2).sum(axis=2)  # (N, K)
    predicted = distances.argmin(axis=1)
    correct = predicted == test_labels
    recall = [float(correct[test_labels == k].mean()) if (test_labels == k).any() else np.nan
              for k in range(num_classes)]
    chance = float(np.bincount(test_labels, minlength=num_classes).max() / len(test_labels))
    return {"accuracy": float(correct.mean()), "chance": chance, "recall": recall}
