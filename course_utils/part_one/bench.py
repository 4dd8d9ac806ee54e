"""CPU timing by the median of repeated calls (``median_seconds``), and notebook 07's 3x3
convolution timed three ways: loops, im2col and torch conv2d (``conv_timings``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from course_utils.validation import require_int


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    """CPU wall-clock seconds of ``run()``: the median of ``repeats`` calls, no warm-up.

    The median ignores the odd slow call (another process, a cold cache). CPU only: there is
    no device synchronisation (see ``devices.timed_seconds`` for that).
    """
    repeats = require_int("repeats", repeats)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


#: conv(x, w, b, stride, pad): notebook 07's loops or im2col convolution, passed in.
ConvForward = Callable[..., object]


def _conv_timing_row(x: np.ndarray, w: np.ndarray, repeats: int, loops: ConvForward,
                     im2col: ConvForward) -> dict[str, float]:
    """Median forward seconds of one 3x3 convolution (stride 1, padding 1) three ways.

    x (N, C, H, W), w (F, C, 3, 3), float32; zero bias. The loops get ``max(1, repeats // 2)``
    calls (they are slow), im2col and torch conv2d ``repeats`` each.
    """
    from torch.nn import functional as F

    b = np.zeros(w.shape[0], dtype=w.dtype)
    xt, wt, bt = (torch.from_numpy(v) for v in (x, w, b))
    return {
        "loops": median_seconds(lambda: loops(x, w, b, 1, 1), max(1, repeats // 2)),
        "im2col": median_seconds(lambda: im2col(x, w, b, 1, 1), repeats),
        "torch conv2d": median_seconds(lambda: F.conv2d(xt, wt, bt, padding=1), repeats)}


def conv_timings(sizes: Sequence[int], channels: int, batch: int, repeats: int,
                 seed: int = 0, *, conv_forward_loops: ConvForward,
                 conv_forward: ConvForward) -> pd.DataFrame:
    """Forward time of a 3x3 convolution: the loops, im2col and torch conv2d, per image size.

    conv_forward_loops, conv_forward: notebook 07's two convolutions, (x, w, b, stride, pad).
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
        rows.append({"size": size, **_conv_timing_row(x, w, repeats, conv_forward_loops,
                                                       conv_forward)})
    timings = pd.DataFrame(rows).set_index("size")
    timings["loops / im2col"] = timings["loops"] / timings["im2col"]
    timings["im2col / torch"] = timings["im2col"] / timings["torch conv2d"]
    return timings
