"""Speed of the from-scratch convolution (course_utils.part_two.scratch) against PyTorch and the
loops.

    .venv/bin/python benchmarks/bench_conv.py               # one thread for numpy and torch
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_conv.py   # two threads each

Times the forward pass on x (8, 64, 32, 32), w (64, 64, 3, 3), stride 1, padding 1, float32:
- ours: ``scratch.conv_forward`` (im2col with the batch folded into one big GEMM);
- per-image layout: torch-style unfold (N, C*KH*KW, L) and a batched matmul, for comparison;
- torch: ``torch.nn.functional.conv2d``;
- loops: ``scratch.conv_forward_loops`` on a slice (first image, first few filters), scaled up
  by the number of outputs (its cost is one Python iteration per output value).
All are timed in the same run, interleaved, and every ratio is a ratio of medians.
Targets: ours within 2x of torch; ours at least 100x faster than the loops.
"""

from __future__ import annotations

import os

# Thread counts must be fixed before numpy and torch load their thread pools; the same count
# for both makes the comparison fair on a shared machine.
THREADS = os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", THREADS)
os.environ.setdefault("MKL_NUM_THREADS", THREADS)

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout
from course_utils.atomic import atomic_write_json  # noqa: E402
from course_utils.instructor.solutions import im2col as scratch  # noqa: E402  (07's solutions)
from course_utils.part_one.bench import median_seconds  # noqa: E402


def seconds(run: Callable[[], object]) -> float:
    """Wall time of one call of run(): the interleaved loop below needs single calls."""
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def per_image_layout(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Convolution from the unfold layout (N, C*KH*KW, L): a batched matmul per image."""
    f, _, kh, kw = w.shape
    cols = scratch.im2col(x, kh, kw, 1, 1)  # a transposed view: matmul must gather it
    out = np.matmul(w.reshape(f, -1), cols) + b[:, None]
    return out.reshape(x.shape[0], f, x.shape[2], x.shape[3])


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=9, help="timed runs of each (default 9)")
    parser.add_argument("--loop-filters", type=int, default=4,
                        help="filters in the loop reference's slice (default 4 of 64)")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    args = parser.parse_args(argv)
    if args.repeats < 1 or not 1 <= args.loop_filters <= 64:
        parser.error("--repeats must be >= 1 and --loop-filters in 1..64")
    torch.set_num_threads(int(THREADS))

    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 64, 32, 32)).astype(np.float32)
    w = (rng.normal(size=(64, 64, 3, 3)) / 24).astype(np.float32)
    b = rng.normal(size=64).astype(np.float32)
    xt, wt, bt = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)

    ours, _ = scratch.conv_forward(x, w, b, 1, 1)
    reference = F.conv2d(xt, wt, bt, padding=1).numpy()
    error = float(np.max(np.abs(ours - reference)))
    if error > 1e-3:
        raise SystemExit(f"conv_forward disagrees with torch conv2d: max |diff| = {error:.1e}")

    runs: dict[str, Callable[[], object]] = {
        "ours (im2col, one GEMM)": lambda: scratch.conv_forward(x, w, b, 1, 1),
        "per-image layout (batched matmul)": lambda: per_image_layout(x, w, b),
        "torch conv2d": lambda: F.conv2d(xt, wt, bt, padding=1),
    }
    for run in runs.values():  # warm-up: first calls allocate and build kernels
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):  # interleaved, so drift on a shared machine hits all alike
        for name, run in runs.items():
            times[name].append(seconds(run))
    median = {name: statistics.median(values) for name, values in times.items()}

    # Loop reference on a slice: one image, the first loop_filters filters (same C, same H, W)
    slice_w, slice_b = w[:args.loop_filters], b[:args.loop_filters]
    scale = x.shape[0] * w.shape[0] / args.loop_filters
    loop_repeats = max(1, args.repeats // 3)
    median["loops (scaled from slice)"] = scale * median_seconds(
        lambda: scratch.conv_forward_loops(x[:1], slice_w, slice_b, 1, 1), loop_repeats)

    ours_time = median["ours (im2col, one GEMM)"]
    ratios = {
        "ours / torch conv2d": ours_time / median["torch conv2d"],
        "per-image layout / torch conv2d": median["per-image layout (batched matmul)"]
        / median["torch conv2d"],
        "loops / ours": median["loops (scaled from slice)"] / ours_time,
    }
    print(f"x (8, 64, 32, 32), w (64, 64, 3, 3), stride 1, pad 1, float32; "
          f"threads: numpy BLAS {os.environ['OPENBLAS_NUM_THREADS']}, "
          f"torch {torch.get_num_threads()}; median of {args.repeats} runs")
    print(f"max |ours - torch| = {error:.1e}")
    for name, value in median.items():
        print(f"  {name:36s} {value * 1e3:10.2f} ms")
    print(f"  (loops: timed on x[:1] with {args.loop_filters} filters, median of "
          f"{loop_repeats}, scaled x{scale:g} by the number of outputs)")
    print(f"ours / torch conv2d = {ratios['ours / torch conv2d']:.2f}   (target <= 2)")
    print(f"per-image layout / torch conv2d = {ratios['per-image layout / torch conv2d']:.2f}")
    print(f"loops / ours = {ratios['loops / ours']:.0f}   (target >= 100)")
    if args.json is not None:
        atomic_write_json(args.json, {"median_seconds": median, "ratios": ratios,
                                      "threads": int(THREADS), "repeats": args.repeats})
    return ratios


if __name__ == "__main__":
    main()
