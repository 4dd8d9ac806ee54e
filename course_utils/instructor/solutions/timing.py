"""04 · How fast is the model? The report's FPS, measured properly.

GENERATED from the cells marked ``#| export`` in notebooks/04_fps_benchmark.ipynb by
``python -m course_utils.instructor.grading export`` (``make export``): edit the notebook, not
this file.
``tests/test_grading_export.py`` fails when this file is stale.
"""

# Given code: the imports the function below needs.
from collections.abc import Callable, Sequence
from typing import Any


def measure_fps(run_batch: Callable[[Any], object], batches: Sequence, warmup: Sequence,
                synchronize: Callable[[], None], clock: Callable[[], float]) -> dict[str, float]:
    """Images per second of ``run_batch`` over ``batches``, after an untimed warm-up.

    Inputs: run_batch(batch) runs one batch (it may return before the device has finished,
    as CUDA does); batches: the timed batches, len(batch) images each; warmup: batches run
    once before the clock starts; synchronize() waits until the device has finished all
    queued work; clock() is the time in seconds (e.g. time.perf_counter).
    Returns {"images": images in ``batches``, "seconds": the timed pass, "fps": images per
    second}.
    """
    for batch in warmup:
        run_batch(batch)
    synchronize()  # the warm-up's queued work must finish before the clock starts
    start = clock()
    images = 0
    for batch in batches:
        run_batch(batch)
        images += len(batch)
    synchronize()  # the last batches may still be running on the device
    seconds = clock() - start
    return {"images": images, "seconds": seconds, "fps": images / seconds}
