"""The report's size, trained: the committed training curves of
benchmarks/train_report_size.py (results/*_train_curves.json), their table, and the verdicts
and sentences notebook 03 computes from them."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from course_utils.part_one.presets import PRESETS
from course_utils.paths import PROJECT_ROOT

#: Where benchmarks/train_report_size.py writes its result (GPU first: notebook 03 shows the
#: first one present).
TRAIN_CURVES = (PROJECT_ROOT / "results" / "gpu_train_curves.json",
                PROJECT_ROOT / "results" / "cpu_train_curves.json")


def load_train_curves(paths: Iterable[str | Path] = TRAIN_CURVES) -> tuple[dict, Path] | None:
    """The first committed training-curves result that exists (GPU before CPU) and its path;
    None when there is none."""
    import json

    for path in map(Path, paths):
        if path.is_file():
            try:
                return json.loads(path.read_text(encoding="utf-8")), path
            except ValueError as error:
                raise ValueError(f"{path.name} is not valid JSON ({error}); rerun "
                                 "benchmarks/train_report_size.py or delete it") from None
    return None


def curves_frame(record: dict) -> pd.DataFrame:
    """One row per run of a training-curves result: lr, batch, warm-up, final accuracy, how
    many classes the model still predicts, zeros entering fc1 (and fc2, when recorded), best
    epoch's accuracy."""
    rows = []
    for run in record["runs"]:
        accuracies = [e["test_accuracy"] for e in run["history"]]
        rows.append({"run": run["name"], "lr": f"{run['lr']:g}", "batch": run["batch_size"],
                     "warm-up epochs": run["warmup_epochs"],
                     "final test accuracy": round(run["final_accuracy"], 3),
                     "best epoch's accuracy": round(max(accuracies), 3),
                     "classes predicted": sum(c > 0 for c in run["predicted_per_class"]),
                     "zeros entering fc1": round(run["fc1_input_zero_fraction"], 3)})
        if run.get("fc2_input_zero_fraction") is not None:  # recorded since it was added
            rows[-1]["zeros entering fc2"] = round(run["fc2_input_zero_fraction"], 3)
    return pd.DataFrame(rows).set_index("run")


#: Verdicts on a run of a training-curves result (``run_verdict``), from its last epoch:
#: "learns" when its test accuracy reached chance + LEARNS_MARGIN or its train loss fell below
#: LEARNS_BELOW x ln(K) (a uniform guess scores ln(K)); "stuck at chance" when its train loss
#: is still above STUCK_ABOVE x ln(K) and its test accuracy below chance + CHANCE_MARGIN;
#: otherwise "unclear".
LEARNS_MARGIN = 0.2
LEARNS_BELOW = 0.5
STUCK_ABOVE = 0.9
CHANCE_MARGIN = 0.1


def run_verdict(run: dict, num_classes: int) -> str:
    """"learns", "stuck at chance" or "unclear" for one run (see LEARNS_MARGIN)."""
    ln_k, chance = math.log(num_classes), 1 / num_classes
    last = run["history"][-1]
    if run["final_accuracy"] >= chance + LEARNS_MARGIN or last["train_loss"] < LEARNS_BELOW * ln_k:
        return "learns"
    if last["train_loss"] > STUCK_ABOVE * ln_k and run["final_accuracy"] < chance + CHANCE_MARGIN:
        return "stuck at chance"
    return "unclear"


def plain_run_verdict(record: dict, lr: float, batch_size: int | None = None) -> str | None:
    """``run_verdict`` of the record's run at ``lr`` and ``batch_size`` (default: the record's
    batch) without a warm-up; None when no such run was trained."""
    batch = record["config"]["batch_size"] if batch_size is None else batch_size
    for run in record["runs"]:
        if (math.isclose(run["lr"], lr) and run["batch_size"] == batch
                and not run["warmup_epochs"]):
            return run_verdict(run, len(record["classes"]))
    return None


def one_class_from(run: dict) -> int | None:
    """The first epoch from which the run predicts a single class for every test image, to
    the end; None if its last epoch still predicts more than one class."""
    first = None
    for row in run["history"]:
        if sum(c > 0 for c in row["predicted_per_class"]) == 1:
            first = row["epoch"] if first is None else first
        else:
            first = None
    return first


def curves_findings(record: dict, report_accuracy: float,
                    preset: str | None = "report_lower_lr") -> list[str]:
    """Sentences about a training-curves result, each computed from its numbers; the last one
    says how ``preset``'s learning rate (at the result's batch size) and the warm-up fared."""
    classes = record["classes"]
    k = len(classes)
    chance, ln_k = 1 / k, math.log(k)
    lines = []
    for run in record["runs"]:
        verdict = run_verdict(run, k)
        epochs = len(run["history"])
        first_loss = run["history"][0]["train_loss"]
        text = (f"{run['name']}: {verdict}: train loss {run['history'][-1]['train_loss']:.3g} "
                f"after {epochs} epoch(s) (ln({k}) = {ln_k:.2f}), test accuracy "
                f"{run['final_accuracy']:.3f} (chance {chance:.3f}; the report "
                f"{report_accuracy:.2f})")
        if first_loss > 10 * ln_k:
            text += f"; train loss {first_loss:.3g} in epoch 1 ({first_loss / ln_k:.0f} x ln({k}))"
        single = one_class_from(run)
        if single is not None:
            name = classes[int(np.argmax(run["predicted_per_class"]))]
            text += f"; from epoch {single} on it predicts one class ({name}) for every image"
        else:
            text += (f"; its last epoch predicts "
                     f"{sum(c > 0 for c in run['predicted_per_class'])} of {k} classes")
        lines.append(text + ".")
    plain32 = [r for r in record["runs"] if r["batch_size"] == record["config"]["batch_size"]
               and not r["warmup_epochs"]]
    learning = [r for r in plain32 if run_verdict(r, k) == "learns"]
    if learning:
        best = max(learning, key=lambda r: r["lr"])
        larger = sorted(r["lr"] for r in plain32 if r["lr"] > best["lr"])
        text = (f"The largest lr that learns at batch {best['batch_size']} here is "
                f"{best['lr']:g}")
        if larger:  # best is the largest that learns: none of these does
            text += ("; none of the larger ones tried (" + ", ".join(f"{lr:g}" for lr in larger)
                     + ") does")
        lines.append(text + ".")
    else:
        lines.append(f"No learning rate at batch {record['config']['batch_size']} learns here.")
    if preset is not None:
        lr = PRESETS[preset]["lr"]
        same = [r for r in plain32 if math.isclose(r["lr"], lr)]
        text = f"Preset {preset!r} (lr {lr:g}, batch {record['config']['batch_size']}): " + (
            f"{run_verdict(same[0], k)} in these runs (test accuracy "
            f"{same[0]['final_accuracy']:.3f})" if same else "not among these runs")
        for run in record["runs"]:
            if run["warmup_epochs"]:
                text += (f"; lr {run['lr']:g} reached by a {run['warmup_epochs']}-epoch "
                         f"warm-up: {run_verdict(run, k)} (test accuracy "
                         f"{run['final_accuracy']:.3f})")
        lines.append(text + ".")
    above = [r for r in record["runs"] if r["final_accuracy"] > report_accuracy]
    lines.append(f"{len(above)} of {len(record['runs'])} runs "
                 f"{'ends' if len(above) == 1 else 'end'} above the report's "
                 f"{report_accuracy:.0%}" + (": " + ", ".join(r["name"] for r in above)
                                              if above else "") + ".")
    return lines
