"""Two made-up datasets unlike the built-in one, for the notebooks' other-dataset tests.

- ``digits_dataset``: 10 classes of digit-like glyphs ("0" to "9", Pillow's own font) drawn
  at a random place, size and stroke on a noisy dark background, 800 wide x 947 high, 8-bit
  grayscale: another class count, chance 1/10, ln(10).
- ``mixed_rgb_dataset``: 4 RGB classes of mixed sizes (every image its own size), one class
  dark and flat (brightness alone gives it away), with the files a real copy holds: a
  truncated PNG (header intact), a stray non-image file, an RGBA PNG and a 16-bit PNG.

Each returns a ``MadeUp`` saying what it holds, so a test compares a notebook's printed
sentences with the truth, not with the notebook's own numbers only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont


@dataclass
class MadeUp:
    """What a made-up dataset holds.

    root: its folder; classes: sorted class names; train / test: usable images per class
    (class -> count); skipped: file names (not paths) that must be left out, with the reason
    kind ("not an image", "does not decode"); sizes: (width, height) of every usable image.
    """

    root: Path
    classes: list[str]
    train: dict[str, int]
    test: dict[str, int]
    skipped: dict[str, str] = field(default_factory=dict)
    sizes: list[tuple[int, int]] = field(default_factory=list)


def _digit(rng: np.random.Generator, digit: int, width: int, height: int) -> Image.Image:
    """One glyph ``digit`` drawn big at a random place on a dark, noisy 8-bit image."""
    background = rng.normal(30, 8, size=(height, width)).clip(0, 255).astype(np.uint8)
    image = Image.fromarray(background, "L")
    font = ImageFont.load_default(size=int(rng.uniform(0.45, 0.7) * height))
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = draw.textbbox((0, 0), str(digit), font=font,
                                             stroke_width=int(rng.integers(4, 14)))
    x = rng.uniform(0, max(1.0, width - (right - left))) - left
    y = rng.uniform(0, max(1.0, height - (bottom - top))) - top
    draw.text((x, y), str(digit), fill=int(rng.integers(170, 255)), font=font,
              stroke_width=int(rng.integers(4, 14)), stroke_fill=int(rng.integers(150, 255)))
    return image


def digits_dataset(root: Path, train_per_class: int = 3, test_per_class: int = 2,
                   seed: int = 0, width: int = 800, height: int = 947) -> MadeUp:
    """10 classes "digit_0" ... "digit_9" of glyphs at ``width`` x ``height``, mode L."""
    rng = np.random.default_rng(seed)
    classes = [f"digit_{d}" for d in range(10)]
    for split, count in (("train", train_per_class), ("test", test_per_class)):
        for d, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                _digit(rng, d, width, height).save(folder / f"{name}_{i:03d}.png")
    sizes = [(width, height)] * (10 * (train_per_class + test_per_class))
    return MadeUp(root, classes, dict.fromkeys(classes, train_per_class),
                  dict.fromkeys(classes, test_per_class), sizes=sizes)


#: The mixed dataset's classes: how each draws an RGB image (h, w) from a generator.
def _dark_flat(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    return rng.normal(18, 4, size=(h, w, 3))


def _red_bars(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    bars = (np.arange(w) // int(rng.integers(6, 20))) % 2 * 255.0
    image = np.zeros((h, w, 3)) + rng.normal(0, 20, size=(h, w, 1))
    image[..., 0] += bars[None, :]
    image[..., 1:] += 60
    return image


def _green_dots(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    period = int(rng.integers(10, 24))
    dots = (((yy % period) - period / 2) ** 2 + ((xx % period) - period / 2) ** 2
            < (period / 3) ** 2) * 255.0
    image = np.zeros((h, w, 3)) + 40 + rng.normal(0, 20, size=(h, w, 1))
    image[..., 1] += dots
    image[..., 0] += dots / 2
    return image


def _blue_waves(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    waves = 127.5 * (1 + np.sin(xx / rng.uniform(3, 8) + 4 * np.sin(yy / rng.uniform(10, 30))))
    image = np.zeros((h, w, 3)) + rng.normal(0, 20, size=(h, w, 1)) + 50
    image[..., 2] += waves
    image[..., 0] += waves / 3
    return image


MIXED_CLASSES = {"blue_waves": _blue_waves, "dark_flat": _dark_flat,
                 "green_dots": _green_dots, "red_bars": _red_bars}


def mixed_rgb_dataset(root: Path, train_per_class: int = 5, test_per_class: int = 3,
                      seed: int = 1) -> MadeUp:
    """4 RGB classes, each image its own size (64-400 wide, 64-400 high), plus: a truncated
    PNG and a stray "notes.txt" in train/, an RGBA PNG in train/ and a 16-bit grayscale PNG
    in test/ (both usable, converted on load)."""
    rng = np.random.default_rng(seed)
    classes = sorted(MIXED_CLASSES)
    made = MadeUp(root, classes, dict.fromkeys(classes, train_per_class),
                  dict.fromkeys(classes, test_per_class))
    used: set[tuple[int, int]] = set()
    for split, count in (("train", train_per_class), ("test", test_per_class)):
        for name in classes:
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                while (size := (int(rng.integers(64, 400)), int(rng.integers(64, 400)))) in used:
                    pass  # every image its own size
                used.add(size)
                pixels = MIXED_CLASSES[name](rng, size[1], size[0]).clip(0, 255).astype(np.uint8)
                Image.fromarray(pixels, "RGB").save(folder / f"{name}_{i:03d}.png")
                made.sizes.append(size)
    # An RGBA image (usable: alpha composited onto black) and a 16-bit one (scaled to 8 bits).
    rgba = Image.open(root / "train" / "red_bars" / "red_bars_000.png").convert("RGBA")
    rgba.putalpha(200)
    rgba.save(root / "train" / "red_bars" / "red_bars_000.png")
    with Image.open(root / "test" / "green_dots" / "green_dots_000.png") as image:
        sixteen = np.asarray(image.convert("L"), dtype=np.uint16) * 257
    Image.fromarray(sixteen).save(root / "test" / "green_dots" / "green_dots_000.png")
    # A truncated PNG (its header reads, its pixels do not) and a stray text file.
    cut = root / "train" / "blue_waves" / "blue_waves_001.png"
    content = cut.read_bytes()
    end_of_ihdr = content.index(b"IHDR") + 4 + 13 + 4
    cut.write_bytes(content[:end_of_ihdr + 100])
    made.train["blue_waves"] -= 1
    with Image.open(cut) as header:  # the size it claims is not a usable image's
        made.sizes.remove(header.size)
    (root / "train" / "dark_flat" / "notes.txt").write_text("not an image\n")
    made.skipped = {cut.name: "does not decode", "notes.txt": "not an image"}
    return made
