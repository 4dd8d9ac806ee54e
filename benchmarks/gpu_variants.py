"""GPU follow-up to gpu_check.py: where the report model's inference time goes, and what helps.

Same model, same bf16 autocast and channels_last as gpu_check.py, batch 256, measured side by
side in one run: plain; cudnn.benchmark (lets cuDNN time its algorithms); batch norm folded
into the convolutions; torch.compile. A torch.profiler table shows the top CUDA kernels of the
plain model. The best variant is then measured warm (files checked against the decoded cache,
pixels read from it; called "end-to-end" before the cold path existed: see gpu_check.py for
cold) over the 6,588-image test split.

    python benchmarks/gpu_variants.py --out $OUT          # on the GPU machine
    python benchmarks/gpu_variants.py --device cpu --images 8 --batch-size 4 --image-size 64 \\
        --skip-warm --skip-compile                         # a quick test on CPU
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from course_utils.atomic import atomic_write_json
from course_utils.instructor.solutions.timing import measure_fps  # notebook 04's solution
from course_utils.part_one import devices, fps, inference_variants
from course_utils.part_one.model import ReportCNN
from course_utils.paths import PROJECT_ROOT
from course_utils.report import value

STARTED = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - STARTED:6.1f} s] {message}", flush=True)


def top_kernels(model: torch.nn.Module, x: torch.Tensor, device: torch.device,
                rows: int = 12) -> str:
    """The profiler's table of the most expensive device kernels for a few batches."""
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16):
        model(x)
        devices.synchronize(device)
        with profile(activities=activities) as prof:
            for _ in range(3):
                model(x)
            devices.synchronize(device)
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=rows, max_name_column_width=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--data-dir", default=str(PROJECT_ROOT / "data" / "gpu_sample"))
    parser.add_argument("--skip-compile", action="store_true")
    parser.add_argument("--skip-warm", "--skip-end-to-end", dest="skip_warm",
                        action="store_true", help="no warm (decoded cache) measurement")
    parser.add_argument("--out", default=os.environ.get("OUT"))
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    images = torch.randint(0, 256, (args.images, 1, args.image_size, args.image_size),
                           dtype=torch.uint8)
    base = ReportCNN(1, 6).eval()
    x = (images[: args.batch_size].to(device).float() / 255).contiguous(
        memory_format=torch.channels_last)

    log("top kernels, plain model (bf16, channels_last):")
    plain = devices.prepare_model(base, device, channels_last=True)
    print(top_kernels(plain, x, device), flush=True)

    def measure(name: str, model: torch.nn.Module) -> dict:
        row = fps.model_only_fps(model, images, args.batch_size, device, amp="bf16",
                                 channels_last=True, warmup_batches=3,
                                 measure_fps=measure_fps)
        log(f"{name}: {row['fps']:.0f} FPS")
        return {"variant": name, **row}

    rows = [measure("plain", plain)]
    torch.backends.cudnn.benchmark = True
    rows.append(measure("cudnn.benchmark", plain))
    folded = inference_variants.fold_batchnorm(plain)
    rows.append(measure("cudnn.benchmark + folded batch norm", folded))
    best_name, best_model = rows[-1]["variant"], folded
    if not args.skip_compile:
        compiled = torch.compile(folded)
        rows.append(measure("... + torch.compile", compiled))
        if rows[-1]["fps"] > max(r["fps"] for r in rows[:-1]):
            best_name, best_model = rows[-1]["variant"], compiled
    for row in rows:
        row["ratio_to_plain"] = row["fps"] / rows[0]["fps"]
        log(f"  {row['variant']:40s} {row['fps']:8.0f} FPS  x{row['ratio_to_plain']:.2f}")

    record = {"device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
              "torch": torch.__version__, "batch_size": args.batch_size,
              "image_size": args.image_size, "model_only": rows, "best": best_name}
    if not args.skip_warm:
        warm = fps.warm_fps(best_model, args.data_dir, args.image_size, 1,
                            args.batch_size, device, amp="bf16", channels_last=True)
        warm["ratio_to_report"] = warm["fps"] / value("fps")
        record["warm"] = {"variant": best_name, **warm}
        log(f"warm ({best_name}): {warm['fps']:.0f} FPS over {warm['images']} images "
            f"= {warm['ratio_to_report']:.1f}x the report's {value('fps')}")
    # results/ holds committed GPU results only: a CPU test run writes to --out alone.
    committed = str(PROJECT_ROOT / "results") if device.type == "cuda" else None
    for folder in filter(None, [args.out, committed]):
        atomic_write_json(Path(folder) / "gpu_variants.json", record)
    log("wrote gpu_variants.json")


if __name__ == "__main__":
    main()
