"""03 · Training the report's CNN.

GENERATED from the cells marked ``#| export`` in notebooks/03_training.ipynb by
``python -m course_utils.instructor.grading export`` (``make export``): edit the notebook, not
this file.
``tests/test_grading_export.py`` fails when this file is stale.
"""

# Given code: the imports the two functions below need.
from collections.abc import Callable, Iterable

import torch
from torch import nn


def train_one_epoch(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                    optimizer: torch.optim.Optimizer) -> float:
    """One pass over ``batches`` with one optimiser step per batch.

    Inputs: model maps x (B, C, H, W) to logits (B, K); batches yields (x (B, C, H, W) float,
    y (B,) int64), already on the model's device; loss_fn(logits, y) is the batch's mean loss
    (a 0-d tensor); optimizer holds the model's parameters.
    Returns the mean loss over the epoch's images (a float; 0.0 for no batches).
    """
    model.train()  # dropout on; batch norm normalises with (and updates) the batch's statistics
    total, images = 0.0, 0
    for x, y in batches:
        optimizer.zero_grad()  # .backward() adds to .grad: clear the previous step's gradients
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        # detached and left on the device: .item() here would wait for the GPU at every step
        total = total + loss.detach() * len(y)
        images += len(y)
    return float(total) / max(images, 1)


def evaluate(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
             loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> tuple[float, float]:
    """One pass over ``batches`` in eval mode without gradients: the loss and the accuracy.

    Inputs: as ``train_one_epoch`` (no optimiser).
    Returns (mean loss over the images, fraction of images whose argmax logit is the label);
    (0.0, 0.0) for no batches.
    """
    model.eval()  # dropout off; batch norm uses (and keeps) its running statistics
    total, correct, images = 0.0, 0, 0
    with torch.inference_mode():  # no autograd graph: less memory, faster
        for x, y in batches:
            logits = model(x)
            total = total + loss_fn(logits, y) * len(y)
            correct = correct + (logits.argmax(1) == y).sum()
            images += len(y)
    return float(total) / max(images, 1), float(correct) / max(images, 1)
