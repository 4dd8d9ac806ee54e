"""The model against the machine: batch-1 latency percentiles, the device's dense
matrix-multiply GFLOP/s (its ceiling), the model's GFLOPs per image and achieved GFLOP/s
beside that ceiling, and the record that stores measurements with the machine's description.

GFLOPs per image come from ``course_utils.part_one.model.total_flops``
(torch.utils.flop_counter); achieved GFLOP/s is set beside the same device's matrix-multiply
GFLOP/s measured in the same run, so their ratio says how close the model runs to what the
hardware can do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from course_utils.part_one.devices import (
    autocast,
    environment_info,
    prepare_model,
    timed_seconds,
)
from course_utils.part_one.loaders import to_model_input


def latency_percentiles(model: nn.Module, images: torch.Tensor, device: torch.device | str, *,
                        amp: str | None = None, channels_last: bool = False,
                        warmup: int = 2, percentiles: Sequence[int] = (50, 90, 99)
                        ) -> dict[str, float]:
    """Per-image latency at batch 1, in milliseconds: {"p50": ..., "p90": ..., "p99": ...}.

    images: uint8 (N, C, H, W); each image is timed alone (with a device sync).
    """
    device = torch.device(device)
    model = prepare_model(model, device, channels_last).eval()
    x = to_model_input(images, device, channels_last)
    times = []
    with torch.inference_mode(), autocast(device, amp):
        for i in range(warmup):
            model(x[i % len(x)][None])
        for i in range(len(x)):
            times.append(timed_seconds(lambda i=i: model(x[i][None]), device))
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
    best = min(timed_seconds(lambda: a @ b, device) for _ in range(repeats))
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
