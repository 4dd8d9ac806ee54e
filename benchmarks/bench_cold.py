"""Cold FPS (every file decoded and resized, then the model) against decode-only, on CPU.

The report's 59.21 FPS most likely included decoding: its loop read the test images from the
files. Cold is that loop: a DataLoader over the files (``cold_path.file_loader``: N worker
processes decoding with ``course_utils.part_one.decode.load_image``) whose chunks are joined into
batches
and run through the model (``cold_path.cold_fps``). Decode-only is the same DataLoader on the same
workers without the model: the most cold can reach when decoding is the slower stage. In one
run, over the built-in test split, at each image size: cold (each time beside decode-only),
warm (decoded cache) and model-only take turns ``--repeats`` times; for each the run with the
median FPS is kept.

RATIO cold/decode-only: target >= 0.9 when decoding is the slower stage (as on a GPU, where
the model is far faster than the CPU's decoding); where the model is the slower stage (a small
CPU), the line says so, and cold / model-only says how much of the model's speed is left.

    .venv/bin/python benchmarks/bench_cold.py [--sizes 64] [--batch-size 32] [--workers N]
"""

from __future__ import annotations

import argparse

import torch

from course_utils.instructor.solutions.timing import measure_fps  # notebook 04's solution
from course_utils.part_one import cold_path, fps
from course_utils.part_one.cache import load_cached_splits
from course_utils.part_one.data_spec import data_spec
from course_utils.part_one.devices import environment_info
from course_utils.part_one.model import ReportCNN


def median_run(rows: list[dict]) -> dict:
    """The row with the median FPS (an odd count gives the middle one)."""
    return sorted(rows, key=lambda row: row["fps"])[len(rows) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=None,
                        help="DataLoader worker processes (default: the CPU cores usable)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="rounds of cold (with decode-only), warm and model-only, in turn")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    device = torch.device("cpu")
    print(f"CPU: {environment_info(device)['cpu']}, {torch.get_num_threads()} torch threads",
          flush=True)
    for size in args.sizes:
        splits, classes = load_cached_splits(data_spec(args.data_dir, size, 1))  # cached once
        images = splits["test"][0]
        torch.manual_seed(0)
        model = ReportCNN(1, len(classes))
        runs = {"cold": [], "warm": [], "model-only": []}
        for _ in range(args.repeats):  # the three paths take turns: drift hits them alike
            runs["cold"].append(cold_path.cold_fps(model, args.data_dir, size, 1, args.batch_size,
                                                   device, workers=args.workers,
                                                   channels_last=True))
            runs["warm"].append(fps.warm_fps(model, args.data_dir, size, 1, args.batch_size,
                                             device, channels_last=True,
                                                         measure_fps=measure_fps))
            runs["model-only"].append(fps.model_only_fps(model, images, args.batch_size,
                                                         device, channels_last=True,
                                                         measure_fps=measure_fps))
        cold, warm, model_only = (median_run(runs[name]) for name in runs)
        print(f"{size}x{size}, batch {args.batch_size}, {cold['images']} test images, "
              f"{cold['workers']} workers (chunks of {cold['chunk_size']}): decode-only "
              f"{cold['decode_only_fps']:.2f} FPS, cold {cold['fps']:.2f} FPS, warm "
              f"{warm['fps']:.2f} FPS, model-only {model_only['fps']:.2f} FPS", flush=True)
        slower = ("decoding" if cold["decode_only_fps"] < model_only["fps"] else "the model")
        print(f"slower stage here: {slower} (decode-only {cold['decode_only_fps']:.2f} against "
              f"model-only {model_only['fps']:.2f} FPS)")
        print(f"RATIO cold/decode-only at {size}x{size} = {cold['cold_over_decode_only']:.3f} "
              "(target >= 0.9 where decoding is the slower stage)")
        print(f"RATIO cold/model-only at {size}x{size} = {cold['fps'] / model_only['fps']:.3f} "
              "(where the model is the slower stage: the share of its speed left when the "
              "workers decode on the same cores)")
        print(f"RATIO warm/cold at {size}x{size} = {warm['fps'] / cold['fps']:.3f} "
              "(what the decoded cache saves)", flush=True)


if __name__ == "__main__":
    main()
