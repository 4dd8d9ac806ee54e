"""GPU check: report-configuration FPS and one report-preset training epoch on CUDA.

Run by benchmarks/gpu_check.sh on a GPU machine (or on CPU with tiny sizes, to test it):
(a) builds the built-in dataset at FPS scale (the report's 6,588 test images by default),
    drawing images in parallel processes;
(b) measures notebook 04's FPS in the report configuration: 256x256, channels_last, fp32 and
    bf16 autocast, model-only over a few batch sizes up to 256 and end-to-end from the decoded
    cache, batch-1 latency percentiles, GFLOPs per image and the device's matmul GFLOP/s;
    then the faster inference variants (``--variants``; on CUDA by default "folded+compile":
    batch norm folded, torch.compile), bf16, model-only and end-to-end at the largest batch,
    stored as runs named "bf16 folded+compile" with their "variant";
(c) trains one epoch of the report preset on the device;
and writes gpu_fps.json and gpu_train.json into $OUT (if set) and results/. The last line
gives the best run's end-to-end FPS as a multiple of the report's (target >= 100x).

    python benchmarks/gpu_check.py                         # full size, on CUDA (~3 minutes)
    python benchmarks/gpu_check.py --device cpu --test-per-class 4 --train-per-class 4 \\
        --image-size 64 --batch-sizes 1 4 --fp32-batch-sizes 4 --variants folded \\
        --out /tmp/gpu_check                               # a quick test on CPU
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from course_utils import bench, data, report, train
from course_utils.atomic import atomic_write_bytes, atomic_write_json
from course_utils.cache import load_cached_splits
from course_utils.model import ReportCNN
from course_utils.paths import PROJECT_ROOT

STARTED = time.perf_counter()


def log(message: str) -> None:
    """Progress on stdout with the seconds since start (the run has a time limit)."""
    print(f"[{time.perf_counter() - STARTED:6.1f} s] {message}", flush=True)


def _draw_chunk(job: tuple[str, str, str, int, int]) -> int:
    """Draw images number start..stop-1 of one class and split (one worker's share)."""
    root, split, class_name, start, stop = job
    for number in range(start, stop):
        path = Path(root) / split / class_name / f"{class_name}_{number:04d}.png"
        if path.exists():  # a rerun keeps what an earlier run drew
            continue
        rng = np.random.default_rng(data._image_seed(0, split, class_name, number))
        atomic_write_bytes(path, data._png_bytes(data.draw_sample(class_name, rng)))
    return stop - start


def build_dataset(root: Path, train_per_class: int, test_per_class: int, workers: int) -> None:
    """The built-in dataset's images (same generator and seeds), drawn by ``workers`` processes."""
    counts = {"train": train_per_class, "test": test_per_class}
    chunk = 25
    jobs = [(str(root), split, class_name, start, min(start + chunk, counts[split]))
            for split in data.SPLITS for class_name in data.SAMPLE_CLASSES
            for start in range(0, counts[split], chunk)]
    total = sum(counts.values()) * len(data.SAMPLE_CLASSES)
    done = 0
    # spawn, not fork: a forked child of a process that has touched CUDA can hang.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        for number, count in enumerate(pool.map(_draw_chunk, jobs)):
            done += count
            if number % 40 == 39 or done == total:
                log(f"dataset: {done} / {total} images")


def measure_fps(root: Path, image_size: int, batch_sizes: dict[str, list[int]],
                device: torch.device, classes: list[str], test_images: torch.Tensor,
                variants: list[str]) -> dict:
    """Model-only sweep, end-to-end, latency, GFLOPs and matmul, for fp32 and bf16; then the
    ``variants`` (bf16 on CUDA) at the largest batch size.

    batch_sizes: {"fp32": [...], "bf16": [...]}, the model-only sweep of each precision.
    """
    torch.manual_seed(0)
    model = ReportCNN(1, len(classes))
    gflops = bench.gflops_per_image(model, image_size, 1)
    record = {"image_size": image_size, "test_images": len(test_images),
              "gflops_per_image": gflops,
              "report": {"fps": report.value("fps"), "test_images": report.value(
                  "fps_test_images"), "device": "not stated in the report"},
              "matmul_gflops": {}, "runs": {},
              # fp32 convolutions may use TF32 tensor cores (cuDNN's default) while the fp32
              # matmul reference does not (PyTorch's default): recorded so ratios can be read.
              "tf32": {"cudnn_conv": torch.backends.cudnn.allow_tf32,
                       "matmul": torch.backends.cuda.matmul.allow_tf32}}
    for amp, dtype in ((None, torch.float32), ("bf16", torch.bfloat16)):
        name = amp or "fp32"
        matmul = bench.matmul_gflops(device, size=8192 if device.type == "cuda" else 1024,
                                     dtype=dtype)
        record["matmul_gflops"][name] = matmul
        log(f"{name}: matmul {matmul:.0f} GFLOP/s; model-only sweep {batch_sizes[name]}")
        sweep = []
        for batch_size in batch_sizes[name]:
            row = bench.model_only_fps(model, test_images, batch_size, device, amp=amp,
                                       channels_last=True)
            row.update(bench.efficiency(row["fps"], gflops, matmul))
            sweep.append(row)
            log(f"  {name} batch {batch_size}: {row['fps']:.1f} FPS "
                f"({row['ratio_to_matmul']:.2f} of matmul)")
        largest = max(batch_sizes[name])
        end_to_end = bench.end_to_end_fps(model, root, image_size, 1, largest, device, amp=amp,
                                          channels_last=True)
        log(f"  {name} end-to-end batch {largest}: {end_to_end['fps']:.1f} FPS "
            f"(index built once in {end_to_end['index_seconds']:.2f} s)")
        latency = bench.latency_percentiles(model, test_images[:200], device, amp=amp,
                                            channels_last=True)
        log(f"  {name} latency at batch 1 (ms): " + ", ".join(f"{k} {v:.2f}"
                                                             for k, v in latency.items()))
        record["runs"][name] = {"variant": "plain", "amp": amp,
                                "model_only": sweep, "end_to_end": end_to_end,
                                "latency_ms_batch1": latency,
                                "end_to_end_over_report": end_to_end["fps"]
                                / report.value("fps")}
    amp = "bf16" if device.type == "cuda" else None  # bf16 autocast on a CPU is slow
    largest = max(batch_sizes["bf16"])
    for variant in variants:
        name = f"{amp or 'fp32'} {variant}"
        log(f"{name}: preparing (torch.compile takes a while on the first batches)")
        fast = bench.inference_variant(model, variant, device, channels_last=True)
        # warmup_last: the split's smaller last batch compiles here, not in the timed pass
        row = bench.model_only_fps(fast, test_images, largest, device, amp=amp,
                                   channels_last=True, warmup_last=True)
        row.update(bench.efficiency(row["fps"], gflops, record["matmul_gflops"][amp or "fp32"]))
        log(f"  {name} batch {largest}: {row['fps']:.1f} FPS model-only")
        end_to_end = bench.end_to_end_fps(fast, root, image_size, 1, largest, device, amp=amp,
                                          channels_last=True)
        log(f"  {name} end-to-end batch {largest}: {end_to_end['fps']:.1f} FPS")
        record["runs"][name] = {"variant": variant, "amp": amp, "model_only": [row],
                                "end_to_end": end_to_end,
                                "end_to_end_over_report": end_to_end["fps"]
                                / report.value("fps")}
    return record


def train_epoch(root: Path, image_size: int, device: torch.device, amp: str | None) -> dict:
    """One epoch of the report preset (full train split) on ``device``; the result record."""
    config = train.resolve_config("report", data_dir=str(root), epochs=1,
                                  image_size=image_size, device=str(device), amp=amp,
                                  progress=False)
    train_batches, test_batches, classes = train.make_loaders(config)
    torch.manual_seed(config.seed)
    model = ReportCNN(config.in_channels, len(classes))
    log(f"training 1 epoch: {len(train_batches.images)} images, amp={amp}")
    history = train.fit(model, train_batches, test_batches, config)
    log(f"epoch done in {history.epochs[0]['seconds']:.1f} s: train loss "
        f"{history.epochs[0]['train_loss']:.4f}, test accuracy {history.final_accuracy:.4f}")
    return train.result_record(config, history, classes, device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--data-dir", default=str(PROJECT_ROOT / "data" / "gpu_sample"))
    parser.add_argument("--test-per-class", type=int, default=1098)  # 6 x 1098 = 6,588
    parser.add_argument("--train-per-class", type=int, default=200)
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 16, 64, 256],
                        help="bf16 model-only sweep; the largest is used end-to-end")
    parser.add_argument("--fp32-batch-sizes", type=int, nargs="+", default=[16, 256],
                        help="fp32 model-only sweep (a few: fp32 is the slow reference)")
    parser.add_argument("--variants", nargs="*", choices=bench.VARIANTS[1:], default=None,
                        help="faster variants to measure too (default on CUDA: folded+compile; "
                        "none on CPU); give the flag with no names to skip them")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", default=os.environ.get("OUT"))
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args()
    device = train.select_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels
    root = Path(args.data_dir)
    log(f"device {device}; building the dataset in {root} with {args.workers} workers")
    build_dataset(root, args.train_per_class, args.test_per_class, args.workers)
    log("decoding into the cache (threads)")
    splits, classes = load_cached_splits(root, args.image_size, 1, workers=args.workers)
    log(f"cache ready: {len(splits['train'][0])} train, {len(splits['test'][0])} test images")
    # results/ holds committed GPU results only: a CPU test run writes to --out alone.
    outputs = ([PROJECT_ROOT / "results"] if device.type == "cuda" else []) + (
        [Path(args.out)] if args.out else [])
    variants = args.variants if args.variants is not None else (
        ["folded+compile"] if device.type == "cuda" else [])
    sweeps = {"fp32": args.fp32_batch_sizes, "bf16": args.batch_sizes}
    fps = bench.benchmark_record(device, **measure_fps(root, args.image_size, sweeps, device,
                                                       classes, splits["test"][0], variants))
    for folder in outputs:
        atomic_write_json(folder / "gpu_fps.json", fps)
    log("wrote gpu_fps.json")
    if not args.skip_training:
        amp = "bf16" if device.type == "cuda" else None
        result = train_epoch(root, args.image_size, device, amp)
        for folder in outputs:
            atomic_write_json(folder / "gpu_train.json", result)
        log("wrote gpu_train.json")
    best_name = max(fps["runs"], key=lambda name: fps["runs"][name]["end_to_end"]["fps"])
    best = fps["runs"][best_name]["end_to_end"]["fps"]
    log(f"best end-to-end ({best_name}): {best:.1f} FPS = {best / report.value('fps'):.1f}x "
        f"the report's {report.value('fps')} (target >= 100x)")


if __name__ == "__main__":
    main()
