"""Peak memory of one report-preset training step (256x256, batch 32) on CPU.

Runs the step in a fresh child process and reads that process's peak resident memory
(ru_maxrss), so nothing else this script did is counted. Target: under 8 GB.

    .venv/bin/python benchmarks/bench_memory.py [--batch-size 32] [--image-size 256]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys

STEP = """
import resource, sys, torch
from course_utils.instructor.solutions import reference_training_loop
from course_utils.part_one import loaders, presets, train
from course_utils.part_one.model import ReportCNN
size, batch = int(sys.argv[1]), int(sys.argv[2])
config = presets.resolve_config("report", device="cpu", batch_size=batch, image_size=size)
torch.manual_seed(0)
model = ReportCNN(1, 6).to(memory_format=torch.channels_last)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
images = torch.randint(0, 256, (batch, 1, size, size), dtype=torch.uint8)
labels = torch.randint(0, 6, (batch,))
batches = loaders.TensorBatches(images, labels, batch)
train.train_one_epoch(model, batches, train.make_optimizer(model, config), torch.device("cpu"),
                      loop=reference_training_loop(), channels_last=True)
print(f"before the step: {before / 2**20:.2f} GB")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=256)
    args = parser.parse_args()
    subprocess.run([sys.executable, "-c", STEP, str(args.image_size), str(args.batch_size)],
                   check=True)
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # KiB -> GiB
    print(f"peak memory of one training step at {args.image_size}x{args.image_size}, batch "
          f"{args.batch_size} (report preset, CPU): {peak_gb:.2f} GB (target < 8 GB)")


if __name__ == "__main__":
    main()
