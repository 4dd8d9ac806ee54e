"""Data pipeline: warm FPS (files -> decoded cache -> model) against model-only FPS, on CPU.

For each image size, in one run: model-only FPS (test images already in memory as float
tensors) and warm FPS (listing the files, checking them against the decoded cache, reading
it, converting, the model; "end-to-end" before the cold path existed) over the built-in test
split at batch 32. Target: warm / model-only >= 0.90 at 64x64 and at 256x256. The two take
turns ``--repeats`` times and the medians are compared, so drift on a shared machine hits
both alike.
The cold path (every file decoded) is benchmarks/bench_cold.py.

    .venv/bin/python benchmarks/bench_pipeline.py [--sizes 64 256] [--batch-size 32] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics

import torch

from course_utils.instructor.solutions.timing import measure_fps  # notebook 04's solution
from course_utils.part_one import fps
from course_utils.part_one.cache import load_cached_splits
from course_utils.part_one.data_spec import data_spec
from course_utils.part_one.model import ReportCNN


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = torch.device("cpu")
    for size in args.sizes:
        spec = data_spec(args.data_dir, size, 1)  # None: the built-in dataset
        splits, classes = load_cached_splits(spec)  # builds the cache once
        images = splits["test"][0]
        torch.manual_seed(0)
        model = ReportCNN(1, len(classes))
        runs = {"model-only": [], "warm": []}
        for _ in range(args.repeats):
            runs["model-only"].append(fps.model_only_fps(
                model, images, args.batch_size, device, channels_last=True, measure_fps=measure_fps,
                warmup_batches=1)["fps"])
            runs["warm"].append(fps.warm_fps(model, spec.data_dir, size, 1, args.batch_size,
                                             device, channels_last=True)["fps"])
        model_only, warm = (statistics.median(runs[name]) for name in runs)
        print(f"{size}x{size}, batch {args.batch_size}, {len(images)} test images, "
              f"{torch.get_num_threads()} threads, median of {args.repeats}: model-only "
              f"{model_only:.2f} FPS, warm {warm:.2f} FPS", flush=True)
        print(f"RATIO warm/model-only at {size}x{size} = {warm / model_only:.3f} "
              "(target >= 0.90)", flush=True)


if __name__ == "__main__":
    main()
