"""Model-only CPU inference at 256x256 against the same machine's matrix-multiply GFLOP/s.

Achieved GFLOP/s = FPS x GFLOPs per image (torch.utils.flop_counter: convolutions and matrix
products). Measured for NCHW, channels_last, and channels_last with batch norm folded into the
convolutions; the fp32 matmul GFLOP/s is measured before and after, in the same run.
Target: achieved / matmul >= 0.85 at batch 8 or more.

    .venv/bin/python benchmarks/bench_flops.py [--image-size 256] [--batch-size 8] [--images 16]
"""

from __future__ import annotations

import argparse

import torch

from course_utils.instructor.solutions.timing import measure_fps  # notebook 04's solution
from course_utils.part_one import fps, hardware, inference_variants
from course_utils.part_one.model import ReportCNN


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--images", type=int, default=16)
    args = parser.parse_args()
    device = torch.device("cpu")
    torch.manual_seed(0)
    model = ReportCNN(1, 6).eval()
    images = torch.randint(0, 256, (args.images, 1, args.image_size, args.image_size),
                           dtype=torch.uint8)
    gflops_image = hardware.gflops_per_image(model, args.image_size, 1)
    matmul_before = hardware.matmul_gflops(device)
    print(f"{args.image_size}x{args.image_size}: {gflops_image:.2f} GFLOPs per image; "
          f"fp32 matmul {matmul_before:.1f} GFLOP/s; {torch.get_num_threads()} threads",
          flush=True)
    variants = {"NCHW": (model, False), "channels_last": (model, True),
                "channels_last + folded BN": (inference_variants.fold_batchnorm(model), True)}
    results = {}
    for name, (variant, channels_last) in variants.items():
        rate = fps.model_only_fps(variant, images, args.batch_size, device,
                                  channels_last=channels_last, warmup_batches=1,
                                  measure_fps=measure_fps)["fps"]
        results[name] = rate
        print(f"{name}: {rate:.2f} FPS, {rate * gflops_image:.1f} GFLOP/s", flush=True)
    matmul_after = hardware.matmul_gflops(device)
    matmul = max(matmul_before, matmul_after)  # the machine's best: the stricter comparison
    print(f"fp32 matmul after: {matmul_after:.1f} GFLOP/s (using {matmul:.1f})")
    for name, rate in results.items():
        ratio = rate * gflops_image / matmul
        print(f"RATIO achieved/matmul ({name}, batch {args.batch_size}) = {ratio:.3f} "
              "(target >= 0.85)")


if __name__ == "__main__":
    main()
