"""GPU check: report-configuration FPS and one report-preset training epoch on CUDA.

Run by benchmarks/gpu_check.sh on a GPU machine (or on CPU with tiny sizes, to test it):
(a) builds the built-in dataset at FPS scale (the report's 6,588 test images by default),
    drawing images in parallel processes;
(b) measures notebook 04's FPS in the report configuration: 256x256, channels_last, per
    precision: "tf32" (fp32 tensors, TF32 convolutions and matmuls: PyTorch's default for
    convolutions, which results before this split stored as "fp32"), "fp32" (TF32 off: true
    fp32) and bf16 autocast (on a CPU: fp32 and bf16). For each: model-only over a few batch
    sizes up to 256, then at the largest batch the two end-to-end paths: cold (every file
    decoded and resized in a DataLoader with --cold-workers processes, then the model, beside
    the same DataLoader without the model: decode-only) and warm (files checked against the
    decoded cache, pixels read from it, the model); batch-1 latency percentiles, GFLOPs per
    image and the device's matmul GFLOP/s in the same precision. Then the faster inference
    variants (``--variants``; on CUDA by default "folded+compile": batch norm folded,
    torch.compile), bf16, model-only, cold and warm at the largest batch, stored as runs named
    "bf16 folded+compile" with their "variant";
(c) trains one epoch of the report preset on the device;
and writes gpu_fps.json and gpu_train.json into $OUT (if set) and results/. The last lines
give the best cold and warm FPS as multiples of the report's.

    python benchmarks/gpu_check.py                         # full size, on CUDA (~3 minutes)
    python benchmarks/gpu_check.py --device cpu --test-per-class 4 --train-per-class 4 \\
        --image-size 64 --batch-sizes 1 4 --fp32-batch-sizes 4 --variants folded \\
        --cold-workers 2 --out /tmp/gpu_check                # a quick test on CPU
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

from course_utils import report
from course_utils.atomic import atomic_write_bytes, atomic_write_json
from course_utils.instructor.solutions import reference_training_loop, timing
from course_utils.part_one import (
    cold_path,
    dataset_generator,
    devices,
    fps,
    hardware,
    inference_variants,
    loaders,
    presets,
    results,
    train,
)
from course_utils.part_one.cache import load_cached_splits
from course_utils.part_one.data_spec import data_spec
from course_utils.part_one.model import ReportCNN
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
        rng = np.random.default_rng(dataset_generator.image_seed(0, split, class_name, number))
        atomic_write_bytes(path, dataset_generator.png_bytes(
            dataset_generator.draw_sample(class_name, rng)))
    return stop - start


def build_dataset(root: Path, train_per_class: int, test_per_class: int, workers: int) -> None:
    """The built-in dataset's images (same generator and seeds), drawn by ``workers`` processes."""
    counts = {"train": train_per_class, "test": test_per_class}
    chunk = 25
    jobs = [(str(root), split, class_name, start, min(start + chunk, counts[split]))
            for split in dataset_generator.SPLITS
            for class_name in dataset_generator.SAMPLE_CLASSES
            for start in range(0, counts[split], chunk)]
    total = sum(counts.values()) * len(dataset_generator.SAMPLE_CLASSES)
    done = 0
    # spawn, not fork: a forked child of a process that has touched CUDA can hang.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        for number, count in enumerate(pool.map(_draw_chunk, jobs)):
            done += count
            if number % 40 == 39 or done == total:
                log(f"dataset: {done} / {total} images")


#: Plain precisions measured on CUDA: name -> (autocast, TF32 allowed). "tf32" is PyTorch's
#: default for convolutions (cuDNN may use TF32 tensor cores for fp32 convolutions); the
#: results committed before this split stored it as "fp32". "fp32" turns TF32 off for both
#: convolutions and matrix multiplies: true fp32. On a CPU (no TF32): fp32 and bf16.
PRECISIONS = {"tf32": (None, True), "fp32": (None, False), "bf16": ("bf16", True)}


def set_tf32(allowed: bool) -> dict:
    """Allow or forbid TF32 in cuDNN convolutions and CUDA matmuls; the settings now in force."""
    torch.backends.cudnn.allow_tf32 = allowed
    torch.backends.cuda.matmul.allow_tf32 = allowed
    return tf32_settings()


def tf32_settings() -> dict:
    """The TF32 switches as they are now (the legacy flags and PyTorch's fp32_precision)."""
    conv = getattr(torch.backends.cudnn, "conv", None)  # fp32_precision: PyTorch >= 2.9
    return {"cudnn_conv": torch.backends.cudnn.allow_tf32,
            "matmul": torch.backends.cuda.matmul.allow_tf32,
            "cudnn_conv_fp32_precision": getattr(conv, "fp32_precision", None),
            "matmul_fp32_precision": getattr(torch.backends.cuda.matmul, "fp32_precision",
                                             None)}


def measure_paths(model: torch.nn.Module, root: Path, image_size: int, batch_size: int,
                  device: torch.device, amp: str | None, cold: dict | None) -> dict:
    """Cold (files decoded in a DataLoader, ``cold`` = its keyword arguments; None: skipped)
    and warm (decoded cache) FPS at ``batch_size``: {"cold": ..., "warm": ...}."""
    paths = {}
    if cold is not None:
        paths["cold"] = cold_path.cold_fps(model, root, image_size, 1, batch_size, device, amp=amp,
                                           channels_last=True, **cold)
        row = paths["cold"]
        log(f"  cold batch {batch_size}: {row['fps']:.1f} FPS; decode-only (same "
            f"{row['workers']} workers, no model) {row['decode_only_fps']:.1f} FPS; cold / "
            f"decode-only {row['cold_over_decode_only']:.3f} (target >= 0.9)")
    paths["warm"] = fps.warm_fps(model, root, image_size, 1, batch_size, device, amp=amp,
                                 channels_last=True)
    log(f"  warm batch {batch_size}: {paths['warm']['fps']:.1f} FPS "
        f"(index built once in {paths['warm']['index_seconds']:.2f} s)")
    return paths


def path_summary(paths: dict) -> dict:
    """Cold and warm FPS as multiples of the report's 59.21."""
    return {f"{name}_over_report": row["fps"] / report.value("fps")
            for name, row in paths.items()}


def measure_fps(root: Path, image_size: int, batch_sizes: dict[str, list[int]],
                device: torch.device, classes: list[str], test_images: torch.Tensor,
                variants: list[str], cold: dict | None) -> dict:
    """Per precision (tf32, fp32, bf16 on CUDA; fp32, bf16 on CPU): model-only sweep, cold and
    warm FPS at the largest batch, latency, matmul GFLOP/s; then the ``variants`` (bf16 on
    CUDA) at the largest batch size: model-only, cold and warm.

    batch_sizes: {"fp32": [...], "bf16": [...]}, the model-only sweep of each precision ("fp32"
    also serves "tf32"). cold: keyword arguments of ``cold_path.cold_fps`` (None: no cold path).
    """
    torch.manual_seed(0)
    model = ReportCNN(1, len(classes))
    gflops = hardware.gflops_per_image(model, image_size, 1)
    record = {"image_size": image_size, "test_images": len(test_images),
              "gflops_per_image": gflops,
              "report": {"fps": report.value("fps"), "test_images": report.value(
                  "fps_test_images"), "device": "not stated in the report"},
              "matmul_gflops": {}, "runs": {},
              # PyTorch's defaults at the start (each run below records its own settings).
              "tf32": tf32_settings()}
    names = list(PRECISIONS) if device.type == "cuda" else ["fp32", "bf16"]
    for name in names:
        amp, tf32 = PRECISIONS[name]
        settings = set_tf32(tf32) if device.type == "cuda" else None
        dtype = torch.bfloat16 if amp == "bf16" else torch.float32
        # the matmul reference in the same precision as the convolutions (TF32 or not)
        matmul = hardware.matmul_gflops(device, size=8192 if device.type == "cuda" else 1024,
                                        dtype=dtype)
        record["matmul_gflops"][name] = matmul
        sweep_sizes = batch_sizes["bf16" if amp else "fp32"]
        log(f"{name}: matmul {matmul:.0f} GFLOP/s; model-only sweep {sweep_sizes}")
        sweep = []
        for batch_size in sweep_sizes:
            row = fps.model_only_fps(model, test_images, batch_size, device, amp=amp,
                                     channels_last=True, measure_fps=timing.measure_fps)
            row.update(hardware.efficiency(row["fps"], gflops, matmul))
            sweep.append(row)
            log(f"  {name} batch {batch_size}: {row['fps']:.1f} FPS "
                f"({row['ratio_to_matmul']:.2f} of matmul)")
        paths = measure_paths(model, root, image_size, max(sweep_sizes), device, amp, cold)
        latency = hardware.latency_percentiles(model, test_images[:200], device, amp=amp,
                                               channels_last=True)
        log(f"  {name} latency at batch 1 (ms): " + ", ".join(f"{k} {v:.2f}"
                                                             for k, v in latency.items()))
        record["runs"][name] = {"variant": "plain", "precision": name, "amp": amp,
                                "tf32_settings": settings, "model_only": sweep, **paths,
                                "latency_ms_batch1": latency, **path_summary(paths)}
    if device.type == "cuda":
        set_tf32(True)  # PyTorch's default for convolutions; bf16 does not use TF32
    amp = "bf16" if device.type == "cuda" else None  # bf16 autocast on a CPU is slow
    precision = amp or "fp32"
    largest = max(batch_sizes["bf16"])
    for variant in variants:
        name = f"{precision} {variant}"
        log(f"{name}: preparing (torch.compile takes a while on the first batches)")
        fast = inference_variants.inference_variant(model, variant, device, channels_last=True)
        # warm-up runs the split's smaller last batch too: it compiles here, not in the timing
        row = fps.model_only_fps(fast, test_images, largest, device, amp=amp,
                                 channels_last=True, measure_fps=timing.measure_fps)
        row.update(hardware.efficiency(row["fps"], gflops, record["matmul_gflops"][precision]))
        log(f"  {name} batch {largest}: {row['fps']:.1f} FPS model-only")
        paths = measure_paths(fast, root, image_size, largest, device, amp, cold)
        record["runs"][name] = {"variant": variant, "precision": precision, "amp": amp,
                                "model_only": [row], **paths, **path_summary(paths)}
    return record


def train_epoch(root: Path, image_size: int, device: torch.device, amp: str | None) -> dict:
    """One epoch of the report preset (full train split) on ``device``; the result record."""
    config = presets.resolve_config("report", data_dir=str(root), epochs=1,
                                    image_size=image_size, device=str(device), amp=amp,
                                    progress=False)
    train_batches, test_batches, classes = loaders.make_loaders(config)
    torch.manual_seed(config.seed)
    model = ReportCNN(config.in_channels, len(classes))
    log(f"training 1 epoch: {len(train_batches.images)} images, amp={amp}")
    history = train.fit(model, train_batches, test_batches, config,
                        loop=reference_training_loop())
    log(f"epoch done in {history.epochs[0]['seconds']:.1f} s: train loss "
        f"{history.epochs[0]['train_loss']:.4f}, test accuracy {history.final_accuracy:.4f}")
    return results.result_record(config, history, classes, device)


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
    parser.add_argument("--variants", nargs="*", choices=inference_variants.VARIANTS[1:],
                        default=None,
                        help="faster variants to measure too (default on CUDA: folded+compile; "
                        "none on CPU); give the flag with no names to skip them")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="processes drawing the dataset, threads filling the cache")
    parser.add_argument("--cold-workers", type=int, default=cold_path.default_workers(),
                        help="DataLoader worker processes decoding the files on the cold path")
    parser.add_argument("--cold-repeats", type=int, default=1,
                        help="cold and decode-only passes, alternated (the medians are kept)")
    parser.add_argument("--skip-cold", action="store_true", help="measure the warm path only")
    parser.add_argument("--out", default=os.environ.get("OUT"))
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args()
    device = devices.select_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels
    root = Path(args.data_dir)
    log(f"device {device}; building the dataset in {root} with {args.workers} workers")
    build_dataset(root, args.train_per_class, args.test_per_class, args.workers)
    log("decoding into the cache (threads)")
    splits, classes = load_cached_splits(data_spec(root, args.image_size, 1),
                                         workers=args.workers)
    log(f"cache ready: {len(splits['train'][0])} train, {len(splits['test'][0])} test images")
    # results/ holds committed GPU results only: a CPU test run writes to --out alone.
    outputs = ([PROJECT_ROOT / "results"] if device.type == "cuda" else []) + (
        [Path(args.out)] if args.out else [])
    variants = args.variants if args.variants is not None else (
        ["folded+compile"] if device.type == "cuda" else [])
    sweeps = {"fp32": args.fp32_batch_sizes, "bf16": args.batch_sizes}
    cold = None if args.skip_cold else {"workers": args.cold_workers,
                                         "repeats": args.cold_repeats}
    fps_record = hardware.benchmark_record(
        device, **measure_fps(root, args.image_size, sweeps, device, classes, splits["test"][0],
                              variants, cold))
    for folder in outputs:
        atomic_write_json(folder / "gpu_fps.json", fps_record)
    log("wrote gpu_fps.json")
    if not args.skip_training:
        amp = "bf16" if device.type == "cuda" else None
        result = train_epoch(root, args.image_size, device, amp)
        for folder in outputs:
            atomic_write_json(folder / "gpu_train.json", result)
        log("wrote gpu_train.json")
    for path in ("cold", "warm"):
        measured = {name: run[path]["fps"] for name, run in fps_record["runs"].items()
                    if path in run}
        if measured:
            best_name = max(measured, key=measured.get)
            best = measured[best_name]
            log(f"best {path} ({best_name}): {best:.1f} FPS = "
                f"{best / report.value('fps'):.1f}x the report's {report.value('fps')}")

if __name__ == "__main__":
    main()
