"""Notebook 03's exercise checks: the student's training step and evaluation loop against an
independent reference loop.

A torch model cannot cross into the grading sandbox, so the notebook gives a driver,
``tiny_training_run(seed, ...)``, that builds a tiny float64 CNN (conv 3x3 -> batch norm ->
ReLU -> linear) and a few 6x6 images from numpy's generator ``seed`` inside the sandbox, runs
the student's ``train_one_epoch`` / ``evaluate`` with plain SGD and cross-entropy, and returns
plain numbers and flags. The reference below rebuilds the same weights and images and trains
them with ``torch.nn.functional`` and ``torch.autograd.grad`` and a hand-written SGD update
(no ``nn.Module``, no ``torch.optim``, nothing from the course's exported code), then compares
every step's loss, the per-epoch means, the final weights and the flags.

Float64 on a model of 113 weights over a few steps: the student's and the reference's losses
agree to ~1e-15 on any CPU; ``RTOL`` / ``ATOL`` leave many orders of magnitude of room, and a
forgotten ``zero_grad`` moves the second step's loss by ~1e-2.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from course_utils.exercise_checks.assertions import (
    assert_array,
    assert_number,
    call_text,
    fail,
    require_defined,
)

ATOL = 1e-9
RTOL = 1e-7
TEST_IMAGES = 6
BN_MOMENTUM, BN_EPS = 0.1, 1e-5  # nn.BatchNorm2d's defaults

HINTS = {  # the idea or the shape to check, never the code (issue 16)
    "train_one_epoch": "one optimiser step per batch, in the model's training mode; gradients "
                       "add up unless cleared; the mean loss is per image (batches differ in "
                       "size).",
    "evaluate": "the model only measures: no gradients, and dropout and batch norm in their "
                "evaluation behaviour; both numbers are means per image, returned as floats.",
}


# ---------------------------------------------------------------------------------------------
# The reference: the same tiny problem, trained with functional torch and a hand-written SGD
# ---------------------------------------------------------------------------------------------


def reference_problem(seed: int, train_images: int) -> dict[str, np.ndarray]:
    """The driver's images x (N, 1, 6, 6), labels y (N,) and weights, from numpy's ``seed``
    (the same draws, in the same order, as the notebook's ``tiny_problem``)."""
    rng = np.random.default_rng(seed)
    n = train_images + TEST_IMAGES
    return {
        "x": rng.normal(size=(n, 1, 6, 6)),
        "y": rng.integers(0, 3, size=n),
        "conv.weight": rng.normal(size=(2, 1, 3, 3)) / 3,
        "conv.bias": rng.normal(size=2) / 10,
        "bn.weight": rng.uniform(0.5, 1.5, size=2),
        "bn.bias": rng.normal(size=2) / 10,
        "bn.running_mean": rng.normal(size=2) / 2,
        "bn.running_var": rng.uniform(0.5, 2.0, size=2),
        "fc.weight": rng.normal(size=(3, 32)) / np.sqrt(32),
        "fc.bias": np.zeros(3),
    }


PARAMETERS = ("conv.weight", "conv.bias", "bn.weight", "bn.bias", "fc.weight", "fc.bias")


def _forward(params: dict[str, torch.Tensor], stats: dict[str, torch.Tensor], x: torch.Tensor,
             training: bool) -> torch.Tensor:
    """Logits (B, 3); batch norm uses the batch's statistics and updates ``stats`` in training,
    uses ``stats`` otherwise."""
    h = F.conv2d(x, params["conv.weight"], params["conv.bias"])
    h = F.batch_norm(h, stats["bn.running_mean"], stats["bn.running_var"], params["bn.weight"],
                     params["bn.bias"], training=training, momentum=BN_MOMENTUM, eps=BN_EPS)
    return F.linear(F.relu(h).flatten(1), params["fc.weight"], params["fc.bias"])


def reference_run(seed: int, epochs: int = 2, train_images: int = 8, batch_size: int = 4,
                  lr: float = 0.5, train: bool = True,
                  evaluate_each_epoch: bool = True) -> dict[str, Any]:
    """What ``tiny_training_run`` must return for a correct train_one_epoch and evaluate."""
    problem = reference_problem(seed, train_images)
    params = {k: torch.tensor(problem[k], requires_grad=True) for k in PARAMETERS}
    stats = {k: torch.tensor(problem[k]) for k in ("bn.running_mean", "bn.running_var")}
    x, y = torch.tensor(problem["x"]), torch.tensor(problem["y"])
    train_x, train_y, test_x, test_y = x[:train_images], y[:train_images], x[train_images:], \
        y[train_images:]
    out: dict[str, Any] = {"train_losses": [], "step_losses": [], "eval_losses": [],
                           "eval_accuracies": []}
    for _ in range(epochs):
        if train:
            total = 0.0
            for start in range(0, train_images, batch_size):
                xb, yb = train_x[start:start + batch_size], train_y[start:start + batch_size]
                loss = F.cross_entropy(_forward(params, stats, xb, training=True), yb)
                grads = torch.autograd.grad(loss, [params[k] for k in PARAMETERS])
                with torch.no_grad():
                    for key, grad in zip(PARAMETERS, grads, strict=True):
                        params[key] -= lr * grad  # plain SGD, from this step's gradient only
                out["step_losses"].append(loss.item())
                total += loss.item() * len(yb)
            out["train_losses"].append(total / train_images)
        if evaluate_each_epoch:
            loss_sum, correct = 0.0, 0
            with torch.no_grad():
                for start in range(0, TEST_IMAGES, batch_size):
                    xb, yb = test_x[start:start + batch_size], test_y[start:start + batch_size]
                    logits = _forward(params, stats, xb, training=False)
                    loss_sum += F.cross_entropy(logits, yb, reduction="sum").item()
                    correct += int((logits.argmax(1) == yb).sum())
            out["eval_losses"].append(loss_sum / TEST_IMAGES)
            out["eval_accuracies"].append(correct / TEST_IMAGES)
    out["final_weights"] = np.concatenate([params[k].detach().numpy().ravel()
                                           for k in PARAMETERS])
    return out


# ---------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------


def _run(run: Callable, name: str, function: Any, call: str, **kwargs: Any) -> dict[str, Any]:
    require_defined(function, name)
    require_defined(run, "tiny_training_run")
    got = run(**kwargs)
    if not isinstance(got, dict):
        fail(call, f"expected a dict, got {type(got).__name__}: the given driver "
                   "tiny_training_run was changed; restore it", None)
    return got


def _flags(got: dict, key: str, expected: bool, call: str, problem: str, name: str) -> None:
    flags = got.get(key)
    if not isinstance(flags, list) or not flags:
        fail(call, f"{key}: the model was never called (no forward pass recorded)",
             HINTS[name])
    if any(bool(flag) != expected for flag in flags):
        bad = sum(bool(flag) != expected for flag in flags)
        fail(call, f"{problem} in {bad} of {len(flags)} forward passes", HINTS[name])


def _losses(got: Any, expected: list[float], call: str, what: str, name: str,
            hint: str | None = None) -> None:
    if not isinstance(got, list) or len(got) != len(expected):
        fail(call, f"expected {len(expected)} {what}, got {got!r}", hint or HINTS[name])
    for index, (value, reference) in enumerate(zip(got, expected, strict=True)):
        if value is None:
            fail(call, f"{what} {index + 1} is not a number (did the function return the "
                       "mean loss as a float?)", hint or HINTS[name])
        assert_number(value, reference, call, hint or HINTS[name], f"{what} {index + 1}",
                      atol=ATOL, rtol=RTOL)


def check_train_one_epoch(run: Callable, train_one_epoch: Any, seed: int, epochs: int = 2,
                          train_images: int = 8, batch_size: int = 4, lr: float = 0.5) -> None:
    """``epochs`` epochs of the student's train_one_epoch (no evaluation in between) against
    the reference loop: every step's loss, each epoch's mean, the final weights, train mode."""
    kwargs = dict(epochs=epochs, train_images=train_images, batch_size=batch_size, lr=lr,
                  train=True, evaluate_each_epoch=False)
    call = call_text("tiny_training_run", seed, **kwargs) + " (runs your train_one_epoch)"
    got = _run(run, "train_one_epoch", train_one_epoch, call, seed=seed, **kwargs)
    expected = reference_run(seed, **kwargs)
    _flags(got, "train_forward_training", True, call,
           "the model was in eval mode (it is handed over in eval mode: call model.train())",
           "train_one_epoch")
    steps = got.get("step_losses")
    if not isinstance(steps, list) or len(steps) != len(expected["step_losses"]):
        fail(call, f"expected {len(expected['step_losses'])} calls of loss_fn (one per batch "
                   f"per epoch), got {len(steps) if isinstance(steps, list) else steps!r}",
             HINTS["train_one_epoch"])
    for index, (value, reference) in enumerate(zip(steps, expected["step_losses"], strict=True)):
        if not abs(value - reference) <= ATOL + RTOL * abs(reference):
            where = ("the very first batch's loss is wrong: check the forward pass "
                     "loss_fn(model(x), y)" if index == 0 else
                     f"steps 1 to {index} match the reference, step {index + 1} does not: "
                     "the update is wrong. Clear the old gradients (optimizer.zero_grad()) "
                     "before loss.backward(), then optimizer.step(), once per batch")
            fail(call, f"loss of step {index + 1}: expected {reference:.10g}, got "
                       f"{value:.10g}; {where}", HINTS["train_one_epoch"])
    _losses(got.get("train_losses"), expected["train_losses"], call,
            "epoch mean loss (the value train_one_epoch returns)", "train_one_epoch",
            "return the mean over the epoch's images: sum loss * len(y) over the batches, "
            "divided by the number of images (batches may differ in size).")
    assert_array(got.get("final_weights"), expected["final_weights"], call,
                 HINTS["train_one_epoch"], "the weights after training", atol=1e-8)


def check_evaluate(run: Callable, evaluate: Any, seed: int, epochs: int = 2,
                   batch_size: int = 4) -> None:
    """The student's evaluate, called ``epochs`` times on the untrained tiny model (handed over
    in train mode), against the reference: loss, accuracy, eval mode, no gradients, no change."""
    kwargs = dict(epochs=epochs, train_images=0, batch_size=batch_size, train=False,
                  evaluate_each_epoch=True)
    call = call_text("tiny_training_run", seed, **kwargs) + " (runs your evaluate)"
    got = _run(run, "evaluate", evaluate, call, seed=seed, **kwargs)
    expected = reference_run(seed, **kwargs)
    _flags(got, "eval_forward_training", False, call,
           "the model was in train mode (it is handed over in train mode: call model.eval(), "
           "so batch norm uses its running statistics)", "evaluate")
    _flags(got, "eval_forward_grad", False, call,
           "gradients were being recorded (wrap the loop in `with torch.inference_mode():`)",
           "evaluate")
    if got.get("evaluate_changed_state"):
        fail(call, "evaluate changed the model's weights or batch-norm statistics",
             HINTS["evaluate"])
    if got.get("eval_losses") and got["eval_losses"][0] is None:
        fail(call, "evaluate did not return (mean loss, accuracy), two numbers",
             HINTS["evaluate"])
    _losses(got.get("eval_losses"), expected["eval_losses"], call, "mean test loss",
            "evaluate", "the mean over the images: sum loss * len(y) over the batches, divided "
            "by the number of images (the last batch is smaller).")
    _losses(got.get("eval_accuracies"), expected["eval_accuracies"], call, "accuracy",
            "evaluate", "accuracy = (number of images whose argmax over the logits equals the "
            "label) / (number of images), a float between 0 and 1.")
