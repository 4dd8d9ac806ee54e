"""What data a run uses: one ``DataSpec`` (dataset folder, image size, channels), one rule.

``data_spec`` is the one place that applies the defaults and checks the values. It is called
once, at the edge (a notebook's configuration cell, the training runner, a benchmark), where
``data_dir=None`` ("the built-in dataset") becomes the path of that dataset, built if missing.
Everything after it takes a resolved folder and never builds a dataset:

    spec = data_spec(None, image_size=64)          # DataSpec(data_dir=.../data/sample, 64, 1)
    splits, classes = load_cached_splits(spec)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from course_utils.part_one.data_errors import DatasetError
from course_utils.part_one.dataset_generator import ensure_sample_dataset
from course_utils.part_one.report_cnn import MIN_IMAGE_SIZE
from course_utils.paths import display_path
from course_utils.validation import require_int

#: The report's input size (800x947 resized to 256x256).
DEFAULT_IMAGE_SIZE = 256
#: 1: grayscale as stored; 3: grayscale replicated into RGB (the report's question 1).
CHANNEL_CHOICES = (1, 3)


@dataclass(frozen=True)
class DataSpec:
    """A resolved, checked choice of data: an existing dataset folder, the side of the square
    images are resized to, and the input channels."""

    data_dir: Path
    image_size: int
    in_channels: int


def check_image_size(image_size: object) -> int:
    """``image_size`` as an int; DatasetError unless it is an integer the model accepts."""
    try:
        return require_int("image_size", image_size, minimum=MIN_IMAGE_SIZE, error=DatasetError)
    except DatasetError as error:
        raise DatasetError(f"{error} (the smallest the model accepts; 64 for quick CPU runs, "
                           "256 as in the report)") from None


def check_in_channels(in_channels: object) -> int:
    """``in_channels`` if it is 1 or 3; DatasetError otherwise."""
    if isinstance(in_channels, bool) or in_channels not in CHANNEL_CHOICES:
        raise DatasetError(f"in_channels must be 1 (grayscale) or 3 (grayscale replicated "
                           f"into RGB, the report's question 1), got {in_channels!r}")
    return int(in_channels)


def check_data_dir(data_dir: str | os.PathLike) -> Path:
    """``data_dir`` as a Path if it is an existing folder; DatasetError otherwise."""
    if data_dir is None:
        raise DatasetError("data_dir is None here: resolve it first with data_spec(None, ...) "
                           "(None means the built-in dataset)")
    path = Path(data_dir).expanduser()
    if not path.is_dir():
        what = "is not a folder" if path.exists() else "does not exist"
        raise DatasetError(
            f"data_dir {display_path(path)!r} {what}; pass a folder holding train/<class>/ and "
            "test/<class>/ image folders, or data_dir=None for the built-in dataset")
    return path


def data_spec(data_dir: str | os.PathLike | None = None, image_size: int | None = None,
              in_channels: int = 1, *, default_size: int = DEFAULT_IMAGE_SIZE) -> DataSpec:
    """The checked DataSpec: data_dir None -> the built-in dataset (built if missing);
    image_size None -> ``default_size``. DatasetError naming the parameter for a bad value."""
    size = check_image_size(default_size if image_size is None else image_size)
    channels = check_in_channels(in_channels)
    folder = ensure_sample_dataset() if data_dir is None else check_data_dir(data_dir)
    return DataSpec(folder, size, channels)
