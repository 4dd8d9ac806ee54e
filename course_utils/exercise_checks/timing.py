"""Notebook 04's exercise check: the student's ``measure_fps`` against a fake device.

``measure_fps`` takes callables (run a batch, synchronise the device, read the clock), which
cannot cross into the grading sandbox, so the notebook gives a driver,
``fake_timing_run(batch_sizes, warmup_sizes, seconds_per_image, launch_seconds)``, that builds
fakes inside the sandbox and returns plain data: the student's result and the log of events
("run w0" for warm-up batch 0, "run b2" for timed batch 2, "sync", "clock"). The fake device
is asynchronous like CUDA: ``run_batch`` costs the host ``launch_seconds`` and queues
``len(batch) * seconds_per_image`` of device work; ``synchronize`` waits for the queue; the
clock reads the host's time. The check reads the log for the protocol (warm-up untimed,
a synchronisation right before every clock read, every timed batch once and in order) and
compares the seconds and FPS with a reference simulation of the right protocol written here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from course_utils.exercise_checks.assertions import (
    assert_integer,
    assert_number,
    call_text,
    fail,
    require_defined,
)

RTOL = 1e-9
HINT = ("the device may still be running queued work when the clock is read, and the warm-up "
        "must not be timed; the events above show the order your function ran things in.")


def reference_seconds(batch_sizes: Sequence[int], warmup_sizes: Sequence[int],
                      seconds_per_image: float, launch_seconds: float) -> float:
    """Seconds the right protocol measures on the fake device: after the warm-up has finished,
    the host launches the batches one after another while the device works through its queue;
    the clock stops when both are done."""
    host = device = 0.0
    for size in warmup_sizes:  # untimed, but it sets where the timed pass starts
        host += launch_seconds
        device = max(device, host) + size * seconds_per_image
    start = host = max(host, device)  # synchronised before the first clock read
    for size in batch_sizes:
        host += launch_seconds
        device = max(device, host) + size * seconds_per_image
    return max(host, device) - start


def _positions(events: list[str], prefix: str, count: int) -> list[list[int]]:
    return [[i for i, e in enumerate(events) if e == f"run {prefix}{k}"] for k in range(count)]


def check_measure_fps(fake_timing_run: Callable, measure_fps: Any, batch_sizes: list[int],
                      warmup_sizes: list[int], seconds_per_image: float,
                      launch_seconds: float = 0.0) -> None:
    """The student's measure_fps on the fake device: the order of events, then images,
    seconds and FPS against ``reference_seconds``."""
    require_defined(measure_fps, "measure_fps")
    require_defined(fake_timing_run, "fake_timing_run")
    call = call_text("fake_timing_run", batch_sizes, warmup_sizes, seconds_per_image,
                     launch_seconds) + " (runs your measure_fps)"
    got = fake_timing_run(batch_sizes, warmup_sizes, seconds_per_image, launch_seconds)
    if not isinstance(got, dict) or not isinstance(got.get("events"), list):
        fail(call, "the given driver fake_timing_run was changed; restore it", None)
    events, result = got["events"], got.get("result")
    log = f" (events: {', '.join(events[:40])}{' ...' if len(events) > 40 else ''})"

    clocks = [i for i, e in enumerate(events) if e == "clock"]
    if len(clocks) < 2:
        fail(call, f"the clock was read {len(clocks)} time(s); read it once before and once "
                   "after the timed batches" + log, HINT)
    for i in clocks:
        if i == 0 or events[i - 1] != "sync":
            fail(call, f"event {i + 1} reads the clock without synchronize() right before it: "
                       "the device may still be running queued work (CUDA kernels run "
                       "asynchronously), so that work would land on the wrong side of the "
                       "clock" + log, HINT)
    first, last = clocks[0], clocks[-1]
    for k, seen in enumerate(_positions(events, "w", len(warmup_sizes))):
        if len(seen) != 1:
            fail(call, f"warm-up batch {k} ran {len(seen)} times; run each one once" + log, HINT)
        if seen[0] > first:
            fail(call, f"warm-up batch {k} ran after the clock started: the warm-up must not "
                       "be timed (its first calls choose kernels and allocate memory)" + log,
                 HINT)
    timed = _positions(events, "b", len(batch_sizes))
    for k, seen in enumerate(timed):
        if len(seen) != 1:
            fail(call, f"timed batch {k} ran {len(seen)} times; run each batch once" + log, HINT)
        if not first < seen[0] < last:
            fail(call, f"timed batch {k} ran outside the two clock reads" + log, HINT)
    if [seen[0] for seen in timed] != sorted(seen[0] for seen in timed):
        fail(call, "the timed batches ran out of order" + log, HINT)

    if not isinstance(result, dict):
        fail(call, f"measure_fps returned {result!r}; return a dict with 'images', 'seconds' "
                   "and 'fps'", HINT)
    missing = sorted({"images", "seconds", "fps"} - set(result))
    if missing:
        fail(call, f"the returned dict has no {missing} (it has {sorted(result)})", HINT)
    images = sum(batch_sizes)
    seconds = reference_seconds(batch_sizes, warmup_sizes, seconds_per_image, launch_seconds)
    assert_integer(result["images"], images, call,
                   "count the images of the timed batches only, not the batches and not the "
                   "warm-up", "'images'")
    assert_number(result["seconds"], seconds, call, "seconds: the time between the two clock "
                  "reads around the timed batches", "'seconds'", atol=1e-12, rtol=RTOL)
    assert_number(result["fps"], images / seconds, call, "fps: images per second of the timed "
                  "pass", "'fps'", atol=1e-9, rtol=RTOL)
