"""Cold FPS: every file of a split decoded and resized again in a DataLoader, through the
model, beside decode-only (the same DataLoader without the model): what the report's loop
measures if it read the test set from disk. Model-only and warm FPS are in ``fps``."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from course_utils.part_one.devices import autocast, prepare_model, timed_seconds
from course_utils.part_one.loaders import to_model_input
from course_utils.validation import require_int

#: Images per DataLoader item on the cold path (see ``rebatch``): small enough that the workers
#: share the last images evenly, large enough that per-item overhead stays small.
CHUNK_SIZE = 16


def default_workers() -> int:
    """DataLoader worker processes for the cold path: the CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class FileImages(torch.utils.data.Dataset):
    """Image files decoded and resized when read: the cold path's dataset.

    Item i: ``course_utils.part_one.decode.load_image`` of file i as a uint8 tensor (in_channels,
    image_size, image_size): the same pixels as the decoded cache. Pillow decodes, converts
    to "L" and resizes; ``benchmarks/bench_decode.py`` times the alternatives (torchvision's
    ``decode_png`` / ``decode_image``, torch's antialiased resize, Pillow's ``reducing_gap``):
    on the 2-core test machine none whose pixels stay within 1 grey level was faster by more
    than the noise of the run, and torchvision 0.29 deprecates its decoders. A file that does
    not decode gives its (path, reason) instead (``ReadableBatch`` leaves it out of the batch).
    """

    def __init__(self, paths: Sequence[str | Path], image_size: int, in_channels: int) -> None:
        from course_utils.part_one.data_spec import check_image_size, check_in_channels

        image_size, in_channels = check_image_size(image_size), check_in_channels(in_channels)
        self.paths = [os.fspath(path) for path in paths]
        self.image_size, self.in_channels = image_size, in_channels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor | tuple[Path, str]:
        from course_utils.part_one.data_errors import UnreadableImageError
        from course_utils.part_one.decode import load_image

        try:
            return torch.from_numpy(load_image(self.paths[i], self.image_size,
                                               self.in_channels))
        except UnreadableImageError as error:
            return error.path, error.reason


class ReadableBatch:
    """collate_fn for ``FileImages``: (uint8 (B, C, S, S) of the readable items, list of
    (path, reason) of the others). shape: (C, S, S), for a batch with no readable item."""

    def __init__(self, shape: tuple[int, int, int]) -> None:
        self.shape = shape

    def __call__(self, items: Sequence[Any]) -> tuple[torch.Tensor, list[tuple[Path, str]]]:
        images = [item for item in items if isinstance(item, torch.Tensor)]
        skipped = [tuple(item) for item in items if not isinstance(item, torch.Tensor)]
        if not images:
            return torch.empty((0, *self.shape), dtype=torch.uint8), skipped
        return torch.stack(images), skipped


def file_loader(paths: Sequence[str | Path], image_size: int, in_channels: int, *,
                chunk_size: int = CHUNK_SIZE, workers: int | None = None,
                device: torch.device | str = "cpu") -> torch.utils.data.DataLoader:
    """A DataLoader decoding ``paths`` in order, ``chunk_size`` images per item, in ``workers``
    processes (None: ``default_workers()``; 0: in this process).

    Items: (uint8 (B, C, S, S), [(path, reason) of files that did not decode]). Workers stay
    alive between passes (persistent_workers), as in a training loop's later epochs; on CUDA
    the chunks arrive in pinned memory (pin_memory) for an asynchronous copy.
    """
    workers = default_workers() if workers is None else workers
    if chunk_size < 1 or workers < 0:
        raise ValueError(f"chunk_size must be >= 1 and workers >= 0, got {chunk_size}, {workers}")
    return torch.utils.data.DataLoader(
        FileImages(paths, image_size, in_channels), batch_size=chunk_size, shuffle=False,
        num_workers=workers, collate_fn=ReadableBatch((in_channels, image_size, image_size)),
        pin_memory=torch.device(device).type == "cuda", persistent_workers=workers > 0)


def rebatch(chunks: Iterable[tuple[torch.Tensor, list]], batch_size: int,
            device: torch.device | str, skipped: list[tuple[Path, str]]
            ) -> Iterator[torch.Tensor]:
    """Batches of ``batch_size`` uint8 images on ``device`` (the last may be smaller), joined
    from the chunks of ``file_loader``.

    Each chunk goes to the device as it arrives (non_blocking: from pinned memory on CUDA); a
    batch is joined there. Why chunks: a DataLoader hands each worker a whole item, so with
    items of 256 images the last few workers decode alone at the end of the pass while the
    others wait; with small chunks every worker stays busy to the end, and the model still
    sees ``batch_size``. Files that did not decode are appended to ``skipped``.
    """
    batch_size = require_int("batch_size", batch_size)
    device = torch.device(device)
    pending: list[torch.Tensor] = []
    count = 0
    for chunk, bad in chunks:
        skipped += bad
        if len(chunk):
            pending.append(chunk.to(device, non_blocking=True))
            count += len(chunk)
        while count >= batch_size:
            joined = torch.cat(pending) if len(pending) > 1 else pending[0]
            yield joined[:batch_size]
            pending = [joined[batch_size:]] if count > batch_size else []
            count -= batch_size
    if count:
        yield torch.cat(pending) if len(pending) > 1 else pending[0]


def cold_fps(model: nn.Module, data_dir: str | Path | None, image_size: int, in_channels: int,
             batch_size: int, device: torch.device | str, *, split: str = "test",
             workers: int | None = None, chunk_size: int | None = None,
             amp: str | None = None, channels_last: bool = False, repeats: int = 1,
             warn: bool = True) -> dict[str, Any]:
    """Cold FPS: every file of a split decoded and resized again, through the model.

    What the report's loop measures if it read the test set from disk: a DataLoader
    (``file_loader``: ``workers`` processes, each decoding chunks of ``chunk_size`` images with
    ``load_image``; None: ``min(batch_size, CHUNK_SIZE)``) whose chunks are joined into
    batches of ``batch_size`` on the device (``rebatch``), converted to float, the model.
    Beside it, timed on the same workers: decode-only, the same DataLoader without the model,
    the limit when decoding dominates; "cold_over_decode_only" = cold / decode-only FPS.
    The file index (``find_images``) is built once, timed apart ("index_seconds"); an untimed
    decode-only pass starts the workers, then every batch shape runs through the model once.
    The files are then in the operating system's page cache: cold means decoded again, not
    read from a cold disk. repeats: decode-only and cold passes alternate this many times;
    the medians are kept.
    Files that do not decode are left out ("images" counts the others; "skipped" the rest),
    named in one DatasetWarning from the first pass (warn=False: not warned).
    Returns {"images", "batch_size", "workers", "chunk_size", "seconds", "fps",
    "decode_only_seconds", "decode_only_fps", "cold_over_decode_only", "index_seconds",
    "skipped"}.
    """
    from course_utils.part_one.data_errors import check_split_readable, warn_unreadable
    from course_utils.part_one.data_spec import data_spec
    from course_utils.part_one.dataset import find_images

    repeats = require_int("repeats", repeats)
    device = torch.device(device)
    workers = default_workers() if workers is None else workers
    chunk_size = chunk_size or min(batch_size, CHUNK_SIZE)
    model = prepare_model(model, device, channels_last).eval()
    root = data_spec(data_dir, image_size, in_channels).data_dir  # None: built-in
    start = time.perf_counter()
    index = find_images(root)
    index_seconds = time.perf_counter() - start
    paths = [path for path, _ in index.files[split]]
    loader = file_loader(paths, image_size, in_channels, chunk_size=chunk_size,
                         workers=workers, device=device)

    @torch.inference_mode()
    def run() -> None:
        with autocast(device, amp):
            for batch in rebatch(loader, batch_size, device, []):
                model(to_model_input(batch, device, channels_last))

    def decode_only() -> None:
        for _ in loader:
            pass

    # Warm-up, untimed: a decode-only pass starts the workers and finds the files that do not
    # decode; then each batch shape the timed passes will see runs through the model once
    # (kernel choice, cuDNN autotuning, torch.compile), on zeros: cheaper than a whole pass.
    skipped = [item for _, bad in loader for item in bad]
    check_split_readable(index.root, split, len(paths), skipped)
    count = len(paths) - len(skipped)
    shapes = {min(batch_size, count), count % batch_size} - {0}
    with torch.inference_mode(), autocast(device, amp):
        for size in sorted(shapes):
            zeros = torch.zeros((size, in_channels, image_size, image_size), dtype=torch.uint8)
            model(to_model_input(zeros, device, channels_last))
    if warn:
        warn_unreadable(index.root, skipped)
    decode_times, cold_times = [], []
    for _ in range(repeats):
        decode_times.append(timed_seconds(decode_only, device))
        cold_times.append(timed_seconds(run, device))
    seconds, decode_seconds = float(np.median(cold_times)), float(np.median(decode_times))
    return {"images": count, "batch_size": batch_size, "workers": workers,
            "chunk_size": chunk_size, "seconds": seconds, "fps": count / seconds,
            "decode_only_seconds": decode_seconds, "decode_only_fps": count / decode_seconds,
            "cold_over_decode_only": decode_seconds / seconds,
            "index_seconds": index_seconds, "skipped": len(skipped)}
