"""Decoding one 800x947 PNG to a small grayscale image: Pillow against torchvision, per image.

The cold FPS path (every file decoded and resized, as the report's loop does) is limited by
this step. Each way below runs on the same files, in one process, one thread, in one run;
the ways take turns file by file (all ways on file 1, then on file 2, ..., a different way
first each time), so a burst of load from other processes hits them all alike, and each way's
median time per image over every file and round is kept. ``load_image`` is timed twice: the
gap between its two rows is the noise of the run. Pixels are compared with
``course_utils.part_one.decode.load_image`` (Pillow: open, convert("L"), bilinear resize), which the
decoded cache and the cold path use:

- ``load_image``, and Pillow's decode alone (open + load: no convert, no resize);
- Pillow with ``reducing_gap`` (a box reduction by an integer factor first: cheaper, not equal);
- torchvision ``decode_png`` and ``decode_image(mode=ImageReadMode.GRAY)`` alone, then with a
  torch resize (bilinear, antialias=True) or with Pillow's resize (as ``load_image``).
  (torchvision 0.29 deprecates its decoders in favour of TorchCodec; the DeprecationWarning
  each call raises is silenced here.)
Prints ms per image, the largest difference in grey levels and the share of pixels that
differ, then RATIO: the fastest other way whose pixels are within 1 grey level, time over
``load_image``'s (the median of both its rows); >= 1.0: ``load_image``, used on the cold
path, is the fastest.

    .venv/bin/python benchmarks/bench_decode.py [--sizes 64 256] [--rounds 5] [--images 90]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image
from torchvision.io import ImageReadMode, decode_image, decode_png, read_file
from torchvision.transforms.v2 import functional as TF

from course_utils.part_one.data_spec import data_spec
from course_utils.part_one.dataset import find_images
from course_utils.part_one.decode import load_image

REFERENCE = "Pillow load_image (cold path)"
#: The same function timed twice: the gap between the two rows is this run's noise.
AGAIN = "Pillow load_image again (noise check)"


def _discard(_: object) -> None:
    """A decode-only way's result: nothing to compare."""


def ways(size: int) -> dict[str, Callable[[str], np.ndarray | None]]:
    """name -> function(path) giving uint8 (size, size), or None for the decode-only ways."""
    bilinear = Image.Resampling.BILINEAR

    def pil_resize(gray: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(gray, mode="L").resize((size, size), bilinear))

    def torch_resize(gray: torch.Tensor) -> np.ndarray:
        return TF.resize(gray, [size, size], antialias=True)[0].numpy()

    def pil_decode(path: str) -> None:
        with Image.open(path) as image:
            image.load()

    def pil_gap(gap: float) -> Callable[[str], np.ndarray]:
        def run(path: str) -> np.ndarray:
            with Image.open(path) as image:
                return np.asarray(image.convert("L").resize((size, size), bilinear,
                                                            reducing_gap=gap))
        return run

    def tv_png(path: str) -> torch.Tensor:
        return decode_png(read_file(path))

    def tv_gray(path: str) -> torch.Tensor:
        return decode_image(read_file(path), mode=ImageReadMode.GRAY)

    return {
        REFERENCE: lambda p: load_image(p, size, 1)[0],
        AGAIN: lambda p: load_image(p, size, 1)[0],
        "Pillow decode only": pil_decode,
        "Pillow reducing_gap=3": pil_gap(3.0),
        "Pillow reducing_gap=5": pil_gap(5.0),
        "tv decode_png only": lambda p: _discard(tv_png(p)),
        "tv decode_image GRAY only": lambda p: _discard(tv_gray(p)),
        "tv decode_png + torch resize": lambda p: torch_resize(tv_png(p)),
        "tv decode_image GRAY + torch resize": lambda p: torch_resize(tv_gray(p)),
        "tv decode_png + Pillow resize": lambda p: pil_resize(tv_png(p)[0].numpy()),
        "tv decode_image GRAY + Pillow resize": lambda p: pil_resize(tv_gray(p)[0].numpy()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--images", type=int, default=90, help="test images used (at most)")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message=".*decoding and encoding capabilities of "
                            "TorchVision are deprecated", category=DeprecationWarning)
    torch.set_num_threads(1)  # per image, one core: as in a DataLoader worker
    index = find_images(data_spec(args.data_dir).data_dir)
    paths = [os.fspath(p) for p, _ in index.files["test"]][:args.images]
    with Image.open(paths[0]) as first:
        described = f"{first.width}x{first.height} {first.mode} {first.format}"
    print(f"{len(paths)} test images ({described}), {args.rounds} rounds, 1 thread",
          flush=True)
    for size in args.sizes:
        table = ways(size)
        times: dict[str, list[float]] = {name: [] for name in table}
        names = list(table)
        for round_number in range(args.rounds):
            for number, path in enumerate(paths):
                first = (number + round_number) % len(names)  # each way goes first in turn
                for name in names[first:] + names[:first]:
                    start = time.perf_counter()
                    table[name](path)
                    times[name].append(time.perf_counter() - start)
        ms = {name: 1000 * float(np.median(values)) for name, values in times.items()}
        print(f"-- {size}x{size}: median ms per image; largest |difference| against "
              f"load_image in grey levels, share of pixels differing")
        reference = [load_image(p, size, 1)[0] for p in paths]
        worst = {}
        for name, run in table.items():
            outputs = [run(p) for p in paths]
            if outputs[0] is None:
                print(f"{name:38s} {ms[name]:7.2f} ms   (decode only)")
                continue
            diffs = [np.abs(o.astype(np.int16) - r.astype(np.int16))
                     for o, r in zip(outputs, reference, strict=True)]
            worst[name] = max(int(d.max()) for d in diffs)
            share = float(np.mean([np.mean(d > 0) for d in diffs]))
            print(f"{name:38s} {ms[name]:7.2f} ms   max diff {worst[name]:2d}   "
                  f"pixels differing {share:.2%}")
        close = [name for name, diff in worst.items()
                 if diff <= 1 and name not in (REFERENCE, AGAIN)]
        best = min(close, key=ms.get)
        reference_ms = 1000 * float(np.median(times[REFERENCE] + times[AGAIN]))
        noise = abs(ms[REFERENCE] - ms[AGAIN]) / reference_ms
        print(f"RATIO fastest other way within 1 grey level ({best}) / load_image time at "
              f"{size}x{size} = {ms[best] / reference_ms:.3f} (load_image's two rows differ by "
              f"{noise:.1%}: a ratio within that of 1.0 is noise; >= 1.0: load_image, used on "
              "the cold path, is the fastest)", flush=True)


if __name__ == "__main__":
    main()
