"""Decoding image files: any image -> 8-bit grayscale, resized, channels replicated.

``load_image`` is the one decoder behind every loader (the datasets, the cache, the cold
benchmark). Odd modes (RGBA, palette, 16-bit) become 8-bit grayscale. A file that does not
decode raises ``UnreadableImageError``; ``decode_readable`` decodes many files in threads and
leaves those out.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image, UnidentifiedImageError

from course_utils.part_one.data_errors import DatasetError, UnreadableImageError
from course_utils.part_one.data_spec import check_image_size, check_in_channels
from course_utils.paths import display_path


def describe_error(error: Exception) -> str:
    """Pillow's reason for failing, without the absolute path it sometimes repeats."""
    if isinstance(error, UnidentifiedImageError):
        return "Pillow does not recognise the file's format"
    return str(error) or type(error).__name__



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
            path, f"corrupt or truncated image ({describe_error(error)})") from None



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
    image_size, in_channels = check_image_size(image_size), check_in_channels(in_channels)
    gray = np.asarray(resize_gray(decode_gray(path), image_size), dtype=np.uint8)
    # Pillow's array can be a read-only view of the image's buffer; copy it so callers
    # (torch.from_numpy in ImageFolderDataset) get a writable array and no UserWarning.
    return np.array(replicate_channels(gray, in_channels), copy=True)



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
