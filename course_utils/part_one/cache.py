"""A decoded, resized uint8 image cache: decode each PNG once, not once per epoch.

Decoding an 800x947 PNG and resizing it costs about 9 ms per image per core; at 64x64 that is
as much as the model's own forward pass. So the first run decodes every image it needs (in
parallel threads: Pillow releases the GIL while decoding) and stores the results in one
``.npz`` file in ``data/cache/``; later runs read that file instead (tens of milliseconds for
the built-in dataset, against seconds for a pass of the model), after checking each image file
against it.

One cache file per (dataset folder, image size, channels). Inside it, each image is stored
with its file's path (relative to the dataset), size, modification time and inode: an image
whose file changed (or was replaced) is decoded again, a deleted one is dropped. A dataset
elsewhere on disk gets its own file (the key includes its absolute path). The file is
replaced atomically, so a crash leaves the old cache or the new one.

A file that does not decode (truncated) is left out of the result, with its label, and named
in one DatasetWarning; nothing is stored for it, so it is tried again on every load (and used
once it is fixed or replaced). A split left empty or mostly unreadable is a DatasetError.

    splits, classes = load_cached_splits(data_spec(None, image_size=64))
    images, labels = splits["train"]     # uint8 (N, 1, 64, 64), int64 (N,)
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from course_utils.atomic import atomic_write
from course_utils.part_one.data_errors import check_split_readable, warn_unreadable
from course_utils.part_one.data_spec import DataSpec
from course_utils.part_one.dataset import DatasetIndex, choose_subset, find_images
from course_utils.part_one.dataset_generator import SPLITS
from course_utils.part_one.decode import decode_readable, load_image
from course_utils.paths import PROJECT_ROOT

#: Where cache files live (git-ignored).
CACHE_DIR: Path = PROJECT_ROOT / "data" / "cache"
#: Bump when the stored layout or the decoding changes: old files are then ignored.
#: v3: names, signatures and pixels in one .npz.
CACHE_VERSION = 3


@dataclass
class CacheStats:
    """What the last ``load_images`` call did: images reused from the cache, images decoded,
    and (path, reason) of each file left out because it does not decode."""

    reused: int = 0
    decoded: int = 0
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def cache_file(root: str | os.PathLike, image_size: int, in_channels: int,
               cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache file (names, signatures, pixels) of one dataset folder, size and channels."""
    root = Path(root).resolve()
    digest = hashlib.sha1(str(root).encode("utf-8")).hexdigest()[:12]
    name = f"{root.name}-{digest}-{image_size}px-{in_channels}ch-v{CACHE_VERSION}.npz"
    return Path(cache_dir or CACHE_DIR) / name


def file_signature(path: str | os.PathLike) -> tuple[int, int, int]:
    """(size, mtime in ns, inode): changes when the file is edited or replaced."""
    stat = os.stat(path)
    return stat.st_size, stat.st_mtime_ns, stat.st_ino


def _relative_name(root: Path, path: str | os.PathLike) -> str:
    """``path`` relative to ``root`` (resolved) with "/" separators: the cache's key."""
    try:
        return Path(path).resolve().relative_to(root).as_posix()
    except ValueError:
        raise ValueError(f"{path} is not inside the dataset folder {root}; pass files "
                         "from find_images(root) of that folder") from None


def _read_cache(path: Path, shape: tuple[int, int, int]
                ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(names, signatures (M, 3), pixels (M, *shape)); empty if the file is missing or bad."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            names, signatures, pixels = stored["names"], stored["signatures"], stored["pixels"]
        if pixels.dtype == np.uint8 and pixels.shape[1:] == shape and \
                len(names) == len(signatures) == len(pixels):
            return names.tolist(), signatures.astype(np.int64), pixels
    except (OSError, KeyError, ValueError, EOFError):  # rebuilt below
        pass
    return [], np.zeros((0, 3), np.int64), np.zeros((0, *shape), np.uint8)


def load_images(root: str | os.PathLike, paths: list[Path], image_size: int, in_channels: int,
                *, cache_dir: str | os.PathLike | None = None, workers: int | None = None,
                stats: CacheStats | None = None) -> np.ndarray:
    """Pixels of ``paths`` (files under ``root``): uint8 (N, in_channels, S, S).

    Reuses cached images whose file signature is unchanged, decodes the others (and stores
    them). Files under ``root`` no longer on disk are dropped from the cache. Files that do
    not decode are left out (N = len(paths) minus those), named in one DatasetWarning and in
    ``stats.skipped``.
    """
    pixels, _, skipped = _load(root, paths, image_size, in_channels, cache_dir, workers, stats)
    warn_unreadable(root, skipped)
    return pixels


def _load(root: str | os.PathLike, paths: list[Path], image_size: int, in_channels: int,
          cache_dir: str | os.PathLike | None, workers: int | None, stats: CacheStats | None
          ) -> tuple[np.ndarray, np.ndarray, list[tuple[Path, str]]]:
    """load_images without the warning: (pixels, positions in ``paths`` of the rows of pixels,
    (path, reason) of each file left out)."""
    root = Path(root).resolve()
    path = cache_file(root, image_size, in_channels, cache_dir)
    names = [_relative_name(root, p) for p in paths]
    signatures = np.array([file_signature(p) for p in paths], np.int64).reshape(-1, 3)
    stored_names, stored_signatures, pixels = _read_cache(
        path, (in_channels, image_size, image_size))
    row_of = {name: row for row, name in enumerate(stored_names)}
    rows = np.array([row_of.get(name, -1) for name in names], np.int64)
    changed = rows < 0
    changed[~changed] = (stored_signatures[rows[~changed]] != signatures[~changed]).any(axis=1)
    stale = np.flatnonzero(changed)
    requested, redo = set(names), {names[i] for i in stale}
    keep = [row for row, name in enumerate(stored_names)  # on disk and not to decode again
            if name not in redo and (name in requested or os.path.isfile(root / name))]
    fresh, decoded, skipped = stale, [], []
    if len(stale):
        decoded, readable, skipped = decode_readable(
            [paths[i] for i in stale], lambda p: load_image(p, image_size, in_channels), workers)
        fresh = stale[readable]
    if len(fresh) or len(keep) < len(stored_names):
        stored_names = [stored_names[row] for row in keep] + [names[i] for i in fresh]
        stored_signatures = np.concatenate([stored_signatures[keep], signatures[fresh]])
        pixels = np.concatenate([pixels[keep], *([np.stack(decoded)] if decoded else [])])
        atomic_write(path, lambda handle: np.savez(
            handle, names=np.array(stored_names, dtype=str), signatures=stored_signatures,
            pixels=pixels))
        row_of = {name: row for row, name in enumerate(stored_names)}
        rows = np.array([row_of.get(name, -1) for name in names], np.int64)
    if stats is not None:
        stats.reused, stats.decoded, stats.skipped = len(paths) - len(stale), len(fresh), skipped
    kept = np.flatnonzero(rows >= 0)
    return pixels[rows[kept]], kept, skipped


def load_cached_split(index: DatasetIndex, split: str, image_size: int, in_channels: int,
                      *, subset: int | None = None, seed: int = 0,
                      cache_dir: str | os.PathLike | None = None, workers: int | None = None,
                      stats: CacheStats | None = None, warn: bool = True
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """One split as tensors: uint8 images (N, C, S, S) and int64 labels (N,).

    subset: at most this many images per class (the same choice as ImageFolderDataset).
    Files that do not decode are left out with their labels and named in one DatasetWarning
    (warn=False: only in ``stats.skipped``); DatasetError if the split is left empty or mostly
    unusable.
    """
    items = choose_subset(index.files[split], subset, seed)
    pixels, kept, skipped = _load(index.root, [p for p, _ in items], image_size, in_channels,
                                  cache_dir, workers, stats)
    check_split_readable(index.root, split, len(items), skipped)
    if warn:
        warn_unreadable(index.root, skipped)
    labels = torch.tensor([items[i][1] for i in kept], dtype=torch.int64)
    return torch.from_numpy(pixels), labels


def load_cached_splits(spec: DataSpec, *, subset: int | None = None, seed: int = 0,
                       cache_dir: str | os.PathLike | None = None, workers: int | None = None
                       ) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], list[str]]:
    """Train and test splits of ``spec`` (from ``data_spec``) through the cache.

    Returns ({"train": (images, labels), "test": (images, labels)}, class names). Files that
    do not decode are left out, named in one DatasetWarning for both splits.
    """
    index = find_images(spec.data_dir)
    splits, skipped = {}, []
    for split in SPLITS:
        stats = CacheStats()
        splits[split] = load_cached_split(index, split, spec.image_size, spec.in_channels,
                                          subset=subset, seed=seed, cache_dir=cache_dir,
                                          workers=workers, stats=stats, warn=False)
        skipped += stats.skipped
    warn_unreadable(index.root, skipped)
    return splits, list(index.classes)
