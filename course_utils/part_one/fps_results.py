"""Reading FPS results: the committed GPU result of benchmarks/gpu_check.sh
(results/gpu_fps.json), its runs' labels and paths, and the tables and verdicts notebook 04
computes from it and from its own measurements."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from course_utils.paths import PROJECT_ROOT, display_path

#: Written by benchmarks/gpu_check.sh on a GPU machine and committed by the integrator.
GPU_RESULT = PROJECT_ROOT / "results" / "gpu_fps.json"


def load_gpu_result(path: str | Path = GPU_RESULT) -> dict[str, Any] | None:
    """The committed GPU FPS result, or None when there is none yet."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise ValueError(f"{display_path(path)} is not valid JSON ({error}); rerun "
                         "benchmarks/gpu_check.sh or delete the file") from None


def run_label(record: dict[str, Any], name: str) -> str:
    """The precision label of run ``name`` of a GPU result, saying TF32 where it was TF32.

    Runs written since the TF32 / fp32 split carry "precision" and are named by it ("tf32",
    "fp32": TF32 off, "bf16"). In older results the run "fp32" (amp None) ran its
    convolutions in TF32 whenever the record's "tf32" settings say cuDNN could
    (``cudnn_conv`` true, PyTorch's default): it is labelled "TF32 (stored as fp32)".
    """
    run = record["runs"][name]
    if "precision" in run or run.get("amp") is not None or "fp32" not in name:
        return name
    if record.get("tf32", {}).get("cudnn_conv"):
        return name.replace("fp32", "TF32") + " (stored as fp32)"
    return name


def run_path(run: dict[str, Any], path: str) -> dict[str, Any] | None:
    """The "warm" or "cold" measurement of a GPU run; older results stored warm as
    "end_to_end" (read here as warm). None when the run has no such measurement."""
    if path == "warm":
        return run.get("warm") or run.get("end_to_end")
    if path == "cold":
        return run.get("cold")
    raise ValueError(f"path must be 'warm' or 'cold', got {path!r}")


def gpu_summary(record: dict[str, Any]) -> pd.DataFrame:
    """One row per run of a GPU result: precision (TF32 where it was: ``run_label``), device,
    best model-only FPS, cold FPS (files decoded; NaN where not measured) with decode-only FPS
    and their ratio, warm FPS (decoded cache), and cold and warm as multiples of the report."""
    environment = record["environment"]
    report_fps = record["report"]["fps"]
    rows = []
    for name, run in record["runs"].items():
        best = max(run["model_only"], key=lambda row: row["fps"])
        warm, cold = run_path(run, "warm"), run_path(run, "cold")
        nan = float("nan")
        rows.append({"precision": run_label(record, name),
                     "device": environment.get("gpu", environment["device"]),
                     "image_size": record["image_size"], "test_images": record["test_images"],
                     "model_only_fps": round(best["fps"], 1), "at_batch": best["batch_size"],
                     "cold_fps": round(cold["fps"], 1) if cold else nan,
                     "decode_only_fps": round(cold["decode_only_fps"], 1) if cold else nan,
                     "cold/decode": round(cold["cold_over_decode_only"], 3) if cold else nan,
                     "warm_fps": round(warm["fps"], 1), "batch": warm["batch_size"],
                     "x_report_cold": round(cold["fps"] / report_fps, 1) if cold else nan,
                     "x_report_warm": round(warm["fps"] / report_fps, 1)})
    return pd.DataFrame(rows)


def end_to_end_table(model_only: Sequence[dict], cold: Sequence[dict],
                     warm: Sequence[dict]) -> pd.DataFrame:
    """One row per batch size measured end to end: decode-only, cold, warm and model-only FPS
    (model-only: NaN where the sweep skipped that batch size) and their ratios."""
    by_batch = {r["batch_size"]: r["fps"] for r in model_only}
    cold_by_batch = {r["batch_size"]: r for r in cold}
    rows = []
    for row in warm:
        batch = row["batch_size"]
        c = cold_by_batch.get(batch, {})
        model = by_batch.get(batch, float("nan"))
        rows.append({"batch_size": batch, "images": row["images"],
                     "decode_only_fps": c.get("decode_only_fps", float("nan")),
                     "cold_fps": c.get("fps", float("nan")), "warm_fps": row["fps"],
                     "model_only_fps": model,
                     "cold/decode-only": c.get("cold_over_decode_only", float("nan")),
                     "cold/model-only": c.get("fps", float("nan")) / model,
                     "warm/model-only": row["fps"] / model})
    return pd.DataFrame(rows)


def cold_verdict(cold: dict, model_only_fps: float, target: float = 0.9) -> str:
    """What one cold measurement says, in words computed from its numbers.

    Names the slower stage (decode-only against model-only FPS) and whether cold reached
    ``target`` of it: the words follow the numbers of the run, never the other way round.
    """
    decode, ratio = cold["decode_only_fps"], cold["cold_over_decode_only"]
    head = (f"batch {cold['batch_size']}, {cold['workers']} worker(s): decode-only "
            f"{decode:.1f} FPS, model-only {model_only_fps:.1f} FPS, cold {cold['fps']:.1f} FPS")
    if decode <= model_only_fps:
        reached = "reaches" if ratio >= target else "stays below"
        return (f"{head}. Decoding is the slower stage here; cold / decode-only = {ratio:.3f} "
                f"{reached} the target {target}: the model "
                f"{'hides' if ratio >= target else 'does not fully hide'} behind decoding.")
    share = cold["fps"] / model_only_fps
    why = ("below 1: the workers decode on the cores the model needs" if share < 1 else
           "not below 1: cold and model-only ran at different moments, and on a shared "
           "machine the difference is noise")
    return (f"{head}. The model is the slower stage here, so cold / decode-only "
            f"({ratio:.3f}) is not the measure; cold / model-only = {share:.3f} ({why}).")


def warm_gap_table(record: dict[str, Any]) -> pd.DataFrame:
    """Per run of a GPU result: warm FPS against model-only FPS at the warm batch size, the
    size of the split's last batch, and whether model-only ran that shape before timing.

    Results written before ``model_only_fps`` warmed up every shape (no "warmed_last" in the
    rows) warmed the last batch only for the variants (gpu_check.py passed warmup_last=True
    for torch.compile), not for the plain runs.
    """
    rows = []
    for name, run in record["runs"].items():
        warm = run_path(run, "warm")
        same = [r for r in run["model_only"] if r["batch_size"] == warm["batch_size"]]
        if not same:
            continue
        model = same[0]
        last = model["images"] % model["batch_size"] or model["batch_size"]
        warmed = model.get("warmed_last", run.get("variant", "plain") != "plain")
        rows.append({"run": run_label(record, name), "batch_size": model["batch_size"],
                     "last_batch": last, "last_shape_warmed_up": bool(warmed),
                     "model_only_s": round(model["seconds"], 3),
                     "warm_s": round(warm["seconds"], 3),
                     "model_only_fps": round(model["fps"], 1), "warm_fps": round(warm["fps"], 1),
                     "warm/model-only": round(warm["fps"] / model["fps"], 3)})
    return pd.DataFrame(rows)
