"""Training the report's CNN: device choice, presets, the loop, checkpoints, results.

The defaults are the report's set-up (Part One, Questions 5 and 6): CrossEntropyLoss,
Adam(lr=1e-2, weight_decay=1e-4), 10 epochs. The report gives no batch size; we use 32.
The "quick" preset deviates on purpose (lr 1e-4, batch 8, 2 epochs at 64x64: see PRESETS).

    config = resolve_config("quick", epochs=None, lr=None)     # None keeps the preset's value
    train_loader, test_loader, classes = make_loaders(config)
    model = ReportCNN(config.in_channels, len(classes))
    history = fit(model, train_loader, test_loader, config, checkpoint_path="runs/ckpt.pt")

Determinism: every epoch starts with ``torch.manual_seed(seed + epoch)``, so the shuffling
and the dropout masks of epoch ``e`` depend only on (seed, e). A resumed run therefore
replays exactly the epochs an uninterrupted run would have run.
"""

from __future__ import annotations

import io
import itertools
import math
import os
import platform
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from course_utils.atomic import atomic_write, atomic_write_json
from course_utils.part_one import training_loop
from course_utils.paths import KEEP_CHECKPOINTS_ENV, PROJECT_ROOT, run_dir


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (saved in checkpoints and result JSON).

    data_dir: an ImageFolder-style dataset (None: the built-in one); subset: at most this
    many images per class in each split (None: all); warmup_epochs: raise the learning rate
    linearly from lr / steps to lr over this many epochs (0: none; see ``warmup_lr``);
    amp: None (fp32) or "bf16" (autocast, CUDA and CPU);
    channels_last / fused_adam: speed options that do not change the maths (see notebook 04).
    """

    preset: str = "report"
    data_dir: str | None = None
    epochs: int = 10
    image_size: int = 256
    batch_size: int = 32
    lr: float = 1e-2
    weight_decay: float = 1e-4
    warmup_epochs: int = 0
    in_channels: int = 1
    device: str = "auto"
    seed: int = 0
    subset: int | None = None
    amp: str | None = None
    channels_last: bool = True
    fused_adam: bool = True
    progress: bool = True


#: "quick": the notebooks' default, well under a minute on a 2-core CPU: all 300 training
#: images at 64x64, 2 epochs of batch 8 (75 Adam steps) at lr 1e-4. A deliberate deviation
#: from the report's lr=1e-2, measured in notebook 03 ("Going further"): on this budget lr=1e-2
#: and 1e-3 leave the 36-million-parameter model at chance, 1e-4 learns. Batch 8 gives 4x the
#: steps of batch 32 for about the same time per epoch on a CPU.
#: "report": the report's configuration (256x256, 10 epochs, the whole dataset, lr 1e-2).
#: "report_lower_lr": the report's configuration with the one change that makes it learn: a
#: 100x lower learning rate. At lr 1e-2 (and 1e-3) the first Adam steps move every fc1 output
#: by about lr x 279,936 x mean |input| (hundreds at 1e-2), the conv features behind fc1 die
#: and the model predicts one class (notebook 03, "The report's size"; results/*_train_curves.json,
#: written by benchmarks/train_report_size.py, where a warm-up to 1e-2 was measured too).
PRESETS: dict[str, dict[str, Any]] = {
    "quick": {"image_size": 64, "epochs": 2, "subset": None, "batch_size": 8, "lr": 1e-4},
    "report": {"image_size": 256, "epochs": 10, "subset": None, "batch_size": 32, "lr": 1e-2},
    "report_lower_lr": {"image_size": 256, "epochs": 10, "subset": None, "batch_size": 32,
                        "lr": 1e-4},
}

AMP_CHOICES = (None, "bf16")


def resolve_config(preset: str = "quick", **overrides: Any) -> TrainConfig:
    """The preset's configuration with every override that is not None applied.

    Notebooks pass their parameters cell straight in: ``None`` means "use the preset".
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(f"unknown training parameter(s) {unknown}; known: {sorted(known)}")
    values = {"preset": preset, **PRESETS[preset]}
    values.update({k: v for k, v in overrides.items() if v is not None})
    if values.get("data_dir") is not None:
        values["data_dir"] = str(values["data_dir"])
    config = TrainConfig(**values)
    validate_config(config)
    return config


def validate_config(config: TrainConfig) -> None:
    """Raise ValueError naming the parameter when a value cannot work."""
    for name in ("epochs", "image_size", "batch_size", "in_channels"):
        if int(getattr(config, name)) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(config, name)}")
    if config.lr <= 0 or not math.isfinite(config.lr):
        raise ValueError(f"lr must be a positive number, got {config.lr}")
    if config.weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {config.weight_decay}")
    if int(config.warmup_epochs) < 0:
        raise ValueError(f"warmup_epochs must be >= 0 (0: no warm-up), got {config.warmup_epochs}")
    if config.subset is not None and config.subset < 1:
        raise ValueError(f"subset must be None (all images) or >= 1, got {config.subset}")
    if config.amp not in AMP_CHOICES:
        raise ValueError(f"amp must be one of {AMP_CHOICES}, got {config.amp!r}")


# ---- device ---------------------------------------------------------------------------------

def available_devices() -> list[str]:
    """Device types usable here, best first (always ends with "cpu")."""
    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.append("mps")
    return [*found, "cpu"]


def select_device(requested: str = "auto") -> torch.device:
    """"auto" picks cuda, then mps, then cpu; an explicit device must exist here.

    requested: "auto", "cpu", "cuda", "cuda:1", "mps".
    """
    available = available_devices()
    if requested in (None, "auto"):
        return torch.device(available[0])
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise ValueError(f"device {requested!r} is not a device name; use 'auto' or one of "
                         f"{available}") from None
    if device.type not in available:
        raise ValueError(f"device {requested!r} was requested but is not available on this "
                         f"machine; available: {available} (or use device='auto')")
    if device.type == "cuda" and device.index is not None \
            and device.index >= torch.cuda.device_count():
        raise ValueError(f"device {requested!r} does not exist: this machine has "
                         f"{torch.cuda.device_count()} CUDA device(s)")
    return device


# ---- batches ----------------------------------------------------------------------------------

def to_model_input(images: torch.Tensor, device: torch.device,
                   channels_last: bool = False) -> torch.Tensor:
    """uint8 images (N, C, H, W) -> float32 in [0, 1] on ``device``.

    The uint8 batch crosses to the device first: 4x fewer bytes than float32.
    """
    x = images.to(device, non_blocking=True).float().div_(255.0)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


class TensorBatches:
    """Mini-batches from images already decoded in memory (the fast path).

    images: uint8 (N, C, H, W); labels: int64 (N,). Re-iterable: each pass reshuffles with
    the global torch RNG when ``shuffle`` (so ``torch.manual_seed`` fixes the order).
    Yields (uint8 images (B, C, H, W), labels (B,)).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int,
                 shuffle: bool = False) -> None:
        if images.ndim != 4 or images.dtype != torch.uint8:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {images.dtype} "
                             f"{tuple(images.shape)}")
        if len(labels) != len(images):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = labels.long()
        self.batch_size = int(batch_size)
        self.shuffle = shuffle

    def __len__(self) -> int:
        return math.ceil(len(self.images) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.images)
        order = torch.randperm(n) if self.shuffle else torch.arange(n)
        for start in range(0, n, self.batch_size):
            index = order[start:start + self.batch_size]
            yield self.images[index], self.labels[index]


def make_loaders(config: TrainConfig) -> tuple[TensorBatches, TensorBatches, list[str]]:
    """Train and test batches for ``config`` from the decoded cache (course_utils.part_one.cache).

    Returns (train batches, test batches, class names).
    """
    from course_utils.part_one.cache import (
        load_cached_splits,  # local: cache imports data, which is optional here
    )

    splits, classes = load_cached_splits(config.data_dir, config.image_size,
                                         config.in_channels, subset=config.subset,
                                         seed=config.seed)
    train_images, train_labels = splits["train"]
    test_images, test_labels = splits["test"]
    return (TensorBatches(train_images, train_labels, config.batch_size, shuffle=True),
            TensorBatches(test_images, test_labels, config.batch_size, shuffle=False),
            classes)


# ---- one epoch --------------------------------------------------------------------------------

def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam with the report's lr and weight decay; fused kernels when asked (same maths)."""
    return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                            fused=bool(config.fused_adam) or None)


def _autocast(device: torch.device, amp: str | None):
    """bf16 autocast when asked, else a no-op context."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp == "bf16")


def _progress(iterable: Iterable, total: int, desc: str, enabled: bool):
    """A tqdm bar (tqdm.auto: a widget in JupyterLab, text in a terminal), or the iterable."""
    if not enabled:
        return iterable
    try:
        import ipywidgets  # noqa: F401  (tqdm.auto needs it for the notebook widget)
        from tqdm.auto import tqdm
    except ImportError:  # text bar: works everywhere, no "IProgress not found" warning
        from tqdm import tqdm
    return tqdm(iterable, total=total, desc=desc, leave=False)


def make_loss() -> nn.Module:
    """The report's loss (Question 5): cross-entropy on the logits."""
    return nn.CrossEntropyLoss()


def prepare_for_training(model: nn.Module, device: torch.device,
                         channels_last: bool = False) -> nn.Module:
    """``model`` moved to ``device``, in channels_last layout if asked (same maths, faster)."""
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return model


def model_batches(batches: Iterable, device: torch.device, channels_last: bool = False,
                  before_batch: Callable[[int], None] | None = None) -> Iterator[
                      tuple[torch.Tensor, torch.Tensor]]:
    """(x float in [0, 1] on ``device``, labels on ``device``) for each (uint8 images
    (B, C, H, W), labels (B,)) of ``batches``: what ``training_loop``'s functions take.

    before_batch: called as ``before_batch(i)`` just before batch i is handed out, i.e. before
    the optimiser step that uses it (the warm-up sets that step's learning rate there).
    """
    for i, (images, labels) in enumerate(batches):
        if before_batch is not None:
            before_batch(i)
        yield to_model_input(images, device, channels_last), labels.to(device, non_blocking=True)


class Autocast(nn.Module):
    """``model`` whose forward pass runs under bf16 autocast when ``amp == "bf16"``; the logits
    come back in float32, so the loss is computed in float32 (as autocast itself does for
    cross-entropy). Modes and parameters are the wrapped model's."""

    def __init__(self, model: nn.Module, device: torch.device, amp: str | None) -> None:
        super().__init__()
        self.model, self.device_type, self.amp = model, torch.device(device).type, amp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with _autocast(torch.device(self.device_type), self.amp):
            return self.model(x).float()


def _with_amp(model: nn.Module, device: torch.device, amp: str | None) -> nn.Module:
    """``model`` itself in fp32, else wrapped in ``Autocast``."""
    return model if amp is None else Autocast(model, device, amp)


class RecordingLoss(nn.Module):
    """``loss_fn`` that also keeps, per call, the batch's loss (detached), predicted labels and
    true labels: ``training_loop.evaluate`` returns only the mean loss and the accuracy, and
    ``fit`` needs the predictions (confusion matrix), ``train_steps`` the per-step losses."""

    def __init__(self, loss_fn: nn.Module) -> None:
        super().__init__()
        self.loss_fn = loss_fn
        self.losses: list[torch.Tensor] = []
        self.predicted: list[torch.Tensor] = []
        self.true: list[torch.Tensor] = []

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        loss = self.loss_fn(logits, labels)
        self.losses.append(loss.detach())
        self.predicted.append(logits.detach().argmax(1).cpu())
        self.true.append(labels.cpu())
        return loss

    def labels(self) -> tuple[np.ndarray, np.ndarray]:
        """(predicted labels (N,), true labels (N,)) over every call, as int64 arrays."""
        if not self.true:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return torch.cat(self.predicted).numpy(), torch.cat(self.true).numpy()


def warmup_lr(lr: float, step: int, warmup_steps: int) -> float:
    """Learning rate of optimiser step ``step`` (0-based, over the whole run) under a linear
    warm-up: lr * (step + 1) / warmup_steps for the first ``warmup_steps`` steps, then lr."""
    if warmup_steps <= 0:
        return lr
    return lr * min(1.0, (step + 1) / warmup_steps)


def _warmup_at(lr: float, first_step: int, warmup_steps: int, i: int) -> float:
    """``warmup_lr`` for step i of an epoch that starts at global step ``first_step``."""
    return warmup_lr(lr, first_step + i, warmup_steps)


def train_one_epoch(model: nn.Module, batches: Iterable, optimizer: torch.optim.Optimizer,
                    device: torch.device, *, channels_last: bool = False,
                    amp: str | None = None, progress: bool = False,
                    desc: str = "train", lr_at: Callable[[int], float] | None = None) -> float:
    """One pass over ``batches`` (uint8 images (B, C, H, W), labels (B,)); mean train loss.

    The pass itself is ``training_loop.train_one_epoch`` (written in notebook 03); this adds
    the device, the input conversion, autocast and the progress bar.
    lr_at: if given, the learning rate of this epoch's step i is ``lr_at(i)`` (a warm-up).
    """
    def set_lr(i: int) -> None:
        for group in optimizer.param_groups:
            group["lr"] = lr_at(i)

    shown = _progress(batches, len(batches), desc, progress)
    return training_loop.train_one_epoch(
        _with_amp(model, device, amp),
        model_batches(shown, device, channels_last, set_lr if lr_at is not None else None),
        make_loss(), optimizer)


def evaluate(model: nn.Module, batches: Iterable, device: torch.device, *,
             channels_last: bool = False, amp: str | None = None) -> tuple[np.ndarray,
                                                                          np.ndarray, float,
                                                                          float]:
    """``training_loop.evaluate`` (notebook 03) over uint8 ``batches``, keeping the predictions.

    Returns (predicted labels (N,), true labels (N,), mean cross-entropy loss, accuracy;
    nan for no images).
    """
    recorder = RecordingLoss(make_loss())
    loss, accuracy = training_loop.evaluate(_with_amp(model, device, amp),
                                            model_batches(batches, device, channels_last),
                                            recorder)
    pred, true = recorder.labels()
    return pred, true, loss, accuracy if len(true) else float("nan")


def predict(model: nn.Module, batches: Iterable, device: torch.device, *,
            channels_last: bool = False, amp: str | None = None) -> tuple[np.ndarray, np.ndarray,
                                                                          float]:
    """Run the model over ``batches`` in eval mode (``evaluate`` without the accuracy).

    Returns (predicted labels (N,), true labels (N,), mean cross-entropy loss).
    """
    pred, true, loss, _ = evaluate(model, batches, device, channels_last=channels_last, amp=amp)
    return pred, true, loss


def confusion_matrix(true: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """counts[i, j] = images of class i predicted as class j; shape (num_classes, num_classes)."""
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(true), np.asarray(pred)), 1)
    return counts


# ---- checkpoints --------------------------------------------------------------------------------

def save_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    epoch: int, history: list[dict], config: TrainConfig) -> Path:
    """Write model, optimizer, finished-epoch count and history to ``path`` atomically.

    Only tensors, numbers, strings, lists and dicts: loadable with weights_only=True.
    """
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "epoch": int(epoch), "history": history, "config": asdict(config)}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return atomic_write(path, lambda handle: handle.write(buffer.getvalue()))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint`` (weights_only=True: no pickled code)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; train without resume=True first")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated or foreign file: say which, and what to do
        raise ValueError(f"checkpoint {path} cannot be read ({type(error).__name__}); delete it "
                         "and train again without resume=True") from error


# ---- the loop -----------------------------------------------------------------------------------

#: Settings a resumed run may change: they do not alter the epochs already trained.
RESUMABLE_CHANGES = {"epochs", "progress", "device"}


def _check_same_run(saved: dict[str, Any], config: TrainConfig, path: str | Path) -> None:
    """Resuming with other settings would silently mix two runs: refuse, naming them."""
    current = asdict(config)
    # A field added since the checkpoint was written counts as its default (e.g. warmup_epochs).
    defaults = asdict(TrainConfig())
    changed = sorted(k for k in current if k not in RESUMABLE_CHANGES
                     and saved.get(k, defaults[k]) != current[k])
    if changed:
        details = ", ".join(f"{k}: {saved.get(k)!r} -> {current[k]!r}" for k in changed)
        raise ValueError(f"checkpoint {path} was written with other settings ({details}); "
                         "resume with the same settings, or train again without resume=True")


@dataclass
class History:
    """Per-epoch records: epoch, train_loss, test_loss, test_accuracy, seconds."""

    epochs: list[dict] = field(default_factory=list)
    predictions: np.ndarray | None = None  # last epoch's test predictions (N,)
    labels: np.ndarray | None = None       # test labels (N,)

    def column(self, name: str) -> list[float]:
        """One field across epochs, e.g. ``history.column("train_loss")``."""
        return [row[name] for row in self.epochs]

    @property
    def final_accuracy(self) -> float:
        """Test accuracy after the last epoch."""
        return self.epochs[-1]["test_accuracy"]


def fit(model: nn.Module, train_batches: Iterable, test_batches: Iterable, config: TrainConfig,
        *, checkpoint_path: str | Path | None = None, resume: bool = False,
        stop_after: int | None = None,
        on_epoch: Callable[[nn.Module, History], None] | None = None) -> History:
    """Train ``model`` for ``config.epochs`` epochs, evaluating on the test batches each epoch.

    checkpoint_path: where to write a checkpoint after every epoch (atomically; None: none);
    resume: continue from that checkpoint (its epochs are not re-run);
    stop_after: stop after this many epochs of *this call* (simulates an interruption);
    on_epoch: called as ``on_epoch(model, history)`` after each epoch's evaluation (e.g. to
    count that epoch's predictions per class); it must not change the model.
    """
    device = select_device(config.device)
    if config.amp == "bf16" and device.type == "mps":
        raise ValueError("amp='bf16' is supported on cuda and cpu here, not mps; use amp=None")
    prepare_for_training(model, device, config.channels_last)
    optimizer = make_optimizer(model, config)
    history = History()
    start_epoch = 0
    if resume:
        if checkpoint_path is None:
            raise ValueError("resume=True needs checkpoint_path (in a graded run, "
                             "train.checkpoint_path gives None unless the runner is given "
                             "--keep-checkpoints)")
        state = load_checkpoint(checkpoint_path)
        _check_same_run(state["config"], config, checkpoint_path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, history.epochs = state["epoch"], list(state["history"])
    for epoch in range(start_epoch, config.epochs):
        if stop_after is not None and epoch - start_epoch >= stop_after:
            break
        torch.manual_seed(config.seed + epoch)  # shuffling + dropout of this epoch
        started = time.perf_counter()
        lr_at = None
        if config.warmup_epochs:  # the step count is global, so a resumed run continues it
            steps = len(train_batches)
            lr_at = partial(_warmup_at, config.lr, epoch * steps, config.warmup_epochs * steps)
        train_loss = train_one_epoch(
            model, train_batches, optimizer, device, channels_last=config.channels_last,
            amp=config.amp, progress=config.progress,
            desc=f"epoch {epoch + 1}/{config.epochs}", lr_at=lr_at)
        pred, true, test_loss, test_accuracy = evaluate(
            model, test_batches, device, channels_last=config.channels_last, amp=config.amp)
        history.epochs.append({
            "epoch": epoch + 1, "train_loss": train_loss, "test_loss": test_loss,
            "test_accuracy": test_accuracy, "seconds": time.perf_counter() - started})
        history.predictions, history.labels = pred, true
        if on_epoch is not None:
            on_epoch(model, history)
        if checkpoint_path is not None:
            save_checkpoint(checkpoint_path, model, optimizer, epoch + 1, history.epochs, config)
    if history.predictions is None and history.epochs:  # resumed after the last epoch
        history.predictions, history.labels, _ = predict(
            model, test_batches, device, channels_last=config.channels_last, amp=config.amp)
    return history


# ---- results ------------------------------------------------------------------------------------

def environment_info(device: torch.device | str = "cpu") -> dict[str, Any]:
    """Device, processor names, thread count and library versions (stored with every result)."""
    device = torch.device(device)
    info = {"device": str(device), "cpu": _cpu_name(), "threads": torch.get_num_threads(),
            "python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "platform": platform.platform()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    return info


def _cpu_name() -> str:
    """The processor's model name (from /proc/cpuinfo on Linux, else platform)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def result_record(config: TrainConfig, history: History, classes: list[str],
                  device: torch.device | str) -> dict[str, Any]:
    """The JSON-ready result of a run: configuration, history, accuracy, confusion, versions."""
    counts = confusion_matrix(history.labels, history.predictions, len(classes))
    return {"config": asdict(config), "classes": list(classes), "history": history.epochs,
            "final_accuracy": history.final_accuracy, "confusion_matrix": counts.tolist(),
            "environment": environment_info(device)}


def save_result(path: str | Path, config: TrainConfig, history: History, classes: list[str],
                device: torch.device | str) -> Path:
    """Write ``result_record(...)`` to ``path`` as JSON (atomically)."""
    return atomic_write_json(path, result_record(config, history, classes, device))


def with_overrides(config: TrainConfig, **changes: Any) -> TrainConfig:
    """A copy of ``config`` with ``changes`` applied and validated (e.g. lr=1e-3)."""
    changed = replace(config, **changes)
    validate_config(changed)
    return changed


# ---- where a notebook's run writes --------------------------------------------------------------

def checkpoint_path(name: str) -> Path | None:
    """Checkpoint file for notebook ``name``: ``checkpoints/<name>.pt`` outside a graded run.

    A graded run keeps no checkpoint (about 440 MB for the report's CNN): None, so ``fit``
    writes nothing, unless the runner was given ``--keep-checkpoints`` (which sets
    ``$COURSE_KEEP_CHECKPOINTS=1``); then ``<run>/checkpoints/<name>.pt``.
    """
    graded = run_dir()
    if graded is None:
        return PROJECT_ROOT / "checkpoints" / f"{name}.pt"
    if os.environ.get(KEEP_CHECKPOINTS_ENV) != "1":
        return None
    return graded / "checkpoints" / f"{name}.pt"


def graded_result_path(name: str) -> Path | None:
    """``<run>/results/<name>.result.json`` in a graded run; None otherwise (nothing written)."""
    return None if run_dir() is None else run_dir() / "results" / f"{name}.result.json"


# ---- learning-rate comparison (notebook 03, "Going further") ----------------------------------

def train_steps(model: nn.Module, batches: Iterable, optimizer: torch.optim.Optimizer,
                device: torch.device, steps: int, *, channels_last: bool = False) -> list[float]:
    """Up to ``steps`` optimiser steps over ``batches``; the train loss of each step.

    batches yields (uint8 images (B, C, H, W), labels (B,)). Per-step losses show what a
    too-large learning rate does within a few steps, before an epoch-level curve could.
    """
    recorder = RecordingLoss(make_loss())
    training_loop.train_one_epoch(
        model, model_batches(itertools.islice(batches, steps), device, channels_last),
        recorder, optimizer)
    return [float(loss) for loss in recorder.losses]


@dataclass
class StepRun:
    """One learning rate's short run: per-step train losses, then the test loss and accuracy,
    the test predictions counted per class, and the fractions of exact zeros entering fc1 (dead
    conv features) and fc2 (dead fc1 outputs) on the test split, in eval mode (None for a
    model without ``fc1`` / ``fc2``)."""

    lr: float
    step_losses: list[float]
    test_loss: float
    test_accuracy: float
    predicted_per_class: list[int] = field(default_factory=list)
    fc1_input_zero_fraction: float | None = None
    fc2_input_zero_fraction: float | None = None


def compare_learning_rates(make_model: Any, train_batches: Iterable, test_batches: Iterable,
                           config: TrainConfig, lrs: list[float], steps: int) -> list[StepRun]:
    """The same model, data, seed and ``steps`` steps for each lr in ``lrs``; only lr changes.

    make_model: a function () -> a fresh nn.Module, called right after seeding so every lr
    starts from the same weights.
    """
    if int(steps) < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    device = select_device(config.device)
    runs = []
    for lr in lrs:
        run_config = with_overrides(config, lr=float(lr))
        torch.manual_seed(config.seed)  # same initial weights for every lr
        model = prepare_for_training(make_model(), device, config.channels_last)
        optimizer = make_optimizer(model, run_config)
        torch.manual_seed(config.seed)  # same batches (and dropout) for every lr
        losses = train_steps(model, train_batches, optimizer, device, int(steps),
                             channels_last=config.channels_last)
        fc1, fc2 = getattr(model, "fc1", None), getattr(model, "fc2", None)
        with ZeroCounter(fc1) as zeros1, ZeroCounter(fc2) as zeros2:
            pred, true, test_loss = predict(model, test_batches, device,
                                            channels_last=config.channels_last)
        counts = prediction_counts(pred, getattr(model, "num_classes", None) or
                                   int(max(pred.max(initial=0), true.max(initial=0))) + 1)
        runs.append(StepRun(float(lr), losses, test_loss, float((pred == true).mean()),
                            counts, zeros1.fraction if fc1 is not None else None,
                            zeros2.fraction if fc2 is not None else None))
    return runs


def step_runs_frame(runs: list[StepRun], decimals: int = 4) -> pd.DataFrame:
    """One row per lr: first, largest and last-5-mean train loss, then test loss and accuracy."""
    rows = [{"lr": f"{run.lr:g}", "first step loss": run.step_losses[0],
             "largest step loss": max(run.step_losses),
             "mean of last 5 steps": float(np.mean(run.step_losses[-5:])),
             "test_loss": run.test_loss, "test_accuracy": run.test_accuracy} for run in runs]
    return pd.DataFrame(rows).set_index("lr").round(decimals)


# ---- why a large lr collapses the model (notebook 03, "The report's size") ---------------------

def prediction_counts(pred: np.ndarray, num_classes: int) -> list[int]:
    """How many test images were predicted as each class: a list of ``num_classes`` ints."""
    return np.bincount(np.asarray(pred, dtype=np.int64), minlength=num_classes).tolist()


class ZeroCounter:
    """Counts the exact zeros in the input of ``module`` while active (a forward pre-hook).

    Used on fc1: its input is ReLU -> pool2 -> dropout, so a zero there means every ReLU
    output in that pooling window was zero; on fc2: a zero there is a dead fc1 output (its
    ReLU gave 0). eval_only: count only forward passes in eval mode
    (``predict``), not training steps. ``module=None`` counts nothing (fraction: nan).

        with ZeroCounter(model.fc1) as zeros:
            predict(model, test_batches, device)
        zeros.fraction
    """

    def __init__(self, module: nn.Module | None, eval_only: bool = True) -> None:
        self.module = module
        self.eval_only = eval_only
        self.zeros = 0
        self.total = 0
        self._handle = None

    def _hook(self, module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        if self.eval_only and module.training:
            return
        x = args[0]
        self.zeros += int((x == 0).sum())
        self.total += x.numel()

    def __enter__(self) -> ZeroCounter:
        if self.module is not None:
            self._handle = self.module.register_forward_pre_hook(self._hook)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def reset(self) -> None:
        """Start counting again (e.g. at the next epoch)."""
        self.zeros = self.total = 0

    @property
    def fraction(self) -> float:
        """Zeros / entries seen since the last reset (nan if none seen)."""
        return self.zeros / self.total if self.total else float("nan")


@dataclass
class FirstStep:
    """What one Adam step at ``lr`` does to fc1 on one batch (see ``first_step_moves``).

    All "mean" values average over the batch's images and fc1's outputs (or inputs).
    estimate = lr * fc1_fan_in * fc1_input_mean_abs: Adam's first step moves every weight by
    about lr (whatever its gradient's size), so fc1's outputs move by up to lr * sum |input|.
    """

    lr: float
    fc1_fan_in: int
    fc1_input_mean_abs: float     # mean |x| entering fc1, before the step
    estimate: float               # lr * fan-in * mean |x|
    fc1_output_mean_abs: float    # mean |z| of fc1's outputs before the step (their scale)
    fc1_output_move: float        # mean |z_after - z_before| (the whole step: every layer)
    fc1_output_move_max: float    # largest |z_after - z_before|
    fc1_weight_move: float        # mean |dW x + db|: the part from fc1's own weights
    loss_before: float            # the batch's loss before and after the step
    loss_after: float


def _fc1_probe(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
               device: torch.device, channels_last: bool) -> tuple[torch.Tensor, torch.Tensor,
                                                                   float]:
    """fc1's input (B, fan-in) and output (B, out) on one batch, and the batch's loss.

    Batch norm uses the batch's statistics, as in the training step, and dropout is off (no
    random masks); batch norm's running statistics are restored afterwards.
    """
    captured = {}

    def before(module, args):
        captured["x"] = args[0].detach().float().clone()

    def after(module, args, output):
        captured["z"] = output.detach().float().clone()  # clone: a ReLU follows in place

    buffers = {name: b.clone() for name, b in model.named_buffers()}
    model.train()
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.eval()
    handles = [model.fc1.register_forward_pre_hook(before),
               model.fc1.register_forward_hook(after)]
    try:
        with torch.no_grad():
            x = to_model_input(images, device, channels_last)
            loss = float(make_loss()(model(x), labels.to(device)))
    finally:
        for handle in handles:
            handle.remove()
        with torch.no_grad():
            for name, b in model.named_buffers():
                b.copy_(buffers[name])
        model.train()
    return captured["x"], captured["z"], loss


def first_step_moves(make_model: Callable[[], nn.Module], images: torch.Tensor,
                     labels: torch.Tensor, config: TrainConfig,
                     lrs: Iterable[float]) -> list[FirstStep]:
    """For each lr: a fresh model (seeded: the same weights every time), one Adam step on one
    batch, and how far fc1's outputs moved, beside the estimate lr * fan-in * mean |input|.

    images: uint8 (B, C, H, W); labels: (B,). make_model: () -> a model with ``fc1`` (Linear).
    Cheap: one step per lr, three forward passes.
    """
    device = select_device(config.device)
    rows = []
    for lr in lrs:
        torch.manual_seed(config.seed)
        model = prepare_for_training(make_model(), device, config.channels_last)
        optimizer = make_optimizer(model, with_overrides(config, lr=float(lr)))
        fc1 = model.fc1
        x0, z0, loss0 = _fc1_probe(model, images, labels, device, config.channels_last)
        w0, b0 = fc1.weight.detach().clone(), fc1.bias.detach().clone()
        torch.manual_seed(config.seed)  # the step's dropout masks: the same for every lr
        training_loop.train_one_epoch(  # one step, on this one batch
            model, model_batches([(images, labels)], device, config.channels_last), make_loss(),
            optimizer)
        x1, z1, loss1 = _fc1_probe(model, images, labels, device, config.channels_last)
        with torch.no_grad():
            weight_part = x0 @ (fc1.weight.float() - w0.float()).T + (fc1.bias - b0).float()
        mean_abs_x = float(x0.abs().mean())
        move = (z1 - z0).abs()
        rows.append(FirstStep(
            lr=float(lr), fc1_fan_in=fc1.in_features, fc1_input_mean_abs=mean_abs_x,
            estimate=float(lr) * fc1.in_features * mean_abs_x,
            fc1_output_mean_abs=float(z0.abs().mean()), fc1_output_move=float(move.mean()),
            fc1_output_move_max=float(move.max()),
            fc1_weight_move=float(weight_part.abs().mean()), loss_before=loss0,
            loss_after=loss1))
        del model, optimizer
    return rows


def first_steps_frame(rows: list[FirstStep], digits: int = 3) -> pd.DataFrame:
    """One row per lr: mean |input|, the estimate, the measured moves, the batch's loss."""
    def sig(value: float) -> float:
        return float(f"{value:.{digits}g}")

    return pd.DataFrame([{
        "lr": f"{r.lr:g}", "mean |fc1 input|": sig(r.fc1_input_mean_abs),
        "estimate lr x fan-in x mean|input|": sig(r.estimate),
        "fc1 outputs moved (mean)": sig(r.fc1_output_move),
        "(max)": sig(r.fc1_output_move_max),
        "from fc1's weights alone": sig(r.fc1_weight_move),
        "fc1 outputs before (mean |z|)": sig(r.fc1_output_mean_abs),
        "batch loss before": sig(r.loss_before), "after": sig(r.loss_after)}
        for r in rows]).set_index("lr")


# ---- the report's size: committed curves (benchmarks/train_report_size.py) ---------------------

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


# ---- tables and figures for notebook 03 ---------------------------------------------------------

def history_frame(history: History, decimals: int = 4) -> pd.DataFrame:
    """Per-epoch losses and accuracy, rounded (no timings: they differ run to run)."""
    frame = pd.DataFrame(history.epochs, columns=["epoch", "train_loss", "test_loss",
                                                  "test_accuracy"])
    return frame.round(decimals).set_index("epoch")


def per_class_accuracy(counts: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """From a confusion matrix (K, K): test images, correct and accuracy per class."""
    images = counts.sum(axis=1)
    correct = np.diag(counts)
    return pd.DataFrame({"class": classes, "images": images, "correct": correct,
                         "accuracy": np.round(correct / np.maximum(images, 1), 4)})


def misclassified(true: np.ndarray, pred: np.ndarray, limit: int = 8) -> np.ndarray:
    """Indices (at most ``limit``) of wrongly predicted test images, spread over the classes.

    The first wrong image of each true class comes first, then the second of each, and so on,
    so the examples are not all of one class.
    """
    true = np.asarray(true)
    wrong = np.flatnonzero(true != np.asarray(pred))
    rank = np.array([np.sum(true[wrong[:k]] == true[i]) for k, i in enumerate(wrong)])
    order = np.lexsort((wrong, rank))  # by rank within its class, then by position
    return wrong[order][:limit]


