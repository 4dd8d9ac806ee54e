"""A decoded, resized uint8 image cache: decode each PNG once, not once per epoch.

Decoding an 800x947 PNG and resizing it costs about 9 ms per image per core; at 64x64 that is
as much as the model's own forward pass. So the first run decodes every image it needs (in
parallel threads: Pillow releases the GIL while decoding) and stores the results in
``data/cache/``; later runs read one ``.npz`` file instead.

One cache file per (dataset folder, image size, channels). Inside it, each image is stored
with its file's path (relative to the dataset), size, modification time and inode: an image
whose file changed (or was replaced) is decoded again, a deleted one is dropped. A dataset
elsewhere on disk gets its own file (the key includes its absolute path).

    splits, classes = load_cached_splits(None, image_size=64, in_channels=1)
    images, labels = splits["train"]     # uint8 (N, 1, 64, 64), int64 (N,)
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .atomic import atomic_write
from .data import DatasetIndex, choose_subset, find_images, load_image
from .paths import PROJECT_ROOT

#: Where cache files live (git-ignored).
CACHE_DIR: Path = PROJECT_ROOT / "data" / "cache"
#: Bump when the stored layout or the decoding changes: old files are then ignored.
CACHE_VERSION = 1


@dataclass
class CacheStats:
    """What the last ``load_images`` call did: images reused from the cache, images decoded."""

    reused: int = 0
    decoded: int = 0


def cache_file(root: str | os.PathLike, image_size: int, in_channels: int,
               cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache file for one dataset folder at one image size and channel count."""
    root = Path(root).resolve()
    digest = hashlib.sha1(str(root).encode("utf-8")).hexdigest()[:12]
    name = f"{root.name}-{digest}-{image_size}px-{in_channels}ch-v{CACHE_VERSION}.npz"
    return Path(cache_dir or CACHE_DIR) / name


def file_signature(path: Path) -> tuple[int, int, int]:
    """(size, mtime in ns, inode): changes when the file is edited or replaced."""
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns, stat.st_ino


@dataclass
class _Stored:
    """A cache file's content: names (M,), signatures (M, 3) int64, pixels (M, C, S, S) uint8."""

    names: list[str]
    signatures: np.ndarray
    pixels: np.ndarray

    def rows(self) -> dict[str, int]:
        """relative name -> row in ``pixels``."""
        return {name: row for row, name in enumerate(self.names)}


def _read_cache(path: Path, shape: tuple[int, int, int]) -> _Stored:
    """The stored cache, or an empty one if the file is missing, truncated or of another layout."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            names, signatures, pixels = stored["names"], stored["signatures"], stored["pixels"]
        if pixels.shape[1:] != shape or not (len(names) == len(signatures) == len(pixels)):
            raise ValueError("unexpected layout")
        return _Stored([str(n) for n in names], signatures.astype(np.int64), pixels)
    except (OSError, KeyError, ValueError, EOFError):  # rebuild it
        return _Stored([], np.zeros((0, 3), np.int64), np.zeros((0, *shape), np.uint8))


def _write_cache(path: Path, stored: _Stored) -> None:
    """Store the cache in one .npz, atomically (a crash never leaves half a cache)."""
    atomic_write(path, lambda handle: np.savez(
        handle, names=np.array(stored.names, dtype=str), signatures=stored.signatures,
        pixels=stored.pixels))


def _decode_all(paths: list[Path], image_size: int, in_channels: int,
                workers: int | None) -> list[np.ndarray]:
    """load_image over ``paths`` with a thread pool; results in the same order."""
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(paths) < 2:
        return [load_image(p, image_size, in_channels) for p in paths]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda p: load_image(p, image_size, in_channels), paths))


def load_images(root: str | os.PathLike, paths: list[Path], image_size: int, in_channels: int,
                *, cache_dir: str | os.PathLike | None = None, workers: int | None = None,
                stats: CacheStats | None = None) -> np.ndarray:
    """Pixels of ``paths`` (files under ``root``): uint8 (len(paths), in_channels, S, S).

    Reuses cached images whose file signature is unchanged, decodes the others (and stores
    them). Files under ``root`` no longer on disk are dropped from the cache.
    """
    root = Path(root).resolve()
    shape = (in_channels, image_size, image_size)
    path = cache_file(root, image_size, in_channels, cache_dir)
    stored = _read_cache(path, shape)
    rows = stored.rows()
    names = [Path(p).resolve().relative_to(root).as_posix() for p in paths]
    signatures = np.array([file_signature(Path(p)) for p in paths], dtype=np.int64)
    stale = [i for i, name in enumerate(names)
             if name not in rows or not np.array_equal(stored.signatures[rows[name]],
                                                       signatures[i])]
    requested = set(names)  # just statted: only the others need a look
    gone = [n for n in stored.names if n not in requested and not (root / n).is_file()]
    if stale or gone:
        stored = _updated(stored, [names[i] for i in stale], signatures[stale],
                          _decode_all([Path(paths[i]) for i in stale], image_size, in_channels,
                                      workers), set(gone))
        _write_cache(path, stored)
        rows = stored.rows()
    if stats is not None:
        stats.reused, stats.decoded = len(paths) - len(stale), len(stale)
    # One gather from the stored block: no per-image copies on the fast (warm) path.
    return stored.pixels[np.array([rows[name] for name in names], dtype=np.int64)]


def _updated(stored: _Stored, names: list[str], signatures: np.ndarray,
             pixels: list[np.ndarray], gone: set[str]) -> _Stored:
    """``stored`` with ``names`` (re)placed by fresh pixels and the ``gone`` names removed."""
    replaced = set(names) | gone
    keep = [row for row, name in enumerate(stored.names) if name not in replaced]
    fresh = np.stack(pixels) if pixels else np.zeros((0, *stored.pixels.shape[1:]), np.uint8)
    return _Stored([stored.names[row] for row in keep] + list(names),
                   np.concatenate([stored.signatures[keep], signatures.reshape(-1, 3)]),
                   np.concatenate([stored.pixels[keep], fresh]))


def load_cached_split(index: DatasetIndex, split: str, image_size: int, in_channels: int,
                      *, subset: int | None = None, seed: int = 0,
                      cache_dir: str | os.PathLike | None = None, workers: int | None = None,
                      stats: CacheStats | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One split as tensors: uint8 images (N, C, S, S) and int64 labels (N,).

    subset: at most this many images per class (the same choice as ImageFolderDataset).
    """
    items = choose_subset(index.files[split], subset, seed)
    pixels = load_images(index.root, [p for p, _ in items], image_size, in_channels,
                         cache_dir=cache_dir, workers=workers, stats=stats)
    labels = torch.tensor([label for _, label in items], dtype=torch.int64)
    return torch.from_numpy(pixels), labels


def load_cached_splits(data_dir: str | os.PathLike | None, image_size: int, in_channels: int,
                       *, subset: int | None = None, seed: int = 0,
                       cache_dir: str | os.PathLike | None = None, workers: int | None = None
                       ) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], list[str]]:
    """Train and test splits of ``data_dir`` (None: built-in) through the cache.

    Returns ({"train": (images, labels), "test": (images, labels)}, class names).
    """
    index = find_images(data_dir)
    splits = {split: load_cached_split(index, split, image_size, in_channels, subset=subset,
                                       seed=seed, cache_dir=cache_dir, workers=workers)
              for split in ("train", "test")}
    return splits, list(index.classes)
