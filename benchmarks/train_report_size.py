"""Training at the report's size: where the report's lr=1e-2 collapses, and what learns.

One run trains, each from the same initial weights (seed 0) with the project's loop
(course_utils.part_one.train.fit): the report's set-up (Adam, weight decay 1e-4, fp32) at lr 1e-2
(the report's), 1e-3, 1e-4 and 3e-5 with batch 32, lr 1e-4 with batch 8, and lr 1e-2 with a
linear warm-up (--warmup-epochs); each with per-epoch train/test loss, test accuracy, test
predictions counted per class and the fractions of zeros entering fc1 (dead conv features)
and fc2 (dead fc1 outputs), on the test split in eval mode. It also measures the first Adam
step at each lr on one batch (course_utils.part_one.lr_study.first_step_moves). The result is
written atomically after every run (JSON; "complete": true at the end), by default to
results/gpu_train_curves.json on CUDA and results/cpu_train_curves.json on a CPU, and into
$OUT when set. Notebook 03 shows it.

Default: the report's size, 256x256, on the built-in generator's images, 200 train and 200
test images per class (1,200 + 1,200), 10 epochs; sized for at most 4 minutes on one GPU
(not yet timed: the log prints the seconds, and --runs picks fewer runs).

    python benchmarks/train_report_size.py                     # CUDA, the report's size
    .venv/bin/python benchmarks/train_report_size.py --device cpu --image-size 64 --epochs 5 \\
        --subset 40 --data-dir data/sample --no-build          # a CPU at reduced size
    .venv/bin/python benchmarks/train_report_size.py --device cpu --image-size 32 --epochs 1 \\
        --subset 2 --data-dir data/sample --no-build --out /tmp/curves.json   # smoke test
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

import torch

from course_utils import report
from course_utils.atomic import atomic_write_json
from course_utils.instructor.solutions import reference_training_loop
from course_utils.part_one import devices, hardware, loaders, lr_study, presets, train
from course_utils.part_one.model import ReportCNN
from course_utils.paths import PROJECT_ROOT, display_path

STARTED = time.perf_counter()

#: key -> (lr, batch size, warm-up: whether the run uses --warmup-epochs).
RUNS: dict[str, tuple[float, int, bool]] = {
    "lr1e-2_b32": (1e-2, 32, False),  # the report's
    "lr1e-3_b32": (1e-3, 32, False),
    "lr1e-4_b32": (1e-4, 32, False),
    "lr3e-5_b32": (3e-5, 32, False),
    "lr1e-4_b8": (1e-4, 8, False),
    "lr1e-2_b32_warmup": (1e-2, 32, True),
}


def log(message: str) -> None:
    """Progress on stdout with the seconds since start (a GPU session has a time limit)."""
    print(f"[{time.perf_counter() - STARTED:6.1f} s] {message}", flush=True)


def run_name(lr: float, batch_size: int, warmup_epochs: int) -> str:
    """A label for figures: "lr 0.01, batch 32", "... + 2-epoch warm-up"."""
    name = f"lr {lr:g}, batch {batch_size}"
    return name + (f", {warmup_epochs}-epoch warm-up" if warmup_epochs else "")


def train_run(base: presets.TrainConfig, key: str, warmup_epochs: int) -> dict:
    """One run of RUNS[key]: fit with per-epoch predictions per class and zeros entering fc1."""
    lr, batch_size, warm = RUNS[key]
    config = presets.with_overrides(base, lr=lr, batch_size=batch_size,
                                    warmup_epochs=warmup_epochs if warm else 0)
    train_batches, test_batches, classes = loaders.make_loaders(config)
    torch.manual_seed(config.seed)  # the same initial weights for every run
    model = ReportCNN(config.in_channels, len(classes))
    epochs: list[dict] = []

    # Zeros entering fc1 (dead conv features) and fc2 (dead fc1 outputs), test split only.
    with lr_study.ZeroCounter(model.fc1) as zeros1, lr_study.ZeroCounter(model.fc2) as zeros2:
        def on_epoch(model: torch.nn.Module, history: train.History) -> None:
            row = {**history.epochs[-1],
                   "predicted_per_class": lr_study.prediction_counts(history.predictions,
                                                                     len(classes)),
                   "fc1_input_zero_fraction": zeros1.fraction,
                   "fc2_input_zero_fraction": zeros2.fraction}
            zeros1.reset()
            zeros2.reset()
            epochs.append(row)
            log(f"  {key} epoch {row['epoch']}: train loss {row['train_loss']:.4g}, test "
                f"accuracy {row['test_accuracy']:.3f}, predicted per class "
                f"{row['predicted_per_class']}, zeros entering fc1 "
                f"{row['fc1_input_zero_fraction']:.3f}, fc2 {row['fc2_input_zero_fraction']:.3f}"
                f" ({row['seconds']:.1f} s)")

        started = time.perf_counter()
        history = train.fit(model, train_batches, test_batches, config, on_epoch=on_epoch,
                            loop=reference_training_loop())
    last = epochs[-1]
    return {"key": key, "name": run_name(config.lr, config.batch_size, config.warmup_epochs),
            "lr": config.lr, "batch_size": config.batch_size,
            "warmup_epochs": config.warmup_epochs, "steps_per_epoch": len(train_batches),
            "history": epochs, "final_accuracy": history.final_accuracy,
            "predicted_per_class": last["predicted_per_class"],
            "fc1_input_zero_fraction": last["fc1_input_zero_fraction"],
            "fc2_input_zero_fraction": last["fc2_input_zero_fraction"],
            "seconds": time.perf_counter() - started}


def first_steps(base: presets.TrainConfig, lrs: list[float]) -> dict:
    """The first Adam step at each lr on the first training batch (batch 32, seeded order)."""
    train_batches, _, classes = loaders.make_loaders(base)
    torch.manual_seed(base.seed)
    images, labels = next(iter(train_batches))
    rows = lr_study.first_step_moves(lambda: ReportCNN(base.in_channels, len(classes)), images,
                                     labels, base, lrs, loop=reference_training_loop())
    return {"batch_size": len(labels), "rows": [dataclasses.asdict(row) for row in rows]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cuda, cpu, mps")
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--subset", type=int, default=200,
                        help="images per class in each split (0: all in --data-dir)")
    parser.add_argument("--data-dir", default=str(PROJECT_ROOT / "data" / "gpu_sample"))
    parser.add_argument("--no-build", action="store_true",
                        help="use --data-dir as it is (default: draw the missing images of "
                        "the built-in dataset first, --train-per-class/--test-per-class)")
    parser.add_argument("--train-per-class", type=int, default=200)
    parser.add_argument("--test-per-class", type=int, default=200)
    parser.add_argument("--warmup-epochs", type=int, default=2,
                        help="warm-up length of the lr1e-2_b32_warmup run")
    parser.add_argument("--runs", nargs="+", choices=list(RUNS), default=list(RUNS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", default=None,
                        help="result JSON (default: results/gpu_train_curves.json on CUDA, "
                        "results/cpu_train_curves.json otherwise); also written into $OUT")
    args = parser.parse_args()
    device = devices.select_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its kernels
    root = Path(args.data_dir)
    if not args.no_build:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from gpu_check import build_dataset  # the same generator, drawn in parallel

        log(f"drawing missing images into {display_path(root)} ({args.workers} workers)")
        build_dataset(root, args.train_per_class, args.test_per_class, args.workers)
    out = Path(args.out) if args.out else PROJECT_ROOT / "results" / (
        f"{'gpu' if device.type == 'cuda' else 'cpu'}_train_curves.json")
    outputs = [out] + ([Path(os.environ["OUT"]) / out.name] if os.environ.get("OUT") else [])

    base = presets.resolve_config("report", data_dir=str(root), image_size=args.image_size,
                                  epochs=args.epochs, subset=args.subset or None,
                                  device=str(device), seed=args.seed, progress=False)
    train_batches, test_batches, classes = loaders.make_loaders(base)
    log(f"device {device}; {len(train_batches.images)} train and {len(test_batches.images)} "
        f"test images at {args.image_size}x{args.image_size}, {args.epochs} epochs")
    environment = devices.environment_info(device)
    record = hardware.benchmark_record(
        device, complete=False,
        device_name=environment.get("gpu", environment["cpu"]),
        config={"image_size": base.image_size, "epochs": base.epochs,
                "subset_per_class": base.subset, "data_dir": display_path(root),
                "train_images": len(train_batches.images),
                "test_images": len(test_batches.images), "batch_size": base.batch_size,
                "weight_decay": base.weight_decay, "optimizer": "Adam", "amp": base.amp,
                "seed": base.seed, "in_channels": base.in_channels,
                "channels_last": base.channels_last,
                "tf32": {"cudnn_conv": torch.backends.cudnn.allow_tf32,
                         "matmul": torch.backends.cuda.matmul.allow_tf32},
                "command": " ".join(["python", "benchmarks/train_report_size.py",
                                     *sys.argv[1:]])},
        report={"test_accuracy": report.value("test_accuracy"), "lr": report.value("lr"),
                "epochs": report.value("epochs")},
        classes=classes, first_step=None, runs=[])
    lrs = sorted({RUNS[key][0] for key in args.runs}, reverse=True)
    log(f"first Adam step at lr {lrs} on one batch")
    record["first_step"] = first_steps(base, lrs)
    for row in record["first_step"]["rows"]:
        log(f"  lr {row['lr']:g}: fc1 outputs moved {row['fc1_output_move']:.3g} (mean), "
            f"estimate {row['estimate']:.3g}; batch loss {row['loss_before']:.3g} -> "
            f"{row['loss_after']:.3g}")
    for key in args.runs:
        log(f"run {key}")
        record["runs"].append(train_run(base, key, args.warmup_epochs))
        record["seconds"] = time.perf_counter() - STARTED
        for path in outputs:
            atomic_write_json(path, record)
    record["complete"] = True
    for path in outputs:
        atomic_write_json(path, record)
    log(f"wrote {', '.join(display_path(p) for p in outputs)}")
    for run in record["runs"]:
        log(f"{run['name']}: final test accuracy {run['final_accuracy']:.3f}, predicted per "
            f"class {run['predicted_per_class']} (the report: {report.value('test_accuracy')})")


if __name__ == "__main__":
    main()
