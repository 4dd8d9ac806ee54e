"""The built-in dataset: a seeded texture generator and its safe install into data/sample/.

The report trains on a private dataset of 6 classes of grayscale images whose resolution it
gives as "800x947", in ``train/`` and ``test/`` folders. We cannot ship it, so
``generate_dataset`` draws a stand-in with that layout, one folder per class, 8-bit grayscale
PNGs 800 wide x 947 high (our reading of "800x947"; the report states neither the order nor the
bit depth): six classes of textures (stripes, checkerboards, blobs, noise) at a random
position, scale, contrast and noise level, so that a CNN learns them clearly above chance in a
few epochs at 64x64 without reaching 100% at once. ``ensure_sample_dataset`` builds it once
(safe when several processes start at the same time).

    python -m course_utils.part_one.dataset_generator [DATA_DIR]   # `make data`
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
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from course_utils.atomic import atomic_write_bytes, atomic_write_json
from course_utils.part_one.data_errors import DatasetError
from course_utils.paths import SAMPLE_DATA_DIR, display_path
from course_utils.validation import require_int

#: The two folders of every dataset: train/<class>/ and test/<class>/.
SPLITS = ("train", "test")

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


def png_bytes(pixels: np.ndarray) -> bytes:
    """(H, W) uint8 -> PNG file bytes (no metadata, so the same pixels give the same bytes)."""
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def image_seed(seed: int, split: str, class_name: str, number: int) -> list[int]:
    """A seed for one image that depends only on (seed, split, class, number).

    So image 3 of 'circles' is the same whether the dataset has 10 or 100 images per class.
    The class enters as its first 8 bytes plus its length: distinct for every built-in class.
    """
    class_code = int.from_bytes(class_name.encode("utf-8")[:8].ljust(8, b"\0"), "little")
    return [seed, SPLITS.index(split), class_code, len(class_name), number]


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
        require_int(name, number, error=DatasetError)
    require_int("width", width, minimum=8, error=DatasetError)
    require_int("height", height, minimum=8, error=DatasetError)
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
                rng = np.random.default_rng(image_seed(seed, split, class_name, number))
                pixels = draw_sample(class_name, rng, width=width, height=height)
                path = root / split / class_name / f"{class_name}_{number:04d}.png"
                atomic_write_bytes(path, png_bytes(pixels))
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


def main(argv: Sequence[str] | None = None) -> None:
    """CLI: ensure the built-in dataset (or check another) and print one summary line."""
    from course_utils.part_one.data_spec import data_spec  # they import this module
    from course_utils.part_one.dataset import find_images, summary_line

    parser = argparse.ArgumentParser(prog="python -m course_utils.part_one.dataset_generator",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", nargs="?", default=None,
                        help="dataset to check (default: build/check the built-in dataset)")
    args = parser.parse_args(argv)
    try:
        print(summary_line(find_images(data_spec(args.data_dir).data_dir)))
    except DatasetError as error:
        parser.exit(2, f"error: {error}\n")


if __name__ == "__main__":
    main()
