"""The device a run uses: choosing it, placing the model on it, bf16 autocast, waiting for it
(and timing work on it), and the description of the machine stored with every result."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn


def available_devices() -> list[str]:
    """Device types usable here, best first (always ends with "cpu")."""
    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.append("mps")
    return [*found, "cpu"]


def select_device(requested: str = "auto") -> torch.device:
    """"auto" picks cuda, then mps, then cpu; an explicit device must exist here.

    requested: "auto", "cpu", "cuda", "cuda:1", "mps".
    """
    available = available_devices()
    if requested in (None, "auto"):
        return torch.device(available[0])
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise ValueError(f"device {requested!r} is not a device name; use 'auto' or one of "
                         f"{available}") from None
    if device.type not in available:
        raise ValueError(f"device {requested!r} was requested but is not available on this "
                         f"machine; available: {available} (or use device='auto')")
    if device.type == "cuda" and device.index is not None \
            and device.index >= torch.cuda.device_count():
        raise ValueError(f"device {requested!r} does not exist: this machine has "
                         f"{torch.cuda.device_count()} CUDA device(s)")
    return device


def prepare_model(model: nn.Module, device: torch.device | str,
                  channels_last: bool = False) -> nn.Module:
    """``model`` moved to ``device``, in channels_last layout if asked (same maths, faster).

    Its mode is left as it is: inference calls ``.eval()`` on the result.
    """
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return model


def autocast(device: torch.device, amp: str | None):
    """bf16 autocast when asked, else a no-op context."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp == "bf16")


def synchronize(device: torch.device | str) -> None:
    """Wait for queued work on ``device`` to finish (CUDA/MPS are asynchronous)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def timed_seconds(run: Callable[[], Any], device: torch.device) -> float:
    """Seconds that ``run()`` takes, synchronising the device before and after."""
    synchronize(device)
    start = time.perf_counter()
    run()
    synchronize(device)
    return time.perf_counter() - start


def environment_info(device: torch.device | str = "cpu") -> dict[str, Any]:
    """Device, processor names, thread count and library versions (stored with every result)."""
    device = torch.device(device)
    info = {"device": str(device), "cpu": _cpu_name(), "threads": torch.get_num_threads(),
            "python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "platform": platform.platform()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    return info


def _cpu_name() -> str:
    """The processor's model name (from /proc/cpuinfo on Linux, else platform)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
