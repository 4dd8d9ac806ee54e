"""course_utils.train: presets, devices, determinism, resume, checkpoints, result JSON.

A tiny CNN on random in-memory data keeps these fast; the loop is the one notebook 03 uses.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from torch import nn

from course_utils import train
from course_utils.paths import KEEP_CHECKPOINTS_ENV, PROJECT_ROOT, RUN_DIR_ENV
from course_utils.train import TensorBatches, TrainConfig, fit, resolve_config


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
    return fit(model, train_batches, test_batches, config, **kwargs)


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
    assert train.select_device("cpu").type == "cpu"
    assert train.select_device("auto").type == train.available_devices()[0]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_missing_device_is_a_clear_error():
    with pytest.raises(ValueError, match=r"not available.*available: \[.*'cpu'\]"):
        train.select_device("cuda")


def test_unknown_device_name_is_a_clear_error():
    with pytest.raises(ValueError, match="not a device name"):
        train.select_device("gpu0")


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
    resumed = fit(model, train_batches, test_batches, tiny_config(),
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
    assert train.load_checkpoint(checkpoint)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]  # no temporary left behind


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    checkpoint = tmp_path / "ckpt.pt"
    checkpoint.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="ckpt.pt.*resume=True"):
        train.load_checkpoint(checkpoint)
    with pytest.raises(FileNotFoundError, match="resume=True"):
        train.load_checkpoint(tmp_path / "missing.pt")


# ---- checkpoints in a graded run ---------------------------------------------------------------

def test_graded_run_keeps_no_checkpoint_unless_asked(tmp_path, monkeypatch):
    """The runner sets COURSE_RUN_DIR; only --keep-checkpoints adds COURSE_KEEP_CHECKPOINTS=1."""
    monkeypatch.setenv(RUN_DIR_ENV, str(tmp_path))
    monkeypatch.delenv(KEEP_CHECKPOINTS_ENV, raising=False)
    assert train.checkpoint_path("03_x") is None
    history = run(tiny_config(epochs=2), checkpoint_path=train.checkpoint_path("03_x"))
    assert len(history.epochs) == 2 and not any(tmp_path.rglob("*"))  # nothing written
    with pytest.raises(ValueError, match="--keep-checkpoints"):
        run(tiny_config(), checkpoint_path=train.checkpoint_path("03_x"), resume=True)
    monkeypatch.setenv(KEEP_CHECKPOINTS_ENV, "1")
    kept = train.checkpoint_path("03_x")
    assert kept == tmp_path / "checkpoints" / "03_x.pt"
    run(tiny_config(epochs=1), checkpoint_path=kept)
    assert train.load_checkpoint(kept)["epoch"] == 1


def test_student_checkpoints_outside_a_graded_run(monkeypatch):
    """In JupyterLab (no runner variables) checkpoints go to checkpoints/, as before."""
    monkeypatch.delenv(RUN_DIR_ENV, raising=False)
    monkeypatch.delenv(KEEP_CHECKPOINTS_ENV, raising=False)
    assert train.checkpoint_path("03_x") == PROJECT_ROOT / "checkpoints" / "03_x.pt"

# ---- results -----------------------------------------------------------------------------------

def test_result_json_has_every_field(tmp_path):
    config = tiny_config(epochs=2)
    history = run(config)
    path = train.save_result(tmp_path / "result.json", config, history, ["a", "b", "c"], "cpu")
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
    counts = train.confusion_matrix(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 0]), 3)
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
    assert train.misclassified(true, pred, limit=4).tolist() == [0, 3, 5, 1]
    assert train.misclassified(true, true).tolist() == []


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
    runs = train.compare_learning_rates(tiny_model, train_batches, test_batches, config,
                                        lrs=[1e-1, 1e-3, 1e-3], steps=3)
    assert [len(r.step_losses) for r in runs] == [3, 3, 3]
    # Same weights and first batch: the first step's loss (before any update) is shared.
    assert runs[0].step_losses[0] == runs[1].step_losses[0]
    # Same lr twice: identical runs (seeded); different lr: different later losses.
    assert runs[1].step_losses == runs[2].step_losses
    assert runs[0].step_losses[1:] != runs[1].step_losses[1:]
    frame = train.step_runs_frame(runs[:2])
    assert list(frame.index) == ["0.1", "0.001"]


def test_compare_learning_rates_rejects_zero_steps():
    train_batches, test_batches = tiny_data()
    with pytest.raises(ValueError, match="steps"):
        train.compare_learning_rates(tiny_model, train_batches, test_batches, tiny_config(),
                                     lrs=[1e-3], steps=0)


# ---- load_image gives writable arrays (no torch UserWarning in ImageFolderDataset) -------------

@pytest.mark.parametrize("in_channels", [1, 3])
def test_load_image_is_writable_and_dataset_is_silent(tiny_dataset_dir, in_channels):
    import warnings

    from course_utils.data import ImageFolderDataset, find_images, load_image

    index = find_images(tiny_dataset_dir)
    path = index.files["train"][0][0]
    assert load_image(path, 32, in_channels).flags.writeable
    dataset = ImageFolderDataset(index, "train", image_size=32, in_channels=in_channels)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns on a non-writable numpy array
        x, _ = dataset[0]
    assert x.shape == (in_channels, 32, 32)
