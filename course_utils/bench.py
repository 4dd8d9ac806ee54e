"""Measuring inference speed the way the report defines it, and against the machine's limit.

The report (Part One, Model): "For finding the model's FPS, we run it on the test dataset,
which contains 6588 images, and we got 59.21 FPS": images per second over the whole test split.

Two measurements of that, side by side:
- model-only: the test images already in memory as float tensors on the device;
- end-to-end: from the files on disk (each checked against the decoded cache of
  ``course_utils.cache``, which is read from disk) through the model.
Both: a warm-up pass first, ``torch.inference_mode``, and a device synchronisation before the
clock stops (CUDA runs asynchronously: without it we would time the launch, not the work).

GFLOPs per image come from ``course_utils.model.total_flops`` (torch.utils.flop_counter);
achieved GFLOP/s is set beside the same device's dense matrix-multiply GFLOP/s measured in
the same run, so their ratio says how close the model runs to what the hardware can do.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .paths import PROJECT_ROOT, display_path
from .train import _autocast, environment_info, to_model_input

if TYPE_CHECKING:
    from matplotlib.figure import Figure

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
                   warmup_last: bool = False) -> dict[str, Any]:
    """Images per second of the model alone over ``images`` (uint8 (N, C, H, W)).

    The images are converted to float on the device before the clock starts.
    warmup_last: also run the last (smaller) batch before timing; a torch.compile'd model
    compiles again for each new shape, which must not land inside the timed pass.
    Returns {"images", "batch_size", "seconds", "fps"}.
    """
    device = torch.device(device)
    model = prepare_model(model, device, channels_last)
    x = to_model_input(images, device, channels_last)
    batches = _batches(x, batch_size)

    @torch.inference_mode()
    def run(selected: Sequence[torch.Tensor]) -> None:
        with _autocast(device, amp):
            for batch in selected:
                model(batch)

    warmup = batches[:warmup_batches]
    if warmup_last and len(batches[-1]) != len(batches[0]):
        warmup.append(batches[-1])
    run(warmup)  # first calls pick kernels and allocate buffers
    seconds = _timed(lambda: run(batches), device)
    return {"images": len(x), "batch_size": batch_size, "seconds": seconds,
            "fps": len(x) / seconds}


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


def end_to_end_fps(model: nn.Module, data_dir: str | Path | None, image_size: int,
                   in_channels: int, batch_size: int, device: torch.device | str, *,
                   split: str = "test", amp: str | None = None, channels_last: bool = False,
                   cache_dir: str | Path | None = None) -> dict[str, Any]:
    """Images per second from the files on disk through the model, over one whole split.

    Like one epoch of a DataLoader: the file index (``find_images``, which opens every
    header to validate the dataset) is built once, as a Dataset does when it is created, and
    timed separately ("index_seconds"). Timed per pass: checking every file's size, time and
    inode against the decoded cache, reading the cache (a memory map of its pixel file),
    moving each uint8 batch to the device (``device_batches``), converting it to float, the
    model. An untimed first pass warms up the model and builds the cache if needed.
    Files that do not decode are left out ("images" counts the others), named in one
    DatasetWarning from the first pass; they are tried again (and fail) in the timed pass.
    Returns {"images", "batch_size", "seconds", "fps", "index_seconds"}.
    """
    from .cache import load_cached_split
    from .data import find_images

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
    """Forward-pass GFLOPs for one image (torch.utils.flop_counter via course_utils.model)."""
    from .model import total_flops

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


def gpu_summary(record: dict[str, Any]) -> pd.DataFrame:
    """One row per precision of a GPU result: device, best model-only FPS, end-to-end FPS."""
    environment = record["environment"]
    rows = []
    for precision, run in record["runs"].items():
        best = max(run["model_only"], key=lambda row: row["fps"])
        rows.append({"precision": precision,
                     "device": environment.get("gpu", environment["device"]),
                     "image_size": record["image_size"], "test_images": record["test_images"],
                     "model_only_fps": round(best["fps"], 1),
                     "at_batch": best["batch_size"],
                     "end_to_end_fps": round(run["end_to_end"]["fps"], 1),
                     "end_to_end_batch": run["end_to_end"]["batch_size"],
                     "x_report": round(run["end_to_end"]["fps"] / record["report"]["fps"], 1)})
    return pd.DataFrame(rows)


def plot_fps_vs_batch(model_only: Sequence[dict], end_to_end: Sequence[dict],
                      report_fps: float) -> Figure:
    """FPS against batch size (log 2 axis): model-only line, end-to-end points, the report."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([r["batch_size"] for r in model_only], [r["fps"] for r in model_only], "o-",
            label="model-only (tensors in memory)")
    ax.plot([r["batch_size"] for r in end_to_end], [r["fps"] for r in end_to_end], "s",
            markersize=9, label="end-to-end (files -> cache -> model)")
    ax.axhline(report_fps, color="gray", linestyle=":", label=f"report: {report_fps} FPS")
    ax.set_xscale("log", base=2)
    ax.set_xticks([r["batch_size"] for r in model_only],
                  [str(r["batch_size"]) for r in model_only])
    ax.set(xlabel="batch size", ylabel="images per second", title="FPS against batch size")
    ax.legend()
    return fig


def plot_end_to_end_vs_model(model_only: Sequence[dict], end_to_end: Sequence[dict]) -> Figure:
    """Bars: end-to-end against model-only FPS at the batch sizes measured both ways."""
    import matplotlib.pyplot as plt

    by_batch = {r["batch_size"]: r["fps"] for r in model_only}
    shared = [r for r in end_to_end if r["batch_size"] in by_batch]
    positions = np.arange(len(shared))
    fig, ax = plt.subplots()
    ax.bar(positions - 0.2, [by_batch[r["batch_size"]] for r in shared], 0.4,
           label="model-only")
    ax.bar(positions + 0.2, [r["fps"] for r in shared], 0.4, label="end-to-end")
    ax.set_xticks(positions, [f"batch {r['batch_size']}" for r in shared])
    ax.set(ylabel="images per second", title="End-to-end against model-only")
    ax.legend()
    return fig


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

    from . import scratch

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
