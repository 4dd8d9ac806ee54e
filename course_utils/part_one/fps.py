"""Model-only and warm FPS: images per second the way the report defines it.

The report (Part One, Model): "For finding the model's FPS, we run it on the test dataset,
which contains 6588 images, and we got 59.21 FPS": images per second over the whole test split.
- model-only (``model_only_fps``, ``fps_sweep``): the test images already in memory as float
  tensors on the device;
- warm (``warm_fps``): from the files through the decoded cache of
  ``course_utils.part_one.cache`` (each file checked against it, pixels read from its memory
  map), through the model. The cold path, every file decoded again, is ``cold_path.cold_fps``.
All: every batch shape run once before the clock starts (warm-up: kernel choice, cuDNN
autotuning, torch.compile), ``torch.inference_mode``, and a device synchronisation before the
clock stops (CUDA runs asynchronously: without it we would time the launch, not the work).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from course_utils.part_one.devices import autocast, prepare_model, synchronize, timed_seconds
from course_utils.part_one.loaders import to_model_input
from course_utils.validation import require_int

#: measure_fps(run_batch, batches, warmup, synchronize, clock) -> {"images", "seconds", "fps"}
MeasureFps = Callable[..., dict[str, float]]

#: Batch sizes of the FPS sweep (notebook 04); the GPU check goes up to 256.
BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64)


def resolve_batch_sizes(value: Sequence[int] | str | None, default: Sequence[int],
                        name: str = "batch_sizes") -> list[int]:
    """A list of batch sizes from a notebook parameter: a list, "8,32", "[8, 32]" or None.

    Strings are accepted because ``papermill -p batch_sizes "[8, 32]"`` passes one.
    """
    if value is None:
        return list(default)
    items = value.strip("[]() ").replace(",", " ").split() if isinstance(value, str) else value
    try:
        sizes = [int(item) for item in items]
    except (TypeError, ValueError):
        sizes = []
    if not sizes or min(sizes) < 1 or any(isinstance(i, float) and i != int(i) for i in items):
        raise ValueError(f"{name} must be a list of positive integers like [8, 32] (papermill: "
                         f"-y '{name}: [8, 32]' or -p {name} 8,32), got {value!r}")
    return sizes


def _batches(x: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    """Split (N, ...) into consecutive batches of ``batch_size`` (the last may be smaller)."""
    return list(torch.split(x, require_int("batch_size", batch_size)))


def model_only_fps(model: nn.Module, images: torch.Tensor, batch_size: int,
                   device: torch.device | str, *, measure_fps: MeasureFps,
                   amp: str | None = None,
                   channels_last: bool = False, warmup_batches: int = 2,
                   warmup_last: bool = True) -> dict[str, Any]:
    """Images per second of the model alone over ``images`` (uint8 (N, C, H, W)).

    The images are converted to float on the device before the clock starts.
    warmup_last: also run the last (smaller) batch before timing, so that every batch shape
    of the timed pass has run once, as in ``warm_fps`` and ``cold_fps`` (whose warm-up is a
    whole pass). A new shape costs cuDNN autotuning (``cudnn.benchmark``) or a torch.compile
    recompilation on its first call: left inside the timed pass, it made model-only at batch
    256 slower than the warm path in results/gpu_fps.json (6,588 = 25 x 256 + 188).
    measure_fps: the timing loop written in notebook 04, passed in (warm-up untimed, a device
    synchronisation before each clock read): measure_fps(run_batch, batches, warmup,
    synchronize, clock) -> {"images", "seconds", "fps"}.
    Returns {"images", "batch_size", "seconds", "fps", "warmed_last"}.
    """
    device = torch.device(device)
    model = prepare_model(model, device, channels_last).eval()
    x = to_model_input(images, device, channels_last)
    batches = _batches(x, batch_size)
    warmup = batches[:warmup_batches]  # first calls pick kernels and allocate buffers
    if warmup_last and len(batches[-1]) != len(batches[0]):
        warmup.append(batches[-1])
    with torch.inference_mode(), autocast(device, amp):
        timed = measure_fps(model, batches, warmup, lambda: synchronize(device),
                            time.perf_counter)
    return {"images": timed["images"], "batch_size": batch_size, "seconds": timed["seconds"],
            "fps": timed["fps"], "warmed_last": warmup_last}


def fps_sweep(model: nn.Module, images: torch.Tensor, batch_sizes: Sequence[int],
              device: torch.device | str, *, measure_fps: MeasureFps, amp: str | None = None,
              channels_last: bool = False) -> list[dict[str, Any]]:
    """``model_only_fps`` at each batch size: one row per batch size."""
    return [model_only_fps(model, images, b, device, measure_fps=measure_fps, amp=amp,
                           channels_last=channels_last)
            for b in batch_sizes]


def device_batches(images: torch.Tensor, batch_size: int,
                   device: torch.device | str) -> Iterator[torch.Tensor]:
    """Consecutive uint8 batches (B, C, H, W) of ``images`` (N, C, H, W), on ``device``.

    On CUDA each batch is copied into pinned (page-locked) host memory and sent with a
    non_blocking copy, and batch i+1's copy is issued before batch i is handed out: the host
    prepares the next batch while the GPU still runs the current one. (PyTorch's pinned-memory
    cache does not reuse a block before its copy has finished.) On CPU: plain views.
    """
    device = torch.device(device)
    batches = _batches(images, batch_size)

    def send(batch: torch.Tensor) -> torch.Tensor:
        if device.type == "cuda":
            return batch.pin_memory().to(device, non_blocking=True)
        return batch.to(device)

    upcoming = send(batches[0]) if batches else None
    for number in range(len(batches)):
        current = upcoming
        if number + 1 < len(batches):
            upcoming = send(batches[number + 1])  # in flight while ``current`` is used
        yield current


def warm_fps(model: nn.Module, data_dir: str | Path | None, image_size: int,
             in_channels: int, batch_size: int, device: torch.device | str, *,
             split: str = "test", amp: str | None = None, channels_last: bool = False,
             cache_dir: str | Path | None = None) -> dict[str, Any]:
    """Warm FPS: from the files through the decoded cache and the model, over one whole split.

    "Warm": the pixels come from ``course_utils.part_one.cache`` (decoded once, earlier), so nothing
    is decoded in the timed pass; ``cold_fps`` decodes every file. Like one epoch of a
    DataLoader: the file index (``find_images``, which opens every header to validate the
    dataset) is built once, as a Dataset does when it is created, and timed separately
    ("index_seconds"). Timed per pass: checking every file's size, time and inode against
    the decoded cache, reading the cache (a memory map of its pixel file), moving each uint8
    batch to the device (``device_batches``), converting it to float, the model. An untimed
    first pass warms up the model (every batch shape) and builds the cache if needed.
    Files that do not decode are left out ("images" counts the others), named in one
    DatasetWarning from the first pass; they are tried again (and fail) in the timed pass.
    Returns {"images", "batch_size", "seconds", "fps", "index_seconds"}.
    """
    from course_utils.part_one.cache import load_cached_split
    from course_utils.part_one.data_spec import data_spec
    from course_utils.part_one.dataset import find_images

    device = torch.device(device)
    model = prepare_model(model, device, channels_last).eval()
    root = data_spec(data_dir, image_size, in_channels).data_dir  # None: built-in
    start = time.perf_counter()
    index = find_images(root)
    index_seconds = time.perf_counter() - start

    @torch.inference_mode()
    def run(warn: bool = False) -> int:
        images, _ = load_cached_split(index, split, image_size, in_channels,
                                      cache_dir=cache_dir, warn=warn)
        with autocast(device, amp):
            for batch in device_batches(images, batch_size, device):
                model(to_model_input(batch, device, channels_last))
        return len(images)

    count = run(warn=True)  # warm-up (and cache build on the very first call)
    seconds = timed_seconds(run, device)
    return {"images": count, "batch_size": batch_size, "seconds": seconds,
            "fps": count / seconds, "index_seconds": index_seconds}


#: The former name of ``warm_fps`` (it was labelled "end-to-end" before the cold path existed).
end_to_end_fps = warm_fps
