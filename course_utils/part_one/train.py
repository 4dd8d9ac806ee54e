"""Training the report's CNN: the optimiser, the loss, one epoch, evaluation, and ``fit``.

One epoch and one evaluation pass are the two functions a student writes in notebook 03,
passed in as a ``TrainingLoop`` (CS231n style: this package never holds them); this module adds
the device, the input conversion, autocast, the warm-up and the progress bar, and ``fit`` runs
them epoch after epoch, with a checkpoint after each.

    config = presets.resolve_config("quick", epochs=None, lr=None)  # None: the preset's value
    train_loader, test_loader, classes = loaders.make_loaders(config)
    model = ReportCNN(config.in_channels, len(classes))
    loop = TrainingLoop(train_one_epoch, evaluate)  # the notebook's own functions
    history = fit(model, train_loader, test_loader, config, loop=loop,
                  checkpoint_path="runs/ckpt.pt")

Determinism: every epoch starts with ``torch.manual_seed(seed + epoch)``, so the shuffling
and the dropout masks of epoch ``e`` depend only on (seed, e). A resumed run therefore
replays exactly the epochs an uninterrupted run would have run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn

from course_utils.part_one.checkpoints import resume_from, save_checkpoint
from course_utils.part_one.devices import autocast, prepare_model, select_device
from course_utils.part_one.loaders import model_batches
from course_utils.part_one.presets import TrainConfig


@dataclass(frozen=True)
class TrainingLoop:
    """The two functions notebook 03 teaches, given to ``fit`` and the learning-rate study.

    train_one_epoch(model, batches, loss_fn, optimizer) -> mean train loss (float);
    evaluate(model, batches, loss_fn) -> (mean loss, accuracy). batches yields float images
    (B, C, H, W) and labels (B,) already on the model's device.
    """

    train_one_epoch: Callable[..., float]
    evaluate: Callable[..., tuple[float, float]]


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam with the report's lr and weight decay; fused kernels when asked (same maths)."""
    return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                            fused=bool(config.fused_adam) or None)


def make_loss() -> nn.Module:
    """The report's loss (Question 5): cross-entropy on the logits."""
    return nn.CrossEntropyLoss()


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


class Autocast(nn.Module):
    """``model`` whose forward pass runs under bf16 autocast when ``amp == "bf16"``; the logits
    come back in float32, so the loss is computed in float32 (as autocast itself does for
    cross-entropy). Modes and parameters are the wrapped model's."""

    def __init__(self, model: nn.Module, device: torch.device, amp: str | None) -> None:
        super().__init__()
        self.model, self.device_type, self.amp = model, torch.device(device).type, amp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with autocast(torch.device(self.device_type), self.amp):
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
                    device: torch.device, *, loop: TrainingLoop, channels_last: bool = False,
                    amp: str | None = None, progress: bool = False,
                    desc: str = "train", lr_at: Callable[[int], float] | None = None) -> float:
    """One pass over ``batches`` (uint8 images (B, C, H, W), labels (B,)); mean train loss.

    The pass itself is ``loop.train_one_epoch`` (written in notebook 03); this adds
    the device, the input conversion, autocast and the progress bar.
    lr_at: if given, the learning rate of this epoch's step i is ``lr_at(i)`` (a warm-up).
    """
    def set_lr(i: int) -> None:
        for group in optimizer.param_groups:
            group["lr"] = lr_at(i)

    shown = _progress(batches, len(batches), desc, progress)
    return loop.train_one_epoch(
        _with_amp(model, device, amp),
        model_batches(shown, device, channels_last, set_lr if lr_at is not None else None),
        make_loss(), optimizer)


def evaluate(model: nn.Module, batches: Iterable, device: torch.device, *, loop: TrainingLoop,
             channels_last: bool = False, amp: str | None = None) -> tuple[np.ndarray,
                                                                          np.ndarray, float,
                                                                          float]:
    """``loop.evaluate`` (notebook 03) over uint8 ``batches``, keeping the predictions.

    Returns (predicted labels (N,), true labels (N,), mean cross-entropy loss, accuracy;
    nan for no images).
    """
    recorder = RecordingLoss(make_loss())
    loss, accuracy = loop.evaluate(_with_amp(model, device, amp),
                                   model_batches(batches, device, channels_last), recorder)
    pred, true = recorder.labels()
    return pred, true, loss, accuracy if len(true) else float("nan")


def predict(model: nn.Module, batches: Iterable, device: torch.device, *, loop: TrainingLoop,
            channels_last: bool = False, amp: str | None = None) -> tuple[np.ndarray, np.ndarray,
                                                                          float]:
    """Run the model over ``batches`` in eval mode (``evaluate`` without the accuracy).

    Returns (predicted labels (N,), true labels (N,), mean cross-entropy loss).
    """
    pred, true, loss, _ = evaluate(model, batches, device, loop=loop,
                                   channels_last=channels_last, amp=amp)
    return pred, true, loss


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
        *, loop: TrainingLoop, checkpoint_path: str | Path | None = None, resume: bool = False,
        stop_after: int | None = None,
        on_epoch: Callable[[nn.Module, History], None] | None = None) -> History:
    """Train ``model`` for ``config.epochs`` epochs, evaluating on the test batches each epoch.

    loop: the notebook's ``train_one_epoch`` and ``evaluate`` (``TrainingLoop``);

    checkpoint_path: where to write a checkpoint after every epoch (atomically; None: none);
    resume: continue from that checkpoint (its epochs are not re-run);
    stop_after: stop after this many epochs of *this call* (simulates an interruption);
    on_epoch: called as ``on_epoch(model, history)`` after each epoch's evaluation (e.g. to
    count that epoch's predictions per class); it must not change the model.
    """
    device = select_device(config.device)
    if config.amp == "bf16" and device.type == "mps":
        raise ValueError("amp='bf16' is supported on cuda and cpu here, not mps; use amp=None")
    prepare_model(model, device, config.channels_last)
    optimizer = make_optimizer(model, config)
    history = History()
    start_epoch = 0
    if resume:
        if checkpoint_path is None:
            raise ValueError("resume=True needs checkpoint_path (in a graded run, "
                             "checkpoints.checkpoint_path gives None unless the runner is given "
                             "--keep-checkpoints)")
        start_epoch, history.epochs = resume_from(checkpoint_path, model, optimizer, config)
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
            model, train_batches, optimizer, device, loop=loop, channels_last=config.channels_last,
            amp=config.amp, progress=config.progress,
            desc=f"epoch {epoch + 1}/{config.epochs}", lr_at=lr_at)
        pred, true, test_loss, test_accuracy = evaluate(
            model, test_batches, device, loop=loop, channels_last=config.channels_last,
            amp=config.amp)
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
            model, test_batches, device, loop=loop, channels_last=config.channels_last,
            amp=config.amp)
    return history
