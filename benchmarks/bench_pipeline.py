"""Data pipeline: warm FPS (files -> decoded cache -> model) against model-only FPS, on CPU.

For each image size, in one run: model-only FPS (test images already in memory as float
tensors) and warm FPS (listing the files, checking them against the decoded cache, reading
it, converting, the model; "end-to-end" before the cold path existed) over the built-in test
split at batch 32. Target: warm / model-only >= 0.90 at 64x64 and at 256x256.
The cold path (every file decoded) is benchmarks/bench_cold.py.

    .venv/bin/python benchmarks/bench_pipeline.py [--sizes 64 256] [--batch-size 32]
"""

from __future__ import annotations

import argparse

import torch

from course_utils.part_one import bench
from course_utils.part_one.cache import load_cached_splits
from course_utils.part_one.model import ReportCNN


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    device = torch.device("cpu")
    for size in args.sizes:
        splits, classes = load_cached_splits(args.data_dir, size, 1)  # builds the cache once
        images = splits["test"][0]
        torch.manual_seed(0)
        model = ReportCNN(1, len(classes))
        model_only = bench.model_only_fps(model, images, args.batch_size, device,
                                          channels_last=True, warmup_batches=1)
        warm = bench.warm_fps(model, args.data_dir, size, 1, args.batch_size, device,
                              channels_last=True)
        print(f"{size}x{size}, batch {args.batch_size}, {len(images)} test images, "
              f"{torch.get_num_threads()} threads: model-only {model_only['fps']:.2f} FPS, "
              f"warm {warm['fps']:.2f} FPS", flush=True)
        print(f"RATIO warm/model-only at {size}x{size} = "
              f"{warm['fps'] / model_only['fps']:.3f} (target >= 0.90)", flush=True)


if __name__ == "__main__":
    main()
