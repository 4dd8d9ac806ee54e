"""Measuring inference speed the way the report defines it, and against the machine's limit.

The report (Part One, Model): "For finding the model's FPS, we run it on the test dataset,
which contains 6588 images, and we got 59.21 FPS": images per second over the whole test split.

Three measurements of that, side by side:
- model-only: the test images already in memory as float tensors on the device;
- cold (``cold_fps``): from the files, every one decoded and resized again, in a DataLoader
  with N worker processes, through the model: what the report's loop measures. Beside it the
  same DataLoader without the model (decode-only), the limit when decoding dominates;
- warm (``warm_fps``): from the files through the decoded cache of ``course_utils.part_one.cache``
  (each file checked against it, pixels read from its memory map), through the model.
Cold and warm are both "end-to-end" (files to predictions); warm skips the decoding.
All: every batch shape run once before the clock starts (warm-up: kernel choice, cuDNN
autotuning, torch.compile), ``torch.inference_mode``, and a device synchronisation before the
clock stops (CUDA runs asynchronously: without it we would time the launch, not the work).

GFLOPs per image come from ``course_utils.part_one.model.total_flops`` (torch.utils.flop_counter);
achieved GFLOP/s is set beside the same device's dense matrix-multiply GFLOP/s measured in
the same run, so their ratio says how close the model runs to what the hardware can do.
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from course_utils.part_one.timing import measure_fps
from course_utils.part_one.train import _autocast, environment_info, to_model_input
from course_utils.paths import PROJECT_ROOT, display_path

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


def synchronize(device: torch.device | str) -> None:
    """Wait for queued work on ``device`` to finish (CUDA/MPS are asynchronous)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def prepare_model(model: nn.Module, device: torch.device | str,
                  channels_last: bool = False) -> nn.Module:
    """The model on ``device``, in eval mode, optionally in channels_last memory format."""
    model = model.to(device).eval()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def _batches(x: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    """Split (N, ...) into consecutive batches of ``batch_size`` (the last may be smaller)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return list(torch.split(x, batch_size))


def _timed(run: Callable[[], Any], device: torch.device) -> float:
    """Seconds that ``run()`` takes, synchronising the device before and after."""
    synchronize(device)
    start = time.perf_counter()
    run()
    synchronize(device)
    return time.perf_counter() - start


def model_only_fps(model: nn.Module, images: torch.Tensor, batch_size: int,
                   device: torch.device | str, *, amp: str | None = None,
                   channels_last: bool = False, warmup_batches: int = 2,
                   warmup_last: bool = True) -> dict[str, Any]:
    """Images per second of the model alone over ``images`` (uint8 (N, C, H, W)).

    The images are converted to float on the device before the clock starts.
    warmup_last: also run the last (smaller) batch before timing, so that every batch shape
    of the timed pass has run once, as in ``warm_fps`` and ``cold_fps`` (whose warm-up is a
    whole pass). A new shape costs cuDNN autotuning (``cudnn.benchmark``) or a torch.compile
    recompilation on its first call: left inside the timed pass, it made model-only at batch
    256 slower than the warm path in results/gpu_fps.json (6,588 = 25 x 256 + 188).
    The timing itself is ``timing.measure_fps`` (written in notebook 04): warm-up untimed, a
    device synchronisation before each clock read.
    Returns {"images", "batch_size", "seconds", "fps", "warmed_last"}.
    """
    device = torch.device(device)
    model = prepare_model(model, device, channels_last)
    x = to_model_input(images, device, channels_last)
    batches = _batches(x, batch_size)
    warmup = batches[:warmup_batches]  # first calls pick kernels and allocate buffers
    if warmup_last and len(batches[-1]) != len(batches[0]):
        warmup.append(batches[-1])
    with torch.inference_mode(), _autocast(device, amp):
        timed = measure_fps(model, batches, warmup, lambda: synchronize(device),
                            time.perf_counter)
    return {"images": timed["images"], "batch_size": batch_size, "seconds": timed["seconds"],
            "fps": timed["fps"], "warmed_last": warmup_last}


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
    from course_utils.part_one.data import find_images

    device = torch.device(device)
    model = prepare_model(model, device, channels_last)
    start = time.perf_counter()
    index = find_images(data_dir)
    index_seconds = time.perf_counter() - start

    @torch.inference_mode()
    def run(warn: bool = False) -> int:
        images, _ = load_cached_split(index, split, image_size, in_channels,
                                      cache_dir=cache_dir, warn=warn)
        with _autocast(device, amp):
            for batch in device_batches(images, batch_size, device):
                model(to_model_input(batch, device, channels_last))
        return len(images)

    count = run(warn=True)  # warm-up (and cache build on the very first call)
    seconds = _timed(run, device)
    return {"images": count, "batch_size": batch_size, "seconds": seconds,
            "fps": count / seconds, "index_seconds": index_seconds}


#: The former name of ``warm_fps`` (it was labelled "end-to-end" before the cold path existed).
end_to_end_fps = warm_fps


# ---- the cold path: every file decoded and resized, in a DataLoader ---------------------------

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

    Item i: ``course_utils.part_one.data.load_image`` of file i as a uint8 tensor (in_channels,
    image_size, image_size): the same pixels as the decoded cache. Pillow decodes, converts
    to "L" and resizes; ``benchmarks/bench_decode.py`` times the alternatives (torchvision's
    ``decode_png`` / ``decode_image``, torch's antialiased resize, Pillow's ``reducing_gap``):
    on the 2-core test machine none whose pixels stay within 1 grey level was faster by more
    than the noise of the run, and torchvision 0.29 deprecates its decoders. A file that does
    not decode gives its (path, reason) instead (``ReadableBatch`` leaves it out of the batch).
    """

    def __init__(self, paths: Sequence[str | Path], image_size: int, in_channels: int) -> None:
        from course_utils.part_one.data import _check_load_params

        _check_load_params(image_size, in_channels)
        self.paths = [os.fspath(path) for path in paths]
        self.image_size, self.in_channels = image_size, in_channels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor | tuple[Path, str]:
        from course_utils.part_one.data import UnreadableImageError, load_image

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
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
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
    from course_utils.part_one.data import check_split_readable, find_images, warn_unreadable

    if int(repeats) < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    device = torch.device(device)
    workers = default_workers() if workers is None else workers
    chunk_size = chunk_size or min(batch_size, CHUNK_SIZE)
    model = prepare_model(model, device, channels_last)
    start = time.perf_counter()
    index = find_images(data_dir)
    index_seconds = time.perf_counter() - start
    paths = [path for path, _ in index.files[split]]
    loader = file_loader(paths, image_size, in_channels, chunk_size=chunk_size,
                         workers=workers, device=device)

    @torch.inference_mode()
    def run() -> None:
        with _autocast(device, amp):
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
    with torch.inference_mode(), _autocast(device, amp):
        for size in sorted(shapes):
            zeros = torch.zeros((size, in_channels, image_size, image_size), dtype=torch.uint8)
            model(to_model_input(zeros, device, channels_last))
    if warn:
        warn_unreadable(index.root, skipped)
    decode_times, cold_times = [], []
    for _ in range(int(repeats)):
        decode_times.append(_timed(decode_only, device))
        cold_times.append(_timed(run, device))
    seconds, decode_seconds = float(np.median(cold_times)), float(np.median(decode_times))
    return {"images": count, "batch_size": batch_size, "workers": workers,
            "chunk_size": chunk_size, "seconds": seconds, "fps": count / seconds,
            "decode_only_seconds": decode_seconds, "decode_only_fps": count / decode_seconds,
            "cold_over_decode_only": decode_seconds / seconds,
            "index_seconds": index_seconds, "skipped": len(skipped)}


def fps_sweep(model: nn.Module, images: torch.Tensor, batch_sizes: Sequence[int],
              device: torch.device | str, *, amp: str | None = None,
              channels_last: bool = False) -> list[dict[str, Any]]:
    """``model_only_fps`` at each batch size: one row per batch size."""
    return [model_only_fps(model, images, b, device, amp=amp, channels_last=channels_last)
            for b in batch_sizes]


def latency_percentiles(model: nn.Module, images: torch.Tensor, device: torch.device | str, *,
                        amp: str | None = None, channels_last: bool = False,
                        warmup: int = 2, percentiles: Sequence[int] = (50, 90, 99)
                        ) -> dict[str, float]:
    """Per-image latency at batch 1, in milliseconds: {"p50": ..., "p90": ..., "p99": ...}.

    images: uint8 (N, C, H, W); each image is timed alone (with a device sync).
    """
    device = torch.device(device)
    model = prepare_model(model, device, channels_last)
    x = to_model_input(images, device, channels_last)
    times = []
    with torch.inference_mode(), _autocast(device, amp):
        for i in range(warmup):
            model(x[i % len(x)][None])
        for i in range(len(x)):
            times.append(_timed(lambda i=i: model(x[i][None]), device))
    milliseconds = np.array(times) * 1000
    return {f"p{p}": float(np.percentile(milliseconds, p)) for p in percentiles}


def matmul_gflops(device: torch.device | str, size: int = 2048, repeats: int = 5,
                  dtype: torch.dtype = torch.float32) -> float:
    """The device's dense matrix-multiply speed: GFLOP/s of (size x size) @ (size x size).

    2 * size^3 floating-point operations per product; the best of ``repeats`` timings
    (the least disturbed by other work on the machine).
    """
    device = torch.device(device)
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator).to(device, dtype)
    b = torch.randn(size, size, generator=generator).to(device, dtype)
    a @ b  # warm-up
    best = min(_timed(lambda: a @ b, device) for _ in range(repeats))
    return 2 * size ** 3 / best / 1e9


def gflops_per_image(model: nn.Module, image_size: int, in_channels: int) -> float:
    """Forward-pass GFLOPs for one image (torch.utils.flop_counter via
    course_utils.part_one.model)."""
    from course_utils.part_one.model import total_flops

    return total_flops(model, image_size, in_channels) / 1e9


def efficiency(fps: float, gflops_image: float, matmul: float) -> dict[str, float]:
    """Achieved GFLOP/s (fps x GFLOPs per image) and its ratio to matmul GFLOP/s."""
    achieved = fps * gflops_image
    return {"achieved_gflops": achieved, "matmul_gflops": matmul,
            "ratio_to_matmul": achieved / matmul}


def benchmark_record(device: torch.device | str, **measurements: Any) -> dict[str, Any]:
    """A result to store: the measurements plus device, processor, threads and versions."""
    return {"environment": environment_info(device), **measurements}


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """An inference copy of ``model`` with each ``bnX`` folded into its ``convX``.

    In eval mode batch norm is a fixed per-channel scale and shift, so it can be merged into
    the convolution's weights and bias: one pass over the feature maps instead of two.
    Pairs are found by name (conv1/bn1, conv4_1/bn4_1, ...), as in ReportCNN.
    """
    folded = copy.deepcopy(model).eval()
    for name, module in list(folded.named_children()):
        bn_name = "bn" + name[len("conv"):]
        if name.startswith("conv") and isinstance(getattr(folded, bn_name, None),
                                                  nn.BatchNorm2d):
            setattr(folded, name, fuse_conv_bn_eval(module, getattr(folded, bn_name)))
            setattr(folded, bn_name, nn.Identity())
    return folded


#: Inference variants measured by benchmarks/gpu_check.py (see ``inference_variant``).
VARIANTS = ("plain", "folded", "folded+compile")


def inference_variant(model: nn.Module, variant: str, device: torch.device | str,
                      channels_last: bool = False) -> nn.Module:
    """``model`` prepared for inference on ``device`` as ``variant`` (one of VARIANTS).

    "folded": batch norm folded into the convolutions (``fold_batchnorm``);
    "folded+compile": that, through ``torch.compile(dynamic=False)``: one static graph per
    batch shape (a split's last, smaller batch gets its own), fused kernels. Compiling takes
    minutes on a small CPU, so use it on a GPU; the first calls of each shape are slow.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if variant != "plain":
        model = fold_batchnorm(model)
    model = prepare_model(model, device, channels_last)
    if variant == "folded+compile":
        model = torch.compile(model, dynamic=False)
    return model


# ---- committed GPU results and figures for notebook 04 -----------------------------------------

#: Written by benchmarks/gpu_check.sh on a GPU machine and committed by the integrator.
GPU_RESULT = PROJECT_ROOT / "results" / "gpu_fps.json"


def load_gpu_result(path: str | Path = GPU_RESULT) -> dict[str, Any] | None:
    """The committed GPU FPS result, or None when there is none yet."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise ValueError(f"{display_path(path)} is not valid JSON ({error}); rerun "
                         "benchmarks/gpu_check.sh or delete the file") from None


def run_label(record: dict[str, Any], name: str) -> str:
    """The precision label of run ``name`` of a GPU result, saying TF32 where it was TF32.

    Runs written since the TF32 / fp32 split carry "precision" and are named by it ("tf32",
    "fp32": TF32 off, "bf16"). In older results the run "fp32" (amp None) ran its
    convolutions in TF32 whenever the record's "tf32" settings say cuDNN could
    (``cudnn_conv`` true, PyTorch's default): it is labelled "TF32 (stored as fp32)".
    """
    run = record["runs"][name]
    if "precision" in run or run.get("amp") is not None or "fp32" not in name:
        return name
    if record.get("tf32", {}).get("cudnn_conv"):
        return name.replace("fp32", "TF32") + " (stored as fp32)"
    return name


def run_path(run: dict[str, Any], path: str) -> dict[str, Any] | None:
    """The "warm" or "cold" measurement of a GPU run; older results stored warm as
    "end_to_end" (read here as warm). None when the run has no such measurement."""
    if path == "warm":
        return run.get("warm") or run.get("end_to_end")
    if path == "cold":
        return run.get("cold")
    raise ValueError(f"path must be 'warm' or 'cold', got {path!r}")


def gpu_summary(record: dict[str, Any]) -> pd.DataFrame:
    """One row per run of a GPU result: precision (TF32 where it was: ``run_label``), device,
    best model-only FPS, cold FPS (files decoded; NaN where not measured) with decode-only FPS
    and their ratio, warm FPS (decoded cache), and cold and warm as multiples of the report."""
    environment = record["environment"]
    report_fps = record["report"]["fps"]
    rows = []
    for name, run in record["runs"].items():
        best = max(run["model_only"], key=lambda row: row["fps"])
        warm, cold = run_path(run, "warm"), run_path(run, "cold")
        nan = float("nan")
        rows.append({"precision": run_label(record, name),
                     "device": environment.get("gpu", environment["device"]),
                     "image_size": record["image_size"], "test_images": record["test_images"],
                     "model_only_fps": round(best["fps"], 1), "at_batch": best["batch_size"],
                     "cold_fps": round(cold["fps"], 1) if cold else nan,
                     "decode_only_fps": round(cold["decode_only_fps"], 1) if cold else nan,
                     "cold/decode": round(cold["cold_over_decode_only"], 3) if cold else nan,
                     "warm_fps": round(warm["fps"], 1), "batch": warm["batch_size"],
                     "x_report_cold": round(cold["fps"] / report_fps, 1) if cold else nan,
                     "x_report_warm": round(warm["fps"] / report_fps, 1)})
    return pd.DataFrame(rows)


def end_to_end_table(model_only: Sequence[dict], cold: Sequence[dict],
                     warm: Sequence[dict]) -> pd.DataFrame:
    """One row per batch size measured end to end: decode-only, cold, warm and model-only FPS
    (model-only: NaN where the sweep skipped that batch size) and their ratios."""
    by_batch = {r["batch_size"]: r["fps"] for r in model_only}
    cold_by_batch = {r["batch_size"]: r for r in cold}
    rows = []
    for row in warm:
        batch = row["batch_size"]
        c = cold_by_batch.get(batch, {})
        model = by_batch.get(batch, float("nan"))
        rows.append({"batch_size": batch, "images": row["images"],
                     "decode_only_fps": c.get("decode_only_fps", float("nan")),
                     "cold_fps": c.get("fps", float("nan")), "warm_fps": row["fps"],
                     "model_only_fps": model,
                     "cold/decode-only": c.get("cold_over_decode_only", float("nan")),
                     "cold/model-only": c.get("fps", float("nan")) / model,
                     "warm/model-only": row["fps"] / model})
    return pd.DataFrame(rows)


def cold_verdict(cold: dict, model_only_fps: float, target: float = 0.9) -> str:
    """What one cold measurement says, in words computed from its numbers.

    Names the slower stage (decode-only against model-only FPS) and whether cold reached
    ``target`` of it: the words follow the numbers of the run, never the other way round.
    """
    decode, ratio = cold["decode_only_fps"], cold["cold_over_decode_only"]
    head = (f"batch {cold['batch_size']}, {cold['workers']} worker(s): decode-only "
            f"{decode:.1f} FPS, model-only {model_only_fps:.1f} FPS, cold {cold['fps']:.1f} FPS")
    if decode <= model_only_fps:
        reached = "reaches" if ratio >= target else "stays below"
        return (f"{head}. Decoding is the slower stage here; cold / decode-only = {ratio:.3f} "
                f"{reached} the target {target}: the model "
                f"{'hides' if ratio >= target else 'does not fully hide'} behind decoding.")
    share = cold["fps"] / model_only_fps
    why = ("below 1: the workers decode on the cores the model needs" if share < 1 else
           "not below 1: cold and model-only ran at different moments, and on a shared "
           "machine the difference is noise")
    return (f"{head}. The model is the slower stage here, so cold / decode-only "
            f"({ratio:.3f}) is not the measure; cold / model-only = {share:.3f} ({why}).")


def warm_gap_table(record: dict[str, Any]) -> pd.DataFrame:
    """Per run of a GPU result: warm FPS against model-only FPS at the warm batch size, the
    size of the split's last batch, and whether model-only ran that shape before timing.

    Results written before ``model_only_fps`` warmed up every shape (no "warmed_last" in the
    rows) warmed the last batch only for the variants (gpu_check.py passed warmup_last=True
    for torch.compile), not for the plain runs.
    """
    rows = []
    for name, run in record["runs"].items():
        warm = run_path(run, "warm")
        same = [r for r in run["model_only"] if r["batch_size"] == warm["batch_size"]]
        if not same:
            continue
        model = same[0]
        last = model["images"] % model["batch_size"] or model["batch_size"]
        warmed = model.get("warmed_last", run.get("variant", "plain") != "plain")
        rows.append({"run": run_label(record, name), "batch_size": model["batch_size"],
                     "last_batch": last, "last_shape_warmed_up": bool(warmed),
                     "model_only_s": round(model["seconds"], 3),
                     "warm_s": round(warm["seconds"], 3),
                     "model_only_fps": round(model["fps"], 1), "warm_fps": round(warm["fps"], 1),
                     "warm/model-only": round(warm["fps"] / model["fps"], 3)})
    return pd.DataFrame(rows)


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    """CPU wall-clock seconds of ``run()``: the median of ``repeats`` calls, no warm-up.

    The median ignores the odd slow call (another process, a cold cache). CPU only: there is
    no device synchronisation (see ``_timed`` for that).
    """
    if int(repeats) < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    times = []
    for _ in range(int(repeats)):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _conv_timing_row(x: np.ndarray, w: np.ndarray, repeats: int) -> dict[str, float]:
    """Median forward seconds of one 3x3 convolution (stride 1, padding 1) three ways.

    x (N, C, H, W), w (F, C, 3, 3), float32; zero bias. The loops get ``max(1, repeats // 2)``
    calls (they are slow), im2col and torch conv2d ``repeats`` each.
    """
    from torch.nn import functional as F

    from course_utils.part_two import scratch

    b = np.zeros(w.shape[0], dtype=w.dtype)
    xt, wt, bt = (torch.from_numpy(v) for v in (x, w, b))
    return {
        "loops": median_seconds(lambda: scratch.conv_forward_loops(x, w, b, 1, 1),
                                max(1, repeats // 2)),
        "im2col": median_seconds(lambda: scratch.conv_forward(x, w, b, 1, 1), repeats),
        "torch conv2d": median_seconds(lambda: F.conv2d(xt, wt, bt, padding=1), repeats)}


def conv_timings(sizes: Sequence[int], channels: int, batch: int, repeats: int,
                 seed: int = 0) -> pd.DataFrame:
    """Forward time of a 3x3 convolution: the loops, im2col and torch conv2d, per image size.

    For each size: x (batch, channels, size, size), w (channels, channels, 3, 3), normal
    random float32 from ``seed``; timed by ``_conv_timing_row``.
    Returns a DataFrame indexed by size with columns loops, im2col, torch conv2d (median
    seconds), loops / im2col and im2col / torch.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for size in sizes:
        x = rng.normal(size=(batch, channels, size, size)).astype(np.float32)
        w = rng.normal(size=(channels, channels, 3, 3)).astype(np.float32)
        rows.append({"size": size, **_conv_timing_row(x, w, repeats)})
    timings = pd.DataFrame(rows).set_index("size")
    timings["loops / im2col"] = timings["loops"] / timings["im2col"]
    timings["im2col / torch"] = timings["im2col"] / timings["torch conv2d"]
    return timings
