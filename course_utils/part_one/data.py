"""The built-in dataset, loading ImageFolder-style datasets, and inspecting them.

The report trains on a private dataset of 6 classes of grayscale images whose resolution it
gives as "800x947", in ``train/`` and ``test/`` folders. We cannot ship it, so
``generate_dataset`` draws a stand-in with that layout, one folder per class, 8-bit grayscale
PNGs 800 wide x 947 high (our reading of "800x947"; the report states neither the order nor the
bit depth): six classes of
textures (stripes, checkerboards, blobs, noise) at a random position, scale, contrast and noise
level, so that a CNN learns them clearly above chance in a few epochs at 64x64 without
reaching 100% at once.

Any dataset with the same layout loads the same way:

    index = find_images("data/my_scans")          # validates the layout, skips bad files
    train_ds, test_ds = load_splits("data/my_scans", image_size=64, in_channels=3)
    x, label = train_ds[0]                          # x: (3, 64, 64) float in [0, 1]

Bad input is decided file by file (see ``find_images``): a broken layout raises
``DatasetError``; a single bad file is skipped with a ``DatasetWarning`` naming it; odd image
modes (RGBA, palette, 16-bit) are converted to 8-bit grayscale. A file whose header reads but
whose pixels do not decode (truncated) is skipped the same way by whatever decodes it
(``load_split_pixels``, ``ImageFolderDataset``, the cache): one warning names every such file;
only a split left empty or mostly unreadable (``MAX_UNREADABLE_SHARE``) raises.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
import torch
from PIL import Image, UnidentifiedImageError

from course_utils.atomic import atomic_write_bytes, atomic_write_json
from course_utils.part_one.model import MIN_IMAGE_SIZE
from course_utils.paths import SAMPLE_DATA_DIR, display_path

SPLITS = ("train", "test")
#: File endings treated as images; anything else in a class folder is skipped with a warning.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp",
                    ".pgm", ".ppm")

#: The built-in dataset's classes (folder names), one texture each.
SAMPLE_CLASSES = ("checkerboard", "circles", "diagonal_lines", "horizontal_stripes",
                  "noise_texture", "vertical_stripes")
#: Default size of the built-in dataset: 50 train + 15 test images per class (390 in all).
#: Small enough to build in seconds and to train one epoch at 64x64 quickly on 2 CPU cores.
SAMPLE_TRAIN_PER_CLASS = 50
SAMPLE_TEST_PER_CLASS = 15
#: Bump when the generator changes: a built-in dataset made by another version is rebuilt.
GENERATOR_VERSION = 2
#: Written last into a finished built-in dataset (hidden, so scans ignore it).
COMPLETE_MARKER = ".complete.json"
#: Images are drawn at 1/4 resolution (200x237), then enlarged 4x with nearest-neighbour (each
#: drawn pixel becomes a 4x4 block): PNGs of ~70 KB instead of ~300 KB, written 3x faster. The
#: blocks vanish in the resize to 256x256 or 64x64 that the CNN sees.
_DRAW_FACTOR = 4


class DatasetError(ValueError):
    """The dataset (or a loading parameter) cannot be used; the message says how to fix it."""


class DatasetWarning(UserWarning):
    """Something in the dataset was skipped or converted; the message names the files."""


class UnreadableImageError(DatasetError):
    """An image file that exists but does not decode (corrupt, truncated, unsupported).

    path: the file; reason: why, without the path (for grouped warnings).
    """

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path, self.reason = Path(path), reason
        super().__init__(f"cannot load {display_path(path)}: {reason}; remove or re-export it "
                         "(find_images skips corrupt headers; loaders skip truncated files)")


# ---------------------------------------------------------------------------------------------
# The built-in dataset: a seeded generator
# ---------------------------------------------------------------------------------------------

def _grid(height: int, width: int, angle_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates (each (height, width)) in units of the image height, rotated by angle_deg.

    Returns (u, v): u runs along the rotated horizontal axis, v along the rotated vertical axis.
    Using the height as the unit keeps patterns the same at any resolution.
    """
    y, x = np.mgrid[0:height, 0:width].astype(np.float32) / np.float32(height)
    theta = math.radians(angle_deg)
    u = x * math.cos(theta) + y * math.sin(theta)
    v = -x * math.sin(theta) + y * math.cos(theta)
    return u, v


def _stripes(rng: np.random.Generator, height: int, width: int, angle_deg: float) -> np.ndarray:
    """Sine stripes that run along ``angle_deg`` (0 = horizontal stripes); values in [-1, 1]."""
    # Period 9-20% of the height: at least ~6 pixels per period after a resize to 64x64.
    period = rng.uniform(0.09, 0.20)
    _, v = _grid(height, width, angle_deg + rng.uniform(-10, 10))
    return np.sin(2 * np.pi * v / period + rng.uniform(0, 2 * np.pi))


def _checkerboard(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A softened checkerboard at a small random rotation; values in [-1, 1]."""
    period = rng.uniform(0.12, 0.25)
    u, v = _grid(height, width, rng.uniform(-15, 15))
    phase_u, phase_v = rng.uniform(0, 2 * np.pi, size=2)
    product = np.sin(2 * np.pi * u / period + phase_u) * np.sin(2 * np.pi * v / period + phase_v)
    return np.tanh(4 * product)  # squarish cells with soft edges


def _circles(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A few bright and dark disks of random size and place; values in [-1, 1]."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32) / np.float32(height)
    out = np.zeros((height, width), dtype=np.float32)
    for _ in range(rng.integers(3, 8)):
        cy, cx = rng.uniform(0, 1), rng.uniform(0, width / height)
        radius = rng.uniform(0.04, 0.12)
        distance = np.sqrt((y - cy) ** 2 + (x - cx) ** 2)
        disk = 1 / (1 + np.exp(np.clip((distance - radius) / 0.01, -50, 50)))  # soft-edged disk
        out += rng.choice([-1.0, 1.0]) * disk
    return np.clip(out, -1, 1)


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cell: float) -> np.ndarray:
    """Gaussian noise on a coarse grid (cell = grid spacing in image heights), resized up.

    Returns (height, width) values with zero mean and unit standard deviation (roughly).
    """
    rows = max(2, round(1 / cell))
    cols = max(2, round(width / height / cell))
    coarse = rng.standard_normal((rows, cols)).astype(np.float32)
    image = Image.fromarray(coarse, mode="F").resize((width, height), Image.Resampling.BICUBIC)
    fine = np.asarray(image, dtype=np.float32)
    return fine / max(float(fine.std()), 1e-6)


def _noise_texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Blotchy random texture (blobs ~4-8% of the height) with no orientation; in [-1, 1]."""
    return np.clip(_smooth_noise(rng, height, width, rng.uniform(0.04, 0.08)) / 2, -1, 1)


def _pattern(name: str, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """The texture of class ``name`` as a (height, width) float array in [-1, 1]."""
    if name == "horizontal_stripes":
        return _stripes(rng, height, width, 0.0)
    if name == "vertical_stripes":
        return _stripes(rng, height, width, 90.0)
    if name == "diagonal_lines":
        return _stripes(rng, height, width, rng.choice([45.0, 135.0]))
    if name == "checkerboard":
        return _checkerboard(rng, height, width)
    if name == "circles":
        return _circles(rng, height, width)
    if name == "noise_texture":
        return _noise_texture(rng, height, width)
    raise DatasetError(f"unknown built-in class {name!r}; choose from {list(SAMPLE_CLASSES)}")


def _window(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A soft-edged ellipse at a random place and size: where the texture shows; in [0, 1]."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32) / np.float32(height)
    aspect = width / height
    cy, cx = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7) * aspect
    ry, rx = rng.uniform(0.25, 0.6), rng.uniform(0.25, 0.6) * aspect
    distance = np.sqrt(((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2)
    return 1 / (1 + np.exp((distance - 1) / 0.08))


def draw_sample(name: str, rng: np.random.Generator, width: int = 800,
                height: int = 947) -> np.ndarray:
    """One image of built-in class ``name``: (height, width) uint8 grayscale.

    Background: a smooth random shading plus noise. The class texture shows inside a random
    soft ellipse, with random contrast; noise of random strength lies over everything.
    """
    draw_h = max(8, math.ceil(height / _DRAW_FACTOR))
    draw_w = max(8, math.ceil(width / _DRAW_FACTOR))
    background = rng.uniform(0.3, 0.7) + 0.08 * _smooth_noise(rng, draw_h, draw_w, 0.5)
    contrast = rng.uniform(0.08, 0.3)
    texture = contrast * _pattern(name, rng, draw_h, draw_w) * _window(rng, draw_h, draw_w)
    noise = rng.uniform(0.02, 0.12) * rng.standard_normal((draw_h, draw_w))
    image = np.clip(background + texture + noise, 0, 1)
    small = Image.fromarray(np.round(image * 255).astype(np.uint8), mode="L")
    return np.asarray(small.resize((width, height), Image.Resampling.NEAREST))


def _png_bytes(pixels: np.ndarray) -> bytes:
    """(H, W) uint8 -> PNG file bytes (no metadata, so the same pixels give the same bytes)."""
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _image_seed(seed: int, split: str, class_name: str, number: int) -> list[int]:
    """A seed for one image that depends only on (seed, split, class, number).

    So image 3 of 'circles' is the same whether the dataset has 10 or 100 images per class.
    The class enters as its first 8 bytes plus its length: distinct for every built-in class.
    """
    class_code = int.from_bytes(class_name.encode("utf-8")[:8].ljust(8, b"\0"), "little")
    return [seed, SPLITS.index(split), class_code, len(class_name), number]


def _check_positive_int(name: str, value: int, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise DatasetError(f"{name} must be an integer >= {minimum}, got {value!r}")


def generate_dataset(root: str | os.PathLike, train_per_class: int = SAMPLE_TRAIN_PER_CLASS,
                     test_per_class: int = SAMPLE_TEST_PER_CLASS, seed: int = 0,
                     width: int = 800, height: int = 947,
                     classes: Sequence[str] | None = None) -> Path:
    """Write the built-in dataset to ``root/{train,test}/<class>/<class>_NNNN.png``.

    Images are 8-bit grayscale (mode "L"), width x height (the report's 800x947 by default).
    classes: a subset of ``SAMPLE_CLASSES`` (default all six). The same arguments always give
    the same bytes. Files are written atomically; existing files of the same name are replaced.
    Returns ``root`` as a Path.
    """
    for name, number in (("train_per_class", train_per_class),
                         ("test_per_class", test_per_class)):
        _check_positive_int(name, number)
    _check_positive_int("width", width, minimum=8)
    _check_positive_int("height", height, minimum=8)
    class_names = list(SAMPLE_CLASSES if classes is None else classes)
    unknown = sorted(set(class_names) - set(SAMPLE_CLASSES))
    if unknown or len(class_names) < 2 or len(set(class_names)) != len(class_names):
        raise DatasetError(f"classes must be at least two distinct names from "
                           f"{list(SAMPLE_CLASSES)}, got {list(class_names)}")
    root = Path(root)
    counts = {"train": train_per_class, "test": test_per_class}
    for split in SPLITS:
        for class_name in class_names:
            for number in range(counts[split]):
                rng = np.random.default_rng(_image_seed(seed, split, class_name, number))
                pixels = draw_sample(class_name, rng, width=width, height=height)
                path = root / split / class_name / f"{class_name}_{number:04d}.png"
                atomic_write_bytes(path, _png_bytes(pixels))
    return root


def _sample_settings() -> dict:
    """What the built-in dataset is built with (stored in its completion marker)."""
    return {"generator_version": GENERATOR_VERSION, "train_per_class": SAMPLE_TRAIN_PER_CLASS,
            "test_per_class": SAMPLE_TEST_PER_CLASS, "seed": 0, "width": 800, "height": 947,
            "classes": list(SAMPLE_CLASSES)}


def _is_complete(root: Path, settings: dict) -> bool:
    """True when ``root`` holds a finished build made with ``settings``."""
    try:
        stored = json.loads((root / COMPLETE_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if stored != settings:
        return False
    counts = {"train": settings["train_per_class"], "test": settings["test_per_class"]}
    for split, expected in counts.items():
        for class_name in settings["classes"]:
            folder = root / split / class_name
            if not folder.is_dir() or len(list(folder.glob("*.png"))) != expected:
                return False
    return True


#: A temporary build folder untouched for this long was left by a killed process.
_ABANDONED_AFTER_S = 3600


def _remove_abandoned_builds(root: Path) -> None:
    """Delete temporary build folders of ``root`` that a killed build left behind.

    Only old ones: a recent folder may belong to a build running right now in another process.
    """
    for folder in root.parent.glob(f".{root.name}.building-*"):
        try:
            if time.time() - folder.stat().st_mtime > _ABANDONED_AFTER_S:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:  # removed meanwhile by its own process
            pass


def _install(building: Path, root: Path, settings: dict, attempts: int = 5) -> None:
    """Rename the finished build ``building`` to ``root``, replacing a stale ``root``.

    Another process may be building at the same time: if its dataset lands first, ours is
    simply dropped (the caller deletes ``building``).
    """
    for _ in range(attempts):
        if _is_complete(root, settings):
            return
        try:
            if root.exists():  # stale or broken: move it aside first (rename is atomic)
                stale = root.parent / f".{root.name}.stale-{os.getpid()}-{time.time_ns()}"
                os.replace(root, stale)
                shutil.rmtree(stale, ignore_errors=True)
            os.replace(building, root)
            return
        except OSError:  # another process renamed something meanwhile: look again
            time.sleep(0.2)
    if not _is_complete(root, settings):
        raise DatasetError(f"could not put the built-in dataset in place at "
                           f"{display_path(root)}; delete that folder and run `make data`")


def ensure_sample_dataset(root: str | os.PathLike = SAMPLE_DATA_DIR) -> Path:
    """Build the built-in dataset into ``root`` if it is missing or incomplete; return root.

    Silent (notebook outputs must not differ between the first run and later ones). The build
    goes into a temporary folder beside ``root`` that is renamed into place when finished, so
    an interrupted build is never mistaken for a complete one; a completion marker records the
    generator version and sizes, and a stale dataset is rebuilt.
    """
    root = Path(root)
    settings = _sample_settings()
    if _is_complete(root, settings):
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_builds(root)
    building = Path(tempfile.mkdtemp(prefix=f".{root.name}.building-", dir=root.parent))
    try:
        generate_dataset(building, train_per_class=settings["train_per_class"],
                         test_per_class=settings["test_per_class"], seed=settings["seed"],
                         width=settings["width"], height=settings["height"],
                         classes=settings["classes"])
        atomic_write_json(building / COMPLETE_MARKER, settings)
        _install(building, root, settings)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return root


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path:
    """The dataset folder to use: None -> the built-in dataset (built if missing).

    A given folder must exist (DatasetError otherwise).
    """
    if data_dir is None:
        return ensure_sample_dataset()
    path = Path(data_dir).expanduser()
    if not path.is_dir():
        what = "is not a folder" if path.exists() else "does not exist"
        raise DatasetError(
            f"data_dir {display_path(path)!r} {what}; pass a folder holding train/<class>/ and "
            "test/<class>/ image folders, or data_dir=None for the built-in dataset")
    return path


# ---------------------------------------------------------------------------------------------
# Finding images: validate the layout, skip bad files
# ---------------------------------------------------------------------------------------------

@dataclass
class DatasetIndex:
    """Every usable image of a dataset, by split.

    root: the dataset folder; classes: sorted class names (label i = classes[i]);
    files: split -> sorted list of (path, label); skipped: (path, reason) for each file left out;
    converted: (path, mode) for each image whose mode is converted to 8-bit grayscale on load.
    """

    root: Path
    classes: list[str]
    files: dict[str, list[tuple[Path, int]]]
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    converted: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def counts(self) -> pd.DataFrame:
        """Images per class (rows) and split (columns)."""
        table = {split: [sum(1 for _, label in items if label == i)
                         for i in range(len(self.classes))]
                 for split, items in self.files.items()}
        return pd.DataFrame(table, index=pd.Index(self.classes, name="class"))


@dataclass(frozen=True)
class _Entry:
    """One file found in a class folder, with what its header says (or why it is unusable)."""

    split: str
    class_name: str
    path: Path
    width: int = 0
    height: int = 0
    mode: str = ""
    problem: str = ""


#: Modes that load_image converts to 8-bit grayscale (reported once per dataset).
_ODD_MODES_NOTE = ("converted to 8-bit grayscale on load (alpha composited onto black, "
                   "16-bit scaled by 1/257)")


def _describe(error: Exception) -> str:
    """Pillow's reason for failing, without the absolute path it sometimes repeats."""
    if isinstance(error, UnidentifiedImageError):
        return "Pillow does not recognise the file's format"
    return str(error) or type(error).__name__


def _read_header(split: str, class_name: str, path: Path) -> _Entry:
    """Open only the image header: size and mode, or the problem that makes it unusable."""
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        return _Entry(split, class_name, path,
                      problem=f"not an image file (extension {path.suffix or 'none'!r})")
    try:
        with Image.open(path) as image:
            width, height = image.size
            mode = image.mode
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        return _Entry(split, class_name, path,
                      problem=f"corrupt or unreadable image ({_describe(error)})")
    if min(width, height) < MIN_IMAGE_SIZE:
        return _Entry(split, class_name, path, width, height, mode,
                      problem=f"{width}x{height} is smaller than the model accepts "
                              f"({MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE})")
    return _Entry(split, class_name, path, width, height, mode)


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


def _scan(root: Path) -> tuple[list[str], list[_Entry]]:
    """Validate the layout of ``root`` and read the header of every file in its class folders."""
    root = resolve_data_dir(root)
    classes = _check_layout(root)
    entries = []
    for split in SPLITS:
        for class_name in classes:
            for path in _visible_files(root / split / class_name):
                entries.append(_read_header(split, class_name, path))
        stray = [p for p in (root / split).iterdir() if p.is_file() and not p.name.startswith(".")]
        entries += [_Entry(split, "", p, problem="not inside a class folder") for p in stray]
    return classes, entries


def _warn_grouped(root: Path, items: list[tuple[Path, str]], what: str, fix: str,
                  stacklevel: int = 4) -> None:
    """One warning for a group of files: how many, the first few, and what to do.

    stacklevel: frames up to the caller's code (so the warning points at the user's line).
    """
    if not items:
        return
    shown = "; ".join(f"{display_path(p)}: {reason}" for p, reason in items[:5])
    more = f" (and {len(items) - 5} more)" if len(items) > 5 else ""
    warnings.warn(f"{display_path(root)}: {len(items)} file(s) {what}: {shown}{more}. {fix}",
                  DatasetWarning, stacklevel=stacklevel)


def _index_entries(data_dir: str | os.PathLike | None) -> tuple[DatasetIndex, list[_Entry]]:
    """find_images, also returning the header entries of the usable images."""
    root = resolve_data_dir(data_dir)
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
    _warn_grouped(root, skipped, "skipped",
                  "Remove or replace them (they are left out of training and testing).")
    _warn_grouped(root, [(p, f"mode {m}") for p, m in converted], _ODD_MODES_NOTE,
                  "To silence this, save the images as 8-bit grayscale.")
    for split in SPLITS:  # after the warnings, which say why a class may be empty
        present = {label for _, label in files[split]}
        empty = [classes[i] for i in range(len(classes)) if i not in present]
        if empty:
            raise DatasetError(
                f"class folder(s) {[display_path(root / split / c) for c in empty]} have no "
                "usable images; add images, or remove the class from both train/ and test/")
    index = DatasetIndex(root=root, classes=classes, files=files, skipped=skipped,
                         converted=converted)
    return index, usable


def find_images(data_dir: str | os.PathLike | None) -> DatasetIndex:
    """Validate an ImageFolder-style dataset and list its usable images.

    Layout: ``<data_dir>/train/<class>/...`` and ``<data_dir>/test/<class>/...`` (files may sit
    in sub-folders of a class folder; hidden files are ignored). data_dir None = built-in dataset.

    Decisions (each raises or warns naming the path and the fix):
    - missing folder, no train/ or test/, no class folders, a single class, different class
      sets in train/ and test/, or a class with no usable image in a split: DatasetError;
    - a non-image file, a file not inside a class folder, a corrupt image (its header does not
      decode) or an image smaller than ``MIN_IMAGE_SIZE``: skipped, one DatasetWarning per kind;
    - RGBA, palette, 16-bit and other non-"L" modes: kept, converted on load (DatasetWarning).
    A truncated image whose header is intact is caught when loaded (``load_image``) or by
    ``verify_images``. Only headers are read, so this stays fast on tens of thousands of files.
    """
    return _index_entries(data_dir)[0]


def verify_images(index: DatasetIndex) -> DatasetIndex:
    """Decode every image fully; return a copy of ``index`` without the ones that fail.

    Catches truncated files that ``find_images`` (headers only) cannot see; warns naming them.
    Slow on big datasets (it decodes everything), so it is not done by default.
    """
    files: dict[str, list[tuple[Path, int]]] = {}
    broken = []
    for split, items in index.files.items():
        files[split] = []
        for path, label in items:
            try:
                decode_gray(path)
            except DatasetError as error:
                broken.append((path, str(error).split(": ", 1)[-1]))
                continue
            files[split].append((path, label))
    _warn_grouped(index.root, broken, "skipped (could not be decoded)",
                  "Remove or re-export them.", stacklevel=3)
    return DatasetIndex(root=index.root, classes=list(index.classes), files=files,
                        skipped=index.skipped + broken, converted=list(index.converted))


# ---------------------------------------------------------------------------------------------
# Loading one image
# ---------------------------------------------------------------------------------------------

def _to_gray(image: Image.Image) -> Image.Image:
    """Any PIL image -> 8-bit grayscale ("L").

    Alpha (RGBA, LA, palette with transparency) is composited onto black: transparent pixels
    become background. 16-bit and 32-bit integer images are scaled by 1/257 (65535 -> 255).
    """
    if image.mode == "L":
        return image
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32)
        gray = np.asarray(Image.fromarray(rgba[..., :3].round().astype(np.uint8), "RGB")
                          .convert("L"), dtype=np.float32)
        return Image.fromarray(np.round(gray * rgba[..., 3] / 255).astype(np.uint8), mode="L")
    if image.mode.startswith("I"):  # I;16, I;16B, I;16L, I (PNG 16-bit)
        values = np.asarray(image, dtype=np.float64)
        return Image.fromarray(np.round(np.clip(values, 0, 65535) / 257).astype(np.uint8), "L")
    if image.mode == "F":
        raise DatasetError(f"floating-point images (mode F) are not supported: {image.mode}; "
                           "save them as 8- or 16-bit PNG")
    return image.convert("L")  # RGB, CMYK, YCbCr, 1 (bilevel)...


def decode_gray(path: str | os.PathLike) -> Image.Image:
    """Decode ``path`` fully into an 8-bit grayscale PIL image.

    Raises UnreadableImageError (a DatasetError) for a corrupt, truncated or unsupported image,
    DatasetError for a missing file.
    """
    try:
        with Image.open(path) as image:
            image.load()  # decode now: a truncated file fails here, inside our try
            return _to_gray(image)
    except FileNotFoundError:
        raise DatasetError(f"image {display_path(path)} does not exist; check the path") from None
    except DatasetError as error:
        raise UnreadableImageError(path, str(error)) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise UnreadableImageError(
            path, f"corrupt or truncated image ({_describe(error)})") from None


# ---------------------------------------------------------------------------------------------
# Decoding many files: unreadable ones are skipped, a mostly unreadable split is an error
# ---------------------------------------------------------------------------------------------

#: A split with more than this share of its (chosen) files unreadable is an error, not a skip:
#: it usually means a broken copy, and training on the rest would mislead.
MAX_UNREADABLE_SHARE = 0.5

_T = TypeVar("_T")


def _attempt(decode: Callable[[Path], _T], path: str | os.PathLike
             ) -> tuple[_T | None, UnreadableImageError | None]:
    try:
        return decode(Path(path)), None
    except UnreadableImageError as error:
        return None, error


def decode_readable(paths: Sequence[str | os.PathLike], decode: Callable[[Path], _T],
                    workers: int | None = 1
                    ) -> tuple[list[_T], list[int], list[tuple[Path, str]]]:
    """``decode(path)`` for each path, leaving out the files that do not decode.

    Returns (results of the readable files, their positions in ``paths``, (path, reason) of
    each unreadable file), all in the order of ``paths``. Only UnreadableImageError is caught
    (a missing file still raises). workers: threads (None: one per core); Pillow releases the
    GIL while decoding.
    """
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(paths) < 2:
        outcomes = [_attempt(decode, p) for p in paths]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            outcomes = list(pool.map(lambda p: _attempt(decode, p), paths))
    results, kept, skipped = [], [], []
    for position, (result, error) in enumerate(outcomes):
        if error is None:
            results.append(result)
            kept.append(position)
        else:
            skipped.append((error.path, error.reason))
    return results, kept, skipped


def check_split_readable(root: str | os.PathLike, split: str, total: int,
                         skipped: Sequence[tuple[Path, str]]) -> None:
    """DatasetError naming ``root/split`` if its ``total`` files are all or mostly unreadable.

    skipped: (path, reason) of the files of that split that did not decode.
    """
    if not skipped or len(skipped) <= MAX_UNREADABLE_SHARE * total and len(skipped) < total:
        return
    shown = "; ".join(f"{display_path(p)}: {reason}" for p, reason in skipped[:3])
    more = f" (and {len(skipped) - 3} more)" if len(skipped) > 3 else ""
    left = "no image is left" if len(skipped) >= total else "most of its images are unusable"
    raise DatasetError(
        f"{display_path(Path(root) / split)}: {len(skipped)} of {total} images cannot be "
        f"decoded, so {left} ({shown}{more}). This usually means a broken copy: copy or export "
        "the images again (or remove the broken files), then run again")


def warn_unreadable(root: str | os.PathLike, skipped: Sequence[tuple[Path, str]],
                    stacklevel: int = 2) -> None:
    """One DatasetWarning naming the files that were skipped because they do not decode.

    stacklevel: as for warnings.warn, counted from the caller of this function.
    """
    _warn_grouped(Path(root), list(skipped), "skipped (they do not decode)",
                  "Remove or re-export them (they are left out of training, testing and "
                  "statistics).", stacklevel=stacklevel + 2)


def _check_load_params(image_size: int, in_channels: int) -> None:
    if isinstance(image_size, bool) or not isinstance(image_size, int | np.integer):
        raise DatasetError(f"image_size must be an integer, got {image_size!r}")
    if image_size < MIN_IMAGE_SIZE:
        raise DatasetError(f"image_size={image_size} is smaller than the model accepts "
                           f"({MIN_IMAGE_SIZE}); use image_size >= {MIN_IMAGE_SIZE} "
                           "(64 for quick CPU runs, 256 as in the report)")
    if in_channels not in (1, 3):
        raise DatasetError(f"in_channels must be 1 (grayscale) or 3 (grayscale replicated "
                           f"into RGB, the report's question 1), got {in_channels!r}")


def resize_gray(image: Image.Image, image_size: int) -> Image.Image:
    """Resize a grayscale image to image_size x image_size (bilinear, antialiased).

    Pillow's bilinear filter widens with the shrink factor, so downscaling 800x947 to 64x64
    averages each block instead of sampling single pixels (no aliasing). The aspect ratio is
    not kept: the report resizes 800x947 to 256x256.
    """
    return image.resize((image_size, image_size), Image.Resampling.BILINEAR)


def replicate_channels(gray: np.ndarray, in_channels: int) -> np.ndarray:
    """(H, W) -> (in_channels, H, W): the same grayscale plane copied into every channel."""
    return np.repeat(gray[np.newaxis], in_channels, axis=0)


def load_image(path: str | os.PathLike, image_size: int = 256, in_channels: int = 1) -> np.ndarray:
    """Decode, convert to 8-bit grayscale, resize, replicate channels.

    Returns uint8 (in_channels, image_size, image_size). Raises DatasetError (naming the file)
    for a missing file or bad image_size / in_channels, UnreadableImageError (a DatasetError)
    for a corrupt or truncated image: loaders of many files catch that one and skip the file.
    """
    _check_load_params(image_size, in_channels)
    gray = np.asarray(resize_gray(decode_gray(path), image_size), dtype=np.uint8)
    # Pillow's array can be a read-only view of the image's buffer; copy it so callers
    # (torch.from_numpy in ImageFolderDataset) get a writable array and no UserWarning.
    return np.array(replicate_channels(gray, in_channels), copy=True)


# ---------------------------------------------------------------------------------------------
# PyTorch datasets
# ---------------------------------------------------------------------------------------------

def choose_subset(items: list[tuple[Path, int]], subset: int | None,
                  seed: int = 0) -> list[tuple[Path, int]]:
    """At most ``subset`` items per class, picked at random (seeded), in their original order.

    subset None keeps everything. Per class, so a quick run keeps the class balance.
    """
    if subset is None:
        return list(items)
    _check_positive_int("subset", subset)
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
    Images are decoded on every access; see ``course_utils.part_one.train`` for a cached version.
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
        _check_load_params(image_size, in_channels)
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


def load_splits(data_dir: str | os.PathLike | None = None, image_size: int = 256,
                in_channels: int = 1, subset: int | None = None,
                seed: int = 0) -> tuple[ImageFolderDataset, ImageFolderDataset]:
    """(train, test) datasets of ``data_dir`` (None = built-in, built if missing).

    subset: at most this many images per class in each split (quick runs). Files that do not
    decode are left out, with one DatasetWarning for both splits (see ImageFolderDataset).
    """
    index = find_images(data_dir)
    datasets = tuple(ImageFolderDataset(index, split, image_size, in_channels, subset, seed,
                                        verify=False) for split in SPLITS)
    warn_unreadable(index.root, [item for ds in datasets for item in ds.drop_unreadable()])
    return datasets


# ---------------------------------------------------------------------------------------------
# Inspection
# ---------------------------------------------------------------------------------------------

def inspect_dataset(data_dir: str | os.PathLike | None) -> pd.DataFrame:
    """One row per usable image: split, class, file (relative to the dataset), width, height, mode.

    Reads image headers only (fast on tens of thousands of files). Skips and warns about the
    same files as ``find_images``.
    """
    index, entries = _index_entries(data_dir)
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
    _check_positive_int("per_class", per_class)
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
    _check_load_params(image_size, 1)
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


def replication_equivalence_error(conv: torch.nn.Conv2d, gray: torch.Tensor) -> float:
    """Max |difference| between a 3-channel conv on replicated input and a 1-channel conv.

    gray: (N, 1, H, W). On a replicated image the three input channels are equal, so
    sum_c W[:, c] * x = (sum_c W[:, c]) * x: the 3-channel layer computes exactly what a
    1-channel layer with the summed weights computes. A result near float precision (~1e-6)
    shows the extra weights add no expressive power on grayscale data.
    """
    if conv.in_channels != 3:
        raise ValueError(f"conv must take 3 input channels, got {conv.in_channels}")
    with torch.no_grad():
        three = conv(gray.expand(-1, 3, -1, -1))
        summed = conv.weight.sum(dim=1, keepdim=True)
        one = torch.nn.functional.conv2d(gray, summed, conv.bias, conv.stride, conv.padding)
    return float((three - one).abs().max())


# ---- figures for notebook 01 ----------------------------------------------------------------


def summary_line(index: DatasetIndex) -> str:
    """'<root>: N train + M test images, K classes' (root relative to the project)."""
    counts = {split: len(items) for split, items in index.files.items()}
    return (f"{display_path(index.root)}: {counts['train']} train + {counts['test']} test "
            f"images, {index.num_classes} classes")


def main(argv: Sequence[str] | None = None) -> None:
    """CLI: ensure the built-in dataset (or check another) and print one summary line."""
    parser = argparse.ArgumentParser(prog="python -m course_utils.part_one.data",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", nargs="?", default=None,
                        help="dataset to check (default: build/check the built-in dataset)")
    args = parser.parse_args(argv)
    try:
        print(summary_line(find_images(args.data_dir)))
    except DatasetError as error:
        parser.exit(2, f"error: {error}\n")


if __name__ == "__main__":
    main()
