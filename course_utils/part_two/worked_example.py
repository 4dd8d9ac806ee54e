"""The report's worked example (Part Two): its inputs, and its forward and backward pass.

The report runs one forward and backward pass through
conv (2x2 kernel, stride 1, no bias) -> 2x2 max-pool -> sigmoid -> fully connected (2 outputs)
and one SGD step. ``Inputs`` holds that pass's inputs; ``forward_backward`` redoes it with the
layers notebook 06 writes (passed in as ``Layers``: this package never holds them) and
``forward_backward_torch`` with torch.autograd (the independent check). The figure with the
inputs was lost: ``worked_example_recovery`` derives them from the numbers the report prints,
``worked_example_search`` finds the image entries inside the winning windows, and
``worked_example_checks`` compares our pass with every printed number.

Every input is a number with two decimals (``GRID``): ``on_grid`` and ``distance_to_grid`` put
a recovered value on that grid and say how far it was from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from course_utils.part_two import scratch

#: The input image of the public copy of this exercise (Data Science Stack Exchange, question
#: 27506, "Back propagation in CNN"). DATA, not derived: we take its 11 entries that the
#: report leaves undetermined (``FREE_ENTRIES``). Its entries (2, 3) and (3, 1) differ from
#: what the report's numbers require (0.03 and 0.00; see notebook 06).
PUBLIC_COPY_X = np.array([
    [0.51, 0.90, 0.88, 0.84, 0.05],
    [0.40, 0.62, 0.22, 0.59, 0.10],
    [0.11, 0.20, 0.74, 0.33, 0.14],
    [0.47, 0.01, 0.85, 0.70, 0.09],
    [0.76, 0.19, 0.72, 0.17, 0.57],
])


#: Image entries that appear only in the rounded conv output (the report bounds, not fixes them).
FREE_ENTRIES = ((0, 0), (0, 1), (0, 4), (1, 0), (1, 4), (2, 0), (2, 4), (3, 0), (4, 0),
                (4, 1), (4, 2))

POOL = 2  # the report's max-pool: 2x2 windows, stride 2
GRID = 100  # inputs are printed with two decimals: integer multiples of 1/GRID


def distance_to_grid(x: np.ndarray) -> float:
    """Largest distance of any entry of x from the two-decimal grid (0 when on it)."""
    return float(np.max(np.abs(x * GRID - np.round(x * GRID)))) / GRID


@dataclass(frozen=True)
class Inputs:
    """The worked example's inputs.

    x (5, 5) image; kernel (2, 2); fc_weights (2, 4); fc_bias (2,); upstream (2,) = dL/dz;
    lr: the SGD learning rate.
    """

    x: np.ndarray
    kernel: np.ndarray
    fc_weights: np.ndarray
    fc_bias: np.ndarray
    upstream: np.ndarray
    lr: float


def on_grid(x: np.ndarray | float) -> np.ndarray:
    """x rounded to two decimals: the recovered values are that grid plus print noise."""
    return np.round(np.asarray(x, dtype=float) * GRID) / GRID


@dataclass(frozen=True)
class Layers:
    """Notebook 06's layers, CS231n style (shapes in the notebook):

    conv_forward(x, w, b) -> out; conv_backward(dout, x, w) -> (dx, dw, db);
    maxpool_forward(x, pool, stride) -> (out, cache); maxpool_backward(dout, cache) -> dx;
    sigmoid_forward(x) -> (a, cache); sigmoid_backward(dout, cache) -> dx;
    linear_forward(x, w, b) -> (out, cache); linear_backward(dout, cache) -> (dx, dw, db).
    """

    conv_forward: Callable
    conv_backward: Callable
    maxpool_forward: Callable
    maxpool_backward: Callable
    sigmoid_forward: Callable
    sigmoid_backward: Callable
    linear_forward: Callable
    linear_backward: Callable


def forward_backward(inputs: Inputs, layers: Layers) -> dict[str, np.ndarray]:
    """One forward and backward pass and SGD step with ``layers`` (notebook 06's functions).

    conv (no bias) -> max-pool 2x2 -> sigmoid -> flatten -> fc; dL/dz = inputs.upstream.
    Returns every quantity the report prints, keyed as in ``course_utils.report`` (plus
    "maxpool_delta" (4, 4), "conv_delta_input" (5, 5), "conv_delta_kernel" (2, 2) and
    "winners", the flat index of each window's maximum).
    """
    x = inputs.x[None, None]  # (1, 1, 5, 5): one image, one channel
    kernel = inputs.kernel[None, None]  # (1, 1, 2, 2): one filter
    conv = layers.conv_forward(x, kernel, np.zeros(1))
    pooled, pool_cache = layers.maxpool_forward(conv, POOL, POOL)
    a, sigmoid_cache = layers.sigmoid_forward(pooled)
    z, fc_cache = layers.linear_forward(a.reshape(1, 4), inputs.fc_weights, inputs.fc_bias)

    da, dw, db = layers.linear_backward(inputs.upstream[None], fc_cache)
    dpooled = layers.sigmoid_backward(da.reshape(a.shape), sigmoid_cache)
    dconv = layers.maxpool_backward(dpooled, pool_cache)
    dx, dk, _ = layers.conv_backward(dconv, x, kernel)
    return {
        "conv_output": conv[0, 0], "sigmoid_output": a[0, 0], "fc_output": z[0],
        "fc_delta_input": da[0], "fc_delta_weights": dw, "fc_delta_biases": db,
        "sigmoid_delta": dpooled[0, 0], "maxpool_delta": dconv[0, 0],
        "conv_delta_input": dx[0, 0], "conv_delta_kernel": dk[0, 0],
        "updated_kernel": scratch.sgd_update(inputs.kernel, dk[0, 0], inputs.lr),
        "updated_fc_weights": scratch.sgd_update(inputs.fc_weights, dw, inputs.lr),
        "updated_fc_biases": scratch.sgd_update(inputs.fc_bias, db, inputs.lr),
        "winners": pool_cache[1][0, 0],
    }


def forward_backward_torch(inputs: Inputs) -> dict[str, np.ndarray]:
    """The same pass with torch.autograd in float64 (the independent check).

    The loss is L = dL/dz . z, so that dL/dz is exactly the report's upstream gradient.
    Returns the gradients under the keys of ``forward_backward``.
    """
    def leaf(array: np.ndarray) -> torch.Tensor:
        return torch.tensor(array, dtype=torch.float64, requires_grad=True)

    x, kernel = leaf(inputs.x[None, None]), leaf(inputs.kernel[None, None])
    weights, bias = leaf(inputs.fc_weights), leaf(inputs.fc_bias)
    conv = torch.nn.functional.conv2d(x, kernel)
    conv.retain_grad()
    pooled = torch.nn.functional.max_pool2d(conv, POOL)
    pooled.retain_grad()
    a = torch.sigmoid(pooled)
    a.retain_grad()
    z = torch.nn.functional.linear(a.reshape(1, 4), weights, bias)
    (z[0] * torch.tensor(inputs.upstream)).sum().backward()
    return {
        "conv_output": conv.detach()[0, 0].numpy(), "sigmoid_output": a.detach()[0, 0].numpy(),
        "fc_delta_input": a.grad[0, 0].numpy().ravel(), "fc_delta_weights": weights.grad.numpy(),
        "fc_delta_biases": bias.grad.numpy(), "sigmoid_delta": pooled.grad[0, 0].numpy(),
        "maxpool_delta": conv.grad[0, 0].numpy(), "conv_delta_input": x.grad[0, 0].numpy(),
        "conv_delta_kernel": kernel.grad[0, 0].numpy(),
    }
