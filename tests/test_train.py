"""Training (course_utils.part_one: presets, devices, train, checkpoints, results, lr_study,
train_curves): presets, devices, determinism, resume, checkpoints, result JSON.

A tiny CNN on random in-memory data keeps these fast; the loop is the one notebook 03 uses.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest
import torch
from torch import nn

from course_utils import figures
from course_utils.instructor.solutions import reference_training_loop
from course_utils.part_one import checkpoints, devices, lr_study, results, train, train_curves
from course_utils.part_one.loaders import TensorBatches
from course_utils.part_one.presets import TrainConfig, resolve_config
from course_utils.part_one.train import fit
from course_utils.paths import KEEP_CHECKPOINTS_ENV, PROJECT_ROOT, RUN_DIR_ENV

LOOP = reference_training_loop()  # notebook 03's solutions


def tiny_model(num_classes: int = 3) -> nn.Module:
    """Conv + batch norm + dropout: every source of nondeterminism the real model has."""
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Dropout(0.5),
                         nn.Linear(64, num_classes))


def tiny_data(n: int = 40, seed: int = 0) -> tuple[TensorBatches, TensorBatches]:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 1, 12, 12), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 3, (n,), generator=g)
    return (TensorBatches(images[:30], labels[:30], batch_size=8, shuffle=True),
            TensorBatches(images[30:], labels[30:], batch_size=8))


def tiny_config(**changes) -> TrainConfig:
    base = dict(preset="quick", epochs=3, image_size=12, batch_size=8, device="cpu", seed=3,
                progress=False)
    base.update(changes)
    return TrainConfig(**base)


def run(config: TrainConfig, **kwargs) -> train.History:
    torch.manual_seed(config.seed)  # model initialisation
    model = tiny_model()
    train_batches, test_batches = tiny_data()
    return fit(model, train_batches, test_batches, config, loop=LOOP, **kwargs)


def losses(history: train.History) -> list[tuple[float, float, float]]:
    return [(r["train_loss"], r["test_loss"], r["test_accuracy"]) for r in history.epochs]


# ---- configuration -----------------------------------------------------------------------------

def test_defaults_are_the_reports_setup():
    config = TrainConfig()
    assert (config.lr, config.weight_decay, config.epochs, config.batch_size) == (1e-2, 1e-4,
                                                                                  10, 32)
    optimizer = train.make_optimizer(nn.Linear(2, 2), config)
    assert isinstance(optimizer, torch.optim.Adam)
    assert optimizer.defaults["lr"] == 1e-2 and optimizer.defaults["weight_decay"] == 1e-4


def test_presets_and_none_overrides():
    quick = resolve_config("quick", epochs=None, lr=None)
    assert quick.image_size == 64 and resolve_config("report", lr=None).lr == 1e-2
    report = resolve_config("report")
    assert (report.image_size, report.epochs, report.subset) == (256, 10, None)
    assert resolve_config("quick", epochs=1, lr=1e-3).epochs == 1
    assert resolve_config("quick", lr=1e-3).lr == 1e-3


def test_quick_preset_is_the_measured_deviation_and_report_preset_is_the_report():
    # quick: lr 1e-4, batch 8, 2 epochs on all images (notebook 03 "Going further" shows why);
    # report: exactly the report's set-up.
    quick = resolve_config("quick")
    assert (quick.lr, quick.batch_size, quick.epochs, quick.subset) == (1e-4, 8, 2, None)
    report = resolve_config("report")
    assert (report.lr, report.weight_decay, report.batch_size, report.epochs,
            report.image_size, report.subset) == (1e-2, 1e-4, 32, 10, 256, None)


@pytest.mark.parametrize("bad, word", [({"preset": "fast"}, "preset"),
                                       ({"epochs": 0}, "epochs"),
                                       ({"lr": -1.0}, "lr"),
                                       ({"amp": "fp8"}, "amp"),
                                       ({"learning_rate": 1.0}, "learning_rate")])
def test_bad_parameters_are_named(bad, word):
    preset = bad.pop("preset", "quick")
    with pytest.raises((ValueError, TypeError), match=word):
        resolve_config(preset, **bad)


# ---- devices -----------------------------------------------------------------------------------

def test_auto_device_and_cpu():
    assert devices.select_device("cpu").type == "cpu"
    assert devices.select_device("auto").type == devices.available_devices()[0]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_missing_device_is_a_clear_error():
    with pytest.raises(ValueError, match=r"not available.*available: \[.*'cpu'\]"):
        devices.select_device("cuda")


def test_unknown_device_name_is_a_clear_error():
    with pytest.raises(ValueError, match="not a device name"):
        devices.select_device("gpu0")


# ---- determinism and resume --------------------------------------------------------------------

def test_two_runs_give_identical_histories():
    first, second = run(tiny_config()), run(tiny_config())
    assert losses(first) == losses(second)
    assert len(first.epochs) == 3


def test_different_seed_gives_a_different_history():
    # Guards the test above: identical histories must come from seeding, not from no-ops.
    assert losses(run(tiny_config(seed=3))) != losses(run(tiny_config(seed=4)))


def test_training_lowers_the_train_loss():
    history = run(tiny_config(epochs=8, lr=1e-2))
    assert history.epochs[-1]["train_loss"] < history.epochs[0]["train_loss"]


def test_resume_matches_an_uninterrupted_run(tmp_path):
    checkpoint = tmp_path / "ckpt.pt"
    uninterrupted = run(tiny_config())
    interrupted = run(tiny_config(), checkpoint_path=checkpoint, stop_after=1)
    assert len(interrupted.epochs) == 1
    # A fresh process would rebuild the model from scratch: use a differently seeded one.
    torch.manual_seed(999)
    model = tiny_model()
    train_batches, test_batches = tiny_data()
    resumed = fit(model, train_batches, test_batches, tiny_config(), loop=LOOP,
                  checkpoint_path=checkpoint, resume=True)
    assert losses(resumed) == losses(uninterrupted)
    assert np.array_equal(resumed.predictions, uninterrupted.predictions)


def test_checkpoint_is_written_every_epoch_and_loads_weights_only(tmp_path):
    checkpoint = tmp_path / "ckpt.pt"
    run(tiny_config(epochs=2), checkpoint_path=checkpoint)
    state = torch.load(checkpoint, weights_only=True)
    assert state["epoch"] == 2 and len(state["history"]) == 2
    assert state["config"]["seed"] == 3


def test_crash_during_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    checkpoint = tmp_path / "ckpt.pt"
    run(tiny_config(epochs=1), checkpoint_path=checkpoint)
    before = checkpoint.read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("simulated crash while renaming the new checkpoint")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        run(tiny_config(epochs=2), checkpoint_path=checkpoint, resume=True)
    monkeypatch.undo()
    assert checkpoint.read_bytes() == before
    assert checkpoints.load_checkpoint(checkpoint)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]  # no temporary left behind


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    checkpoint = tmp_path / "ckpt.pt"
    checkpoint.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="ckpt.pt.*resume=True"):
        checkpoints.load_checkpoint(checkpoint)
    with pytest.raises(FileNotFoundError, match="resume=True"):
        checkpoints.load_checkpoint(tmp_path / "missing.pt")


# ---- checkpoints in a graded run ---------------------------------------------------------------

def test_graded_run_keeps_no_checkpoint_unless_asked(tmp_path, monkeypatch):
    """The runner sets COURSE_RUN_DIR; only --keep-checkpoints adds COURSE_KEEP_CHECKPOINTS=1."""
    monkeypatch.setenv(RUN_DIR_ENV, str(tmp_path))
    monkeypatch.delenv(KEEP_CHECKPOINTS_ENV, raising=False)
    assert checkpoints.checkpoint_path("03_x") is None
    history = run(tiny_config(epochs=2), checkpoint_path=checkpoints.checkpoint_path("03_x"))
    assert len(history.epochs) == 2 and not any(tmp_path.rglob("*"))  # nothing written
    with pytest.raises(ValueError, match="--keep-checkpoints"):
        run(tiny_config(), checkpoint_path=checkpoints.checkpoint_path("03_x"), resume=True)
    monkeypatch.setenv(KEEP_CHECKPOINTS_ENV, "1")
    kept = checkpoints.checkpoint_path("03_x")
    assert kept == tmp_path / "checkpoints" / "03_x.pt"
    run(tiny_config(epochs=1), checkpoint_path=kept)
    assert checkpoints.load_checkpoint(kept)["epoch"] == 1


def test_student_checkpoints_outside_a_graded_run(monkeypatch):
    """In JupyterLab (no runner variables) checkpoints go to checkpoints/, as before."""
    monkeypatch.delenv(RUN_DIR_ENV, raising=False)
    monkeypatch.delenv(KEEP_CHECKPOINTS_ENV, raising=False)
    assert checkpoints.checkpoint_path("03_x") == PROJECT_ROOT / "checkpoints" / "03_x.pt"

# ---- results -----------------------------------------------------------------------------------

def test_result_json_has_every_field(tmp_path):
    config = tiny_config(epochs=2)
    history = run(config)
    path = results.save_result(tmp_path / "result.json", config, history, ["a", "b", "c"], "cpu")
    record = json.loads(path.read_text())
    assert set(record) >= {"config", "classes", "history", "final_accuracy",
                           "confusion_matrix", "environment"}
    assert record["config"]["lr"] == config.lr and len(record["history"]) == 2
    assert set(record["history"][0]) == {"epoch", "train_loss", "test_loss", "test_accuracy",
                                         "seconds"}
    counts = np.array(record["confusion_matrix"])
    assert counts.shape == (3, 3) and counts.sum() == 10
    assert np.trace(counts) / counts.sum() == pytest.approx(record["final_accuracy"])
    assert {"device", "cpu", "threads", "torch", "numpy", "python"} <= set(record["environment"])


def test_confusion_matrix_counts():
    counts = results.confusion_matrix(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 0]), 3)
    assert counts.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]


def test_tensor_batches_cover_every_image_once():
    images = torch.zeros(10, 1, 4, 4, dtype=torch.uint8)
    labels = torch.arange(10)
    batches = TensorBatches(images, labels, batch_size=4, shuffle=True)
    seen = torch.cat([y for _, y in batches])
    assert len(batches) == 3 and sorted(seen.tolist()) == list(range(10))
    with pytest.raises(ValueError, match="uint8"):
        TensorBatches(images.float(), labels, batch_size=4)


def test_misclassified_spreads_over_classes():
    true = np.array([0, 0, 0, 1, 1, 2])
    pred = np.array([1, 1, 1, 0, 1, 0])  # wrong: 0, 1, 2 (class 0), 3 (class 1), 5 (class 2)
    assert results.misclassified(true, pred, limit=4).tolist() == [0, 3, 5, 1]
    assert results.misclassified(true, true).tolist() == []


def test_resume_with_other_settings_is_refused(tmp_path):
    checkpoint = tmp_path / "ckpt.pt"
    run(tiny_config(), checkpoint_path=checkpoint, stop_after=1)
    with pytest.raises(ValueError, match=r"other settings \(lr: 0.01 -> 0.001\)"):
        run(tiny_config(lr=1e-3), checkpoint_path=checkpoint, resume=True)
    assert len(run(tiny_config(epochs=2), checkpoint_path=checkpoint, resume=True).epochs) == 2


# ---- learning-rate comparison ------------------------------------------------------------------

def test_compare_learning_rates_changes_only_the_lr():
    config = tiny_config()
    train_batches, test_batches = tiny_data()
    runs = lr_study.compare_learning_rates(tiny_model, train_batches, test_batches, config,
                                           lrs=[1e-1, 1e-3, 1e-3], steps=3, loop=LOOP)
    assert [len(r.step_losses) for r in runs] == [3, 3, 3]
    # Same weights and first batch: the first step's loss (before any update) is shared.
    assert runs[0].step_losses[0] == runs[1].step_losses[0]
    # Same lr twice: identical runs (seeded); different lr: different later losses.
    assert runs[1].step_losses == runs[2].step_losses
    assert runs[0].step_losses[1:] != runs[1].step_losses[1:]
    frame = lr_study.step_runs_frame(runs[:2])
    assert list(frame.index) == ["0.1", "0.001"]


def test_compare_learning_rates_rejects_zero_steps():
    train_batches, test_batches = tiny_data()
    with pytest.raises(ValueError, match="steps"):
        lr_study.compare_learning_rates(tiny_model, train_batches, test_batches, tiny_config(),
                                        lrs=[1e-3], steps=0, loop=LOOP)


# ---- load_image gives writable arrays (no torch UserWarning in ImageFolderDataset) -------------

@pytest.mark.parametrize("in_channels", [1, 3])
def test_load_image_is_writable_and_dataset_is_silent(tiny_dataset_dir, in_channels):
    import warnings

    from course_utils.part_one.dataset import ImageFolderDataset, find_images
    from course_utils.part_one.decode import load_image

    index = find_images(tiny_dataset_dir)
    path = index.files["train"][0][0]
    assert load_image(path, 32, in_channels).flags.writeable
    dataset = ImageFolderDataset(index, "train", image_size=32, in_channels=in_channels)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns on a non-writable numpy array
        x, _ = dataset[0]
    assert x.shape == (in_channels, 32, 32)


# ---- warm-up, the report_lower_lr preset, and why a large lr collapses -------------------------

def test_report_lower_lr_preset_changes_only_the_learning_rate():
    report, lower = resolve_config("report"), resolve_config("report_lower_lr")
    assert lower.lr < report.lr
    assert dataclasses.asdict(lower) == {**dataclasses.asdict(report),
                                         "preset": "report_lower_lr", "lr": lower.lr}
    assert resolve_config("report_lower_lr", subset=3, image_size=64).subset == 3


def test_warmup_lr_is_linear_then_flat():
    assert [train.warmup_lr(1.0, step, 4) for step in range(6)] == [0.25, 0.5, 0.75, 1, 1, 1]
    assert train.warmup_lr(0.1, 0, 0) == 0.1
    with pytest.raises(ValueError, match="warmup_epochs"):
        resolve_config("quick", warmup_epochs=-1)


def test_warmup_changes_the_run_and_resumes_exactly(tmp_path):
    plain, warm = run(tiny_config()), run(tiny_config(warmup_epochs=2))
    assert losses(plain)[0] != losses(warm)[0]
    checkpoint = tmp_path / "ckpt.pt"
    run(tiny_config(warmup_epochs=2), checkpoint_path=checkpoint, stop_after=1)
    torch.manual_seed(999)
    train_batches, test_batches = tiny_data()
    resumed = fit(tiny_model(), train_batches, test_batches, tiny_config(warmup_epochs=2),
                  loop=LOOP,
                  checkpoint_path=checkpoint, resume=True)
    assert losses(resumed) == losses(warm)


def test_checkpoint_without_a_newer_field_still_resumes(tmp_path):
    """A checkpoint written before warmup_epochs existed resumes as warmup_epochs=0."""
    checkpoint = tmp_path / "ckpt.pt"
    run(tiny_config(), checkpoint_path=checkpoint, stop_after=1)
    state = torch.load(checkpoint, weights_only=True)
    del state["config"]["warmup_epochs"]
    torch.save(state, checkpoint)
    assert len(run(tiny_config(), checkpoint_path=checkpoint, resume=True).epochs) == 3


def test_on_epoch_sees_every_epoch():
    seen = []
    run(tiny_config(), on_epoch=lambda model, history: seen.append(len(history.epochs)))
    assert seen == [1, 2, 3]


def test_zero_counter_counts_inputs_in_eval_mode_only():
    layer = nn.Linear(4, 2)
    x = torch.tensor([[0.0, 1.0, 0.0, 2.0]])
    with lr_study.ZeroCounter(layer) as zeros:
        layer.train()
        layer(x)
        assert zeros.total == 0  # a training pass is not counted
        layer.eval()
        layer(x)
    layer(x)  # after the block: not counted
    assert (zeros.zeros, zeros.total, zeros.fraction) == (2, 4, 0.5)
    zeros.reset()
    assert np.isnan(zeros.fraction)
    assert np.isnan(lr_study.ZeroCounter(None).fraction)


def test_prediction_counts():
    assert lr_study.prediction_counts(np.array([2, 2, 0]), 4) == [1, 0, 2, 0]


class TinyFc1(nn.Module):
    """Conv -> batch norm -> ReLU -> pool -> dropout -> fc1 -> ReLU -> fc2, like ReportCNN."""

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.dropout = nn.Dropout(0.5)
        self.fc1 = nn.Linear(64, 8)
        self.fc2 = nn.Linear(8, num_classes)

    def forward(self, x):
        x = self.dropout(self.pool(torch.relu(self.bn(self.conv(x)))))
        return self.fc2(torch.relu(self.fc1(torch.flatten(x, 1))))


def test_first_step_moves_scale_with_lr_and_stay_under_the_estimate():
    images, labels = next(iter(tiny_data()[0]))
    rows = lr_study.first_step_moves(TinyFc1, images, labels, tiny_config(), [1e-1, 1e-2, 1e-3],
                                    loop=LOOP)
    assert [r.fc1_fan_in for r in rows] == [64] * 3
    # Same initial weights and batch for every lr: the same input, output and loss before.
    assert len({(r.fc1_input_mean_abs, r.loss_before, r.fc1_output_mean_abs) for r in rows}) == 1
    for r in rows:
        assert r.estimate == pytest.approx(r.lr * 64 * r.fc1_input_mean_abs)
        # Adam's first step moves each weight and bias by at most lr.
        assert 0 < r.fc1_weight_move <= r.estimate + r.lr * 1.0001
        assert r.fc1_output_move_max >= r.fc1_output_move > 0
    # ... by lr times the sign of its gradient: fc1's own move is proportional to lr.
    assert rows[0].fc1_weight_move / rows[1].fc1_weight_move == pytest.approx(10, rel=1e-3)
    frame = lr_study.first_steps_frame(rows)
    assert list(frame.index) == ["0.1", "0.01", "0.001"]


def test_first_step_probe_leaves_batch_norm_statistics_alone():
    model = TinyFc1()
    images, labels = next(iter(tiny_data()[0]))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, z, loss = lr_study.fc1_probe(model, images, labels, torch.device("cpu"), False)
    assert x.shape == (len(labels), 64) and z.shape == (len(labels), 8) and loss > 0
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert model.training and model.dropout.training


def test_compare_learning_rates_counts_predictions_and_fc1_zeros():
    train_batches, test_batches = tiny_data()
    runs = lr_study.compare_learning_rates(TinyFc1, train_batches, test_batches, tiny_config(),
                                           lrs=[1e-2], steps=2, loop=LOOP)
    assert sum(runs[0].predicted_per_class) == 10 and len(runs[0].predicted_per_class) == 3
    assert 0 <= runs[0].fc1_input_zero_fraction <= 1
    assert 0 <= runs[0].fc2_input_zero_fraction <= 1
    plain = lr_study.compare_learning_rates(tiny_model, train_batches, test_batches,
                                            tiny_config(), lrs=[1e-2], steps=2, loop=LOOP)
    assert plain[0].fc1_input_zero_fraction is None  # no fc1: nothing counted
    assert plain[0].fc2_input_zero_fraction is None


def test_train_curves_table_and_figure(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    history = [{"epoch": e, "train_loss": 1.0 / e, "test_loss": 1.0, "test_accuracy": 0.2 * e,
                "seconds": 1.0, "predicted_per_class": [1, 1], "fc1_input_zero_fraction": 0.5}
               for e in (1, 2)]
    run_record = {"name": "lr 0.01, batch 32", "lr": 0.01, "batch_size": 32,
                  "warmup_epochs": 0, "history": history, "final_accuracy": 0.4,
                  "predicted_per_class": [2, 0], "fc1_input_zero_fraction": 1.0}
    record = {"config": {"batch_size": 32}, "classes": ["a", "b"], "runs": [run_record]}
    frame = train_curves.curves_frame(record)
    assert frame.loc["lr 0.01, batch 32", "classes predicted"] == 1
    assert frame.loc["lr 0.01, batch 32", "best epoch's accuracy"] == 0.4
    fig = figures.plot_train_curves(record, 0.58, "title")
    assert len(fig.axes) == 2
    path = tmp_path / "curves.json"
    path.write_text(json.dumps(record))
    assert train_curves.load_train_curves([tmp_path / "missing.json", path])[1] == path
    assert train_curves.load_train_curves([tmp_path / "missing.json"]) is None


def test_train_report_size_benchmark_smoke(tiny_dataset_dir, tmp_path):
    """benchmarks/train_report_size.py end to end at a tiny size: the JSON it commits."""
    import subprocess
    import sys

    out = tmp_path / "curves.json"
    env = {**os.environ, "OUT": ""}
    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "benchmarks" / "train_report_size.py"),
         "--device", "cpu", "--image-size", "32", "--epochs", "1", "--subset", "2",
         "--data-dir", str(tiny_dataset_dir), "--no-build", "--out", str(out),
         "--runs", "lr1e-2_b32", "lr1e-2_b32_warmup", "lr1e-4_b8"],
        capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    record = json.loads(out.read_text())
    assert record["complete"] is True and record["config"]["image_size"] == 32
    assert record["config"]["train_images"] == 12 and record["config"]["test_images"] == 12
    assert record["device_name"] == record["environment"]["cpu"]
    assert [run["key"] for run in record["runs"]] == ["lr1e-2_b32", "lr1e-2_b32_warmup",
                                                      "lr1e-4_b8"]
    assert [(run["lr"], run["batch_size"], run["warmup_epochs"]) for run in record["runs"]] == [
        (1e-2, 32, 0), (1e-2, 32, 2), (1e-4, 8, 0)]
    for run in record["runs"]:
        assert len(run["history"]) == 1 and sum(run["predicted_per_class"]) == 12
        assert 0 <= run["fc1_input_zero_fraction"] <= 1
        assert 0 <= run["fc2_input_zero_fraction"] <= 1
        assert run["history"][0]["predicted_per_class"] == run["predicted_per_class"]
    assert [row["lr"] for row in record["first_step"]["rows"]] == [1e-2, 1e-4]
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically
