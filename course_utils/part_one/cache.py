"""A decoded, resized uint8 image cache: decode each PNG once, not once per epoch.

Decoding an 800x947 PNG and resizing it costs about 9 ms per image per core; at 64x64 that is
as much as the model's own forward pass. So the first run decodes every image it needs (in
parallel threads: Pillow releases the GIL while decoding) and stores the results in
``data/cache/``; later runs memory-map one raw ``.npy`` of pixels instead (no copy: the OS page
cache keeps it between runs), after checking each file against a small ``.npz`` index.

One cache file per (dataset folder, image size, channels). Inside it, each image is stored
with its file's path (relative to the dataset), size, modification time and inode: an image
whose file changed (or was replaced) is decoded again, a deleted one is dropped. A dataset
elsewhere on disk gets its own file (the key includes its absolute path).

A file that does not decode (truncated) is left out of the result, with its label, and named
in one DatasetWarning; nothing is stored for it, so it is tried again on every load (and used
once it is fixed or replaced). A split left empty or mostly unreadable is a DatasetError.

    splits, classes = load_cached_splits(None, image_size=64, in_channels=1)
    images, labels = splits["train"]     # uint8 (N, 1, 64, 64), int64 (N,)
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from course_utils.atomic import atomic_write
from course_utils.part_one.data import (
    DatasetIndex,
    check_split_readable,
    choose_subset,
    decode_readable,
    find_images,
    load_image,
    warn_unreadable,
)
from course_utils.paths import PROJECT_ROOT

#: Where cache files live (git-ignored).
CACHE_DIR: Path = PROJECT_ROOT / "data" / "cache"
#: Bump when the stored layout or the decoding changes: old files are then ignored.
#: v2: names and signatures in a small .npz, pixels in a raw .npy beside it (memory-mapped).
CACHE_VERSION = 2


@dataclass
class CacheStats:
    """What the last ``load_images`` call did: images reused from the cache, images decoded,
    and (path, reason) of each file left out because it does not decode."""

    reused: int = 0
    decoded: int = 0
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def cache_file(root: str | os.PathLike, image_size: int, in_channels: int,
               cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache's index file (names, signatures) for one dataset folder, size and channels.

    The pixels live in a ``.npy`` beside it, named inside this file.
    """
    root = Path(root).resolve()
    digest = hashlib.sha1(str(root).encode("utf-8")).hexdigest()[:12]
    name = f"{root.name}-{digest}-{image_size}px-{in_channels}ch-v{CACHE_VERSION}.npz"
    return Path(cache_dir or CACHE_DIR) / name


def file_signature(path: str | os.PathLike) -> tuple[int, int, int]:
    """(size, mtime in ns, inode): changes when the file is edited or replaced."""
    stat = os.stat(path)
    return stat.st_size, stat.st_mtime_ns, stat.st_ino


def _signatures(paths: list[str]) -> np.ndarray:
    """(N, 3) int64 signatures of ``paths`` (plain strings: no Path object per file)."""
    signatures = np.empty((len(paths), 3), np.int64)
    for i, path in enumerate(paths):
        stat = os.stat(path)
        signatures[i] = stat.st_size, stat.st_mtime_ns, stat.st_ino
    return signatures


def _relative_names(root: Path, paths: list[str]) -> list[str]:
    """Each path relative to ``root`` with "/" separators (the cache's key for that image).

    ``root`` is resolved once; a path spelled under it is cut by string, others are resolved.
    """
    prefix = str(root) + os.sep
    names = []
    for path in paths:
        if path.startswith(prefix) and f"{os.sep}..{os.sep}" not in path:
            names.append(path[len(prefix):].replace(os.sep, "/"))
            continue
        try:
            names.append(Path(path).resolve().relative_to(root).as_posix())
        except ValueError:
            raise ValueError(f"{path} is not inside the dataset folder {root}; pass files "
                             "from find_images(root) of that folder") from None
    return names


@dataclass
class _Stored:
    """A cache's content: names (M,), signatures (M, 3) int64, pixels (M, C, S, S) uint8.

    ``pixels`` is usually a copy-on-write memory map of the .npy file: reading it copies
    nothing until a row is used (the OS page cache holds the file between runs).
    """

    names: list[str]
    signatures: np.ndarray
    pixels: np.ndarray

    def rows(self) -> dict[str, int]:
        """relative name -> row in ``pixels``."""
        return {name: row for row, name in enumerate(self.names)}


def _empty(shape: tuple[int, int, int]) -> _Stored:
    return _Stored([], np.zeros((0, 3), np.int64), np.zeros((0, *shape), np.uint8))


def _read_cache(path: Path, shape: tuple[int, int, int]) -> _Stored:
    """The stored cache, or an empty one if a file is missing, truncated or of another layout."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            names, signatures = stored["names"], stored["signatures"]
            pixels_name = str(stored["pixels_file"])
        # mode "c" (copy-on-write): a writable view, so torch.from_numpy does not warn, and
        # nothing is copied from the page cache until a row is read.
        pixels = np.load(path.parent / pixels_name, mmap_mode="c", allow_pickle=False)
        if (pixels.dtype != np.uint8 or pixels.shape[1:] != shape
                or not len(names) == len(signatures) == len(pixels)):
            raise ValueError("unexpected layout")
        return _Stored(names.tolist(), signatures.astype(np.int64), pixels)
    except (OSError, KeyError, ValueError, EOFError):  # rebuild it
        return _empty(shape)


def _write_cache(path: Path, stored: _Stored) -> None:
    """Pixels to a new .npy, then the index naming it: each atomic, so a crash leaves either
    the old cache or the new one, never an index pointing at half a pixel file."""
    pixels_name = f"{path.stem}.{secrets.token_hex(6)}.pixels.npy"
    atomic_write(path.parent / pixels_name, lambda handle: np.save(handle, stored.pixels))
    atomic_write(path, lambda handle: np.savez(
        handle, names=np.array(stored.names, dtype=str), signatures=stored.signatures,
        pixels_file=np.array(pixels_name)))
    for old in path.parent.glob(f"{path.stem}.*.pixels.npy"):
        if old.name != pixels_name:  # an open memory map of it stays valid (POSIX unlink)
            try:
                old.unlink(missing_ok=True)
            except OSError:  # still mapped on a system that refuses (Windows): next write
                pass


def _decode_all(paths: list[str], image_size: int, in_channels: int, workers: int | None
                ) -> tuple[list[np.ndarray], list[int], list[tuple[Path, str]]]:
    """load_image over ``paths`` with a thread pool, leaving out files that do not decode.

    Returns (pixels of the readable files, their positions in ``paths``, (path, reason) of the
    others), in the order of ``paths``.
    """
    return decode_readable(paths, lambda p: load_image(p, image_size, in_channels), workers)


def _stale(stored: _Stored, rows: np.ndarray, signatures: np.ndarray) -> np.ndarray:
    """Positions whose image is not cached (row -1) or whose file signature changed.

    rows: (N,) row in ``stored`` or -1; signatures: (N, 3). One vectorised comparison.
    """
    known = rows >= 0
    changed = np.ones(len(rows), bool)
    changed[known] = (stored.signatures[rows[known]] != signatures[known]).any(axis=1)
    return np.flatnonzero(changed)


def _take(pixels: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """pixels[rows]; a view without copying when ``rows`` is one consecutive run (a split)."""
    if len(rows) and np.array_equal(rows, np.arange(rows[0], rows[0] + len(rows))):
        return pixels[rows[0]:rows[0] + len(rows)]
    return pixels[rows]


def load_images(root: str | os.PathLike, paths: list[Path], image_size: int, in_channels: int,
                *, cache_dir: str | os.PathLike | None = None, workers: int | None = None,
                stats: CacheStats | None = None) -> np.ndarray:
    """Pixels of ``paths`` (files under ``root``): uint8 (N, in_channels, S, S).

    Reuses cached images whose file signature is unchanged, decodes the others (and stores
    them). Files under ``root`` no longer on disk are dropped from the cache. The result may
    be a read-through memory map of the cache file (no copy when the paths form one block).
    Files that do not decode are left out (N = len(paths) minus those), named in one
    DatasetWarning and in ``stats.skipped``.
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
    shape = (in_channels, image_size, image_size)
    path = cache_file(root, image_size, in_channels, cache_dir)
    texts = [os.fspath(p) for p in paths]
    names = _relative_names(root, texts)
    signatures = _signatures(texts)
    stored = _read_cache(path, shape)
    row_of = stored.rows()
    rows = np.array([row_of.get(name, -1) for name in names], dtype=np.int64)
    stale = _stale(stored, rows, signatures)
    requested = set(names)  # just statted: only the others need a look
    prefix = str(root) + os.sep
    gone = {n for n in stored.names if n not in requested and not os.path.isfile(prefix + n)}
    skipped: list[tuple[Path, str]] = []
    decoded = stale
    if len(stale) or gone:
        pixels, readable, skipped = _decode_all([texts[i] for i in stale], image_size,
                                                in_channels, workers)
        decoded = stale[readable]
        # An unreadable file keeps no row (not even its old pixels): it is tried again next time.
        gone |= {names[i] for i in np.delete(stale, readable) if names[i] in row_of}
        if len(decoded) or gone:
            stored = _updated(stored, [names[i] for i in decoded], signatures[decoded], pixels,
                              gone)
            _write_cache(path, stored)
            row_of = stored.rows()
        rows = np.array([row_of.get(name, -1) for name in names], dtype=np.int64)
    if stats is not None:
        stats.reused, stats.decoded, stats.skipped = len(paths) - len(stale), len(decoded), skipped
    kept = np.flatnonzero(rows >= 0) if skipped else np.arange(len(rows))
    return _take(stored.pixels, rows[kept]), kept, skipped


def _updated(stored: _Stored, names: list[str], signatures: np.ndarray,
             pixels: list[np.ndarray], gone: set[str]) -> _Stored:
    """``stored`` with ``names`` (re)placed by fresh pixels and the ``gone`` names removed.

    Rows are kept sorted by name, so a split (one folder) stays one consecutive block and
    later reads of it need no gather.
    """
    replaced = set(names) | gone
    keep = [row for row, name in enumerate(stored.names) if name not in replaced]
    fresh = np.stack(pixels) if pixels else np.zeros((0, *stored.pixels.shape[1:]), np.uint8)
    all_names = [stored.names[row] for row in keep] + list(names)
    order = np.argsort(np.array(all_names, dtype=str), kind="stable")
    all_pixels = np.concatenate([stored.pixels[keep], fresh])
    all_signatures = np.concatenate([stored.signatures[keep], signatures.reshape(-1, 3)])
    return _Stored([all_names[i] for i in order], all_signatures[order], all_pixels[order])


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
    images, labels, skipped = _load_split(index, split, image_size, in_channels, subset, seed,
                                          cache_dir, workers, stats)
    if warn:
        warn_unreadable(index.root, skipped)
    return images, labels


def _load_split(index: DatasetIndex, split: str, image_size: int, in_channels: int,
                subset: int | None, seed: int, cache_dir: str | os.PathLike | None,
                workers: int | None, stats: CacheStats | None
                ) -> tuple[torch.Tensor, torch.Tensor, list[tuple[Path, str]]]:
    """load_cached_split without the warning; also returns the skipped (path, reason)."""
    items = choose_subset(index.files[split], subset, seed)
    pixels, kept, skipped = _load(index.root, [p for p, _ in items], image_size, in_channels,
                                  cache_dir, workers, stats)
    check_split_readable(index.root, split, len(items), skipped)
    labels = torch.tensor([items[i][1] for i in kept], dtype=torch.int64)
    return torch.from_numpy(pixels), labels, skipped


def load_cached_splits(data_dir: str | os.PathLike | None, image_size: int, in_channels: int,
                       *, subset: int | None = None, seed: int = 0,
                       cache_dir: str | os.PathLike | None = None, workers: int | None = None
                       ) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], list[str]]:
    """Train and test splits of ``data_dir`` (None: built-in) through the cache.

    Returns ({"train": (images, labels), "test": (images, labels)}, class names). Files that
    do not decode are left out, named in one DatasetWarning for both splits.
    """
    index = find_images(data_dir)
    splits, skipped = {}, []
    for split in ("train", "test"):
        images, labels, bad = _load_split(index, split, image_size, in_channels, subset, seed,
                                          cache_dir, workers, None)
        splits[split] = images, labels
        skipped += bad
    warn_unreadable(index.root, skipped)
    return splits, list(index.classes)
