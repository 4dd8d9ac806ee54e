"""What the learning rate does (notebook 03, "Going further" and "The report's size"): the same
model, data and seed for a few steps at each lr (``compare_learning_rates``), the zeros that
dead features leave (``ZeroCounter``), and what one Adam step does to fc1
(``first_step_moves``)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from course_utils.part_one.devices import prepare_model, select_device
from course_utils.part_one.loaders import model_batches, to_model_input
from course_utils.part_one.presets import TrainConfig, with_overrides
from course_utils.part_one.train import (
    RecordingLoss,
    TrainingLoop,
    make_loss,
    make_optimizer,
    predict,
)
from course_utils.validation import require_int


def train_steps(model: nn.Module, batches: Iterable, optimizer: torch.optim.Optimizer,
                device: torch.device, steps: int, *, loop: TrainingLoop,
                channels_last: bool = False) -> list[float]:
    """Up to ``steps`` optimiser steps over ``batches``; the train loss of each step.

    batches yields (uint8 images (B, C, H, W), labels (B,)). Per-step losses show what a
    too-large learning rate does within a few steps, before an epoch-level curve could.
    """
    recorder = RecordingLoss(make_loss())
    loop.train_one_epoch(
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
                           config: TrainConfig, lrs: list[float], steps: int, *,
                           loop: TrainingLoop) -> list[StepRun]:
    """The same model, data, seed and ``steps`` steps for each lr in ``lrs``; only lr changes.

    make_model: a function () -> a fresh nn.Module, called right after seeding so every lr
    starts from the same weights. loop: the notebook's ``TrainingLoop``.
    """
    steps = require_int("steps", steps)
    device = select_device(config.device)
    runs = []
    for lr in lrs:
        run_config = with_overrides(config, lr=float(lr))
        torch.manual_seed(config.seed)  # same initial weights for every lr
        model = prepare_model(make_model(), device, config.channels_last)
        optimizer = make_optimizer(model, run_config)
        torch.manual_seed(config.seed)  # same batches (and dropout) for every lr
        losses = train_steps(model, train_batches, optimizer, device, steps, loop=loop,
                             channels_last=config.channels_last)
        fc1, fc2 = getattr(model, "fc1", None), getattr(model, "fc2", None)
        with ZeroCounter(fc1) as zeros1, ZeroCounter(fc2) as zeros2:
            pred, true, test_loss = predict(model, test_batches, device, loop=loop,
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
            predict(model, test_batches, device, loop=loop)
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


def fc1_probe(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
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
                     lrs: Iterable[float], *, loop: TrainingLoop) -> list[FirstStep]:
    """For each lr: a fresh model (seeded: the same weights every time), one Adam step on one
    batch, and how far fc1's outputs moved, beside the estimate lr * fan-in * mean |input|.

    images: uint8 (B, C, H, W); labels: (B,). make_model: () -> a model with ``fc1`` (Linear).
    Cheap: one step per lr, three forward passes. loop: the notebook's ``TrainingLoop``.
    """
    device = select_device(config.device)
    rows = []
    for lr in lrs:
        torch.manual_seed(config.seed)
        model = prepare_model(make_model(), device, config.channels_last)
        optimizer = make_optimizer(model, with_overrides(config, lr=float(lr)))
        fc1 = model.fc1
        x0, z0, loss0 = fc1_probe(model, images, labels, device, config.channels_last)
        w0, b0 = fc1.weight.detach().clone(), fc1.bias.detach().clone()
        torch.manual_seed(config.seed)  # the step's dropout masks: the same for every lr
        loop.train_one_epoch(  # one step, on this one batch
            model, model_batches([(images, labels)], device, config.channels_last), make_loss(),
            optimizer)
        x1, z1, loss1 = fc1_probe(model, images, labels, device, config.channels_last)
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
