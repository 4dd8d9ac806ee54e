"""An ImageFolder-style dataset on disk: validate its layout, index its images, load them.

Any dataset laid out as ``<root>/{train,test}/<class>/<images>`` loads the same way:

    spec = data_spec("data/my_scans", image_size=64, in_channels=3)
    index = find_images(spec.data_dir)       # validates the layout, skips bad files
    train_ds, test_ds = load_splits(spec)
    x, label = train_ds[0]                   # x: (3, 64, 64) float in [0, 1]

Bad input is decided file by file (see ``find_images``): a broken layout raises
``DatasetError``; a single bad file is skipped with a ``DatasetWarning`` naming it; odd image
modes (RGBA, palette, 16-bit) are converted to 8-bit grayscale. A file whose header reads but
whose pixels do not decode (truncated) is skipped the same way by whatever decodes it
(``ImageFolderDataset``, ``load_split_pixels``, the cache): one warning names every such file;
only a split left empty or mostly unreadable raises.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image, UnidentifiedImageError

from course_utils.part_one.data_errors import (
    DatasetError,
    check_split_readable,
    warn_grouped,
    warn_unreadable,
)
from course_utils.part_one.data_spec import (
    DataSpec,
    check_data_dir,
    check_image_size,
    check_in_channels,
)
from course_utils.part_one.dataset_generator import SPLITS
from course_utils.part_one.decode import (
    decode_gray,
    decode_readable,
    describe_error,
    load_image,
)
from course_utils.part_one.report_cnn import MIN_IMAGE_SIZE
from course_utils.paths import display_path
from course_utils.validation import require_int

#: File endings treated as images; anything else in a class folder is skipped with a warning.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp",
                    ".pgm", ".ppm")


@dataclass(frozen=True)
class ImageHeader:
    """One file found in a class folder, with what its header says (or why it is unusable)."""

    split: str
    class_name: str
    path: Path
    width: int = 0
    height: int = 0
    mode: str = ""
    problem: str = ""


@dataclass
class DatasetIndex:
    """Every usable image of a dataset, by split.

    root: the dataset folder; classes: sorted class names (label i = classes[i]);
    files: split -> sorted list of (path, label); skipped: (path, reason) for each file left out;
    converted: (path, mode) for each image whose mode is converted to 8-bit grayscale on load;
    headers: what the header of each usable image says (see ``inspect_dataset``).
    """

    root: Path
    classes: list[str]
    files: dict[str, list[tuple[Path, int]]]
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    converted: list[tuple[Path, str]] = field(default_factory=list)
    headers: list[ImageHeader] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def counts(self) -> pd.DataFrame:
        """Images per class (rows) and split (columns)."""
        table = {split: [sum(1 for _, label in items if label == i)
                         for i in range(len(self.classes))]
                 for split, items in self.files.items()}
        return pd.DataFrame(table, index=pd.Index(self.classes, name="class"))


#: Modes that load_image converts to 8-bit grayscale (reported once per dataset).
_ODD_MODES_NOTE = ("converted to 8-bit grayscale on load (alpha composited onto black, "
                   "16-bit scaled by 1/257)")


def _read_header(split: str, class_name: str, path: Path) -> ImageHeader:
    """Open only the image header: size and mode, or the problem that makes it unusable."""
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        return ImageHeader(split, class_name, path,
                      problem=f"not an image file (extension {path.suffix or 'none'!r})")
    try:
        with Image.open(path) as image:
            width, height = image.size
            mode = image.mode
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        return ImageHeader(split, class_name, path,
                      problem=f"corrupt or unreadable image ({describe_error(error)})")
    if min(width, height) < MIN_IMAGE_SIZE:
        return ImageHeader(split, class_name, path, width, height, mode,
                      problem=f"{width}x{height} is smaller than the model accepts "
                              f"({MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE})")
    return ImageHeader(split, class_name, path, width, height, mode)


def _class_folders(split_dir: Path) -> list[Path]:
    """Visible sub-folders of a split folder, sorted by name."""
    return sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def _visible_files(folder: Path) -> list[Path]:
    """Files under ``folder`` (recursively), sorted, without hidden files and folders."""
    files = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).parts
        if path.is_file() and not any(part.startswith(".") for part in relative):
            files.append(path)
    return files


def _check_layout(root: Path) -> list[str]:
    """Validate train/ and test/ and their class folders; return the sorted class names."""
    missing = [split for split in SPLITS if not (root / split).is_dir()]
    if missing:
        present = sorted(p.name for p in root.iterdir() if not p.name.startswith("."))
        raise DatasetError(
            f"dataset {display_path(root)!r} has no {' or '.join(s + '/' for s in missing)} "
            f"folder (it holds {present or 'nothing'}); expected train/<class>/*.png and "
            "test/<class>/*.png, one sub-folder per class")
    class_sets = {}
    for split in SPLITS:
        names = [p.name for p in _class_folders(root / split)]
        if not names:
            raise DatasetError(
                f"{display_path(root / split)!r} has no class folders; put each class's images "
                f"in its own sub-folder, e.g. {split}/cats/*.png and {split}/dogs/*.png")
        class_sets[split] = names
    if class_sets["train"] != class_sets["test"]:
        only_train = sorted(set(class_sets["train"]) - set(class_sets["test"]))
        only_test = sorted(set(class_sets["test"]) - set(class_sets["train"]))
        raise DatasetError(
            f"train/ and test/ of {display_path(root)!r} have different classes (only in train: "
            f"{only_train}, only in test: {only_test}); both splits need the same class folders")
    if len(class_sets["train"]) < 2:
        raise DatasetError(f"{display_path(root)!r} has only one class "
                           f"{class_sets['train']}; a classifier needs at least two")
    return class_sets["train"]


def _scan(root: Path) -> tuple[list[str], list[ImageHeader]]:
    """Validate the layout of ``root`` and read the header of every file in its class folders."""
    classes = _check_layout(root)
    entries = []
    for split in SPLITS:
        for class_name in classes:
            for path in _visible_files(root / split / class_name):
                entries.append(_read_header(split, class_name, path))
        stray = [p for p in (root / split).iterdir() if p.is_file() and not p.name.startswith(".")]
        entries += [ImageHeader(split, "", p, problem="not inside a class folder") for p in stray]
    return classes, entries


def find_images(data_dir: str | os.PathLike) -> DatasetIndex:
    """Validate an ImageFolder-style dataset and list its usable images.

    Layout: ``<data_dir>/train/<class>/...`` and ``<data_dir>/test/<class>/...`` (files may sit
    in sub-folders of a class folder; hidden files are ignored). data_dir: an existing folder
    (``data_spec`` turns None, the built-in dataset, into its folder).

    Decisions (each raises or warns naming the path and the fix):
    - missing folder, no train/ or test/, no class folders, a single class, different class
      sets in train/ and test/, or a class with no usable image in a split: DatasetError;
    - a non-image file, a file not inside a class folder, a corrupt image (its header does not
      decode) or an image smaller than ``MIN_IMAGE_SIZE``: skipped, one DatasetWarning per kind;
    - RGBA, palette, 16-bit and other non-"L" modes: kept, converted on load (DatasetWarning).
    A truncated image whose header is intact is caught when loaded (``load_image``). Only
    headers are read, so this stays fast on tens of thousands of files; they are kept in the
    index's ``headers``.
    """
    root = check_data_dir(data_dir)
    classes, entries = _scan(root)
    files: dict[str, list[tuple[Path, int]]] = {split: [] for split in SPLITS}
    usable, skipped, converted = [], [], []
    for entry in entries:
        if entry.problem:
            skipped.append((entry.path, entry.problem))
            continue
        usable.append(entry)
        files[entry.split].append((entry.path, classes.index(entry.class_name)))
        if entry.mode != "L":
            converted.append((entry.path, entry.mode))
    warn_grouped(root, skipped, "skipped",
                 "Remove or replace them (they are left out of training and testing).", 3)
    warn_grouped(root, [(p, f"mode {m}") for p, m in converted], _ODD_MODES_NOTE,
                 "To silence this, save the images as 8-bit grayscale.", 3)
    for split in SPLITS:  # after the warnings, which say why a class may be empty
        present = {label for _, label in files[split]}
        empty = [classes[i] for i in range(len(classes)) if i not in present]
        if empty:
            raise DatasetError(
                f"class folder(s) {[display_path(root / split / c) for c in empty]} have no "
                "usable images; add images, or remove the class from both train/ and test/")
    return DatasetIndex(root=root, classes=classes, files=files, skipped=skipped,
                        converted=converted, headers=usable)


def choose_subset(items: list[tuple[Path, int]], subset: int | None,
                  seed: int = 0) -> list[tuple[Path, int]]:
    """At most ``subset`` items per class, picked at random (seeded), in their original order.

    subset None keeps everything. Per class, so a quick run keeps the class balance.
    """
    if subset is None:
        return list(items)
    require_int("subset", subset, error=DatasetError)
    rng = np.random.default_rng(seed)
    keep = set()
    for label in sorted({label for _, label in items}):
        positions = [i for i, (_, lab) in enumerate(items) if lab == label]
        chosen = rng.permutation(len(positions))[:subset]
        keep.update(positions[j] for j in chosen)
    return [item for i, item in enumerate(items) if i in keep]


class ImageFolderDataset(torch.utils.data.Dataset):
    """One split of a ``DatasetIndex`` as a PyTorch dataset.

    Item i: (x, label) with x a float32 tensor (in_channels, image_size, image_size) in [0, 1]
    (then ``transform(x)`` if given, e.g. a normalisation) and label an int in
    [0, len(classes)). subset: keep at most this many images per class (seeded by seed).
    Images are decoded on every access; see ``course_utils.part_one.cache`` for a cached version.
    verify: decode every chosen file once now (threads), so that files that do not decode
    (truncated) drop out of ``samples`` and ``targets`` together, with one DatasetWarning naming
    them (listed in ``skipped``); DatasetError if that leaves the split empty or mostly
    unusable. verify=False skips that pass: such a file then raises when accessed.
    """

    def __init__(self, index: DatasetIndex, split: str, image_size: int = 256,
                 in_channels: int = 1, subset: int | None = None, seed: int = 0,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 verify: bool = True) -> None:
        if split not in index.files:
            raise DatasetError(f"split must be one of {sorted(index.files)}, got {split!r}")
        image_size, in_channels = check_image_size(image_size), check_in_channels(in_channels)
        self.root = index.root
        self.split = split
        self.classes = list(index.classes)
        self.image_size = image_size
        self.in_channels = in_channels
        self.transform = transform
        self.samples = choose_subset(index.files[split], subset, seed)
        self.targets = [label for _, label in self.samples]
        self.skipped: list[tuple[Path, str]] = []
        if verify:
            warn_unreadable(self.root, self.drop_unreadable())

    def drop_unreadable(self, workers: int | None = None) -> list[tuple[Path, str]]:
        """Decode every sample once; drop those that fail (samples and targets alike).

        Returns (path, reason) of the dropped files (also added to ``skipped``); warns nothing.
        DatasetError, naming the split folder, if the split is left empty or mostly unusable.
        """
        _, kept, skipped = decode_readable([p for p, _ in self.samples], decode_gray, workers)
        check_split_readable(self.root, self.split, len(self.samples), skipped)
        if skipped:
            self.samples = [self.samples[i] for i in kept]
            self.targets = [label for _, label in self.samples]
            self.skipped += skipped
        return skipped

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[i]
        pixels = load_image(path, self.image_size, self.in_channels)
        x = torch.from_numpy(pixels).float().div_(255.0)
        if self.transform is not None:
            x = self.transform(x)
        return x, label


def load_splits(spec: DataSpec, subset: int | None = None,
                seed: int = 0) -> tuple[ImageFolderDataset, ImageFolderDataset]:
    """(train, test) datasets of ``spec`` (from ``data_spec``).

    subset: at most this many images per class in each split (quick runs). Files that do not
    decode are left out, with one DatasetWarning for both splits (see ImageFolderDataset).
    """
    index = find_images(spec.data_dir)
    datasets = tuple(ImageFolderDataset(index, split, spec.image_size, spec.in_channels, subset,
                                        seed, verify=False) for split in SPLITS)
    warn_unreadable(index.root, [item for ds in datasets for item in ds.drop_unreadable()])
    return datasets


def summary_line(index: DatasetIndex) -> str:
    """'<root>: N train + M test images, K classes' (root relative to the project)."""
    counts = {split: len(items) for split, items in index.files.items()}
    return (f"{display_path(index.root)}: {counts['train']} train + {counts['test']} test "
            f"images, {index.num_classes} classes")

