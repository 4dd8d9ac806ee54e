"""The report's chain-rule network (Part Two, "Chain Rule"), by hand, in plain Python.

The network has two inputs, one hidden neuron and one output neuron, no biases:

    z1 = w1 x1 + w2 x2      h = f(z1)          (hidden pre-activation and output)
    z2 = w3 h               y = g(z2)          (output pre-activation and output)
    E  = 1/2 (y - t)^2                         (squared error against the target t)

``forward`` returns every intermediate and ``backward`` applies the chain rule exactly as the
report writes it. The forward and backward passes themselves are written in notebook 05 and
exported to ``course_utils.part_two.neuron``; here ``forward`` checks its arguments and both
return dataclasses. Every quantity is a Python float (a scalar): the point is the chain rule,
not array shapes.

The rest of notebook 05 builds on this module: ``chain_rule_gradient_checks`` (the gradients
against autograd and finite differences), ``chain_rule_descent`` (the report's update rule
repeated; dead ReLU units) and ``chain_rule_checks`` (the rows of "Checks against the report").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from course_utils.part_two import neuron
from course_utils.part_two.neuron import (  # noqa: F401  (re-exported: chain_rule's API since before neuron.py)
    ACTIVATION_FUNCTIONS,
    relu,
    relu_derivative,
    sigmoid,
    sigmoid_derivative,
    tanh,
    tanh_derivative,
)
from course_utils.validation import require_int

# ---- Activations: a named pair (value, derivative) -------------------------------------


@dataclass(frozen=True)
class Activation:
    """An activation function and its derivative, both evaluated at the pre-activation z.

    value(z) -> a; derivative(z) -> da/dz. Both take and return a float.
    """

    name: str
    value: Callable[[float], float]
    derivative: Callable[[float], float]


# The functions themselves (sigmoid, tanh, relu and their derivatives) are written in notebook
# 05 and exported from it into course_utils/part_two/neuron.py (one copy: edit the notebook, then
# `make export`); re-exported here.
ACTIVATIONS: dict[str, Activation] = {
    name: Activation(name, value, derivative)
    for name, (value, derivative) in ACTIVATION_FUNCTIONS.items()
}


def get_activation(name: str, parameter: str = "activation") -> Activation:
    """The activation called ``name``; ``parameter`` names the knob in the error message."""
    if not isinstance(name, str) or name.lower() not in ACTIVATIONS:
        valid = ", ".join(repr(n) for n in ACTIVATIONS)
        raise ValueError(f"unknown activation {name!r} for parameter {parameter!r}; "
                         f"valid names are {valid}")
    return ACTIVATIONS[name.lower()]


# ---- Forward and backward ----------------------------------------------------------------


@dataclass(frozen=True)
class Forward:
    """Everything the forward pass computed: the inputs, the weights and every intermediate.

    It is also the cache that ``backward`` reads (CS231n style). All fields are floats except
    the activation names f and g.
    """

    x1: float
    x2: float
    t: float
    w1: float
    w2: float
    w3: float
    f: str
    g: str
    z1: float  # w1 x1 + w2 x2, the hidden neuron's pre-activation
    h: float  # f(z1)
    z2: float  # w3 h, the output neuron's pre-activation
    y: float  # g(z2)
    E: float  # 1/2 (y - t)^2


@dataclass(frozen=True)
class Gradients:
    """The partial derivatives of E the report derives (all floats)."""

    dE_dy: float
    dE_dw3: float
    dE_dh: float
    dE_dw1: float
    dE_dw2: float


def require_finite(value: float, parameter: str) -> float:
    """``value`` as a float, or a ValueError naming the parameter."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"parameter {parameter!r} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"parameter {parameter!r} must be finite, got {value!r}")
    return number


def forward(x1: float, x2: float, t: float, w1: float, w2: float, w3: float,
            f: str = "sigmoid", g: str = "sigmoid") -> Forward:
    """Run the network on one example (x1, x2) with target t; return every intermediate."""
    x1, x2, t = require_finite(x1, "x1"), require_finite(x2, "x2"), require_finite(t, "t")
    w1, w2, w3 = require_finite(w1, "w1"), require_finite(w2, "w2"), require_finite(w3, "w3")
    f_name, g_name = get_activation(f, "f").name, get_activation(g, "g").name
    # the forward pass itself is notebook 05's, exported to course_utils/part_two/neuron.py
    return Forward(**neuron.forward(x1, x2, t, w1, w2, w3, f_name, g_name))


def backward(cache: Forward) -> Gradients:
    """The report's chain rule, one line per equation, from the output back to w1 and w2.

    A thin wrapper: the backward pass is notebook 05's ``backward``
    (course_utils/part_two/neuron.py), which reads the cache as a dict and returns the
    gradients as a dict.
    """
    return Gradients(**neuron.backward(asdict(cache)))


def initial_weights(w1: float | None, w2: float | None, w3: float | None,
                    seed: int) -> tuple[float, float, float]:
    """The three weights, with any None drawn from N(0, 1) using numpy's generator ``seed``."""
    seed = require_int("parameter 'seed'", seed, minimum=0)
    draws = np.random.default_rng(seed).standard_normal(3)  # always 3 draws: stable per seed
    chosen = [draws[i] if w is None else w for i, w in enumerate((w1, w2, w3))]
    return (require_finite(chosen[0], "w1"), require_finite(chosen[1], "w2"),
            require_finite(chosen[2], "w3"))


def intermediates_table(cache: Forward, decimals: int = 6) -> pd.DataFrame:
    """Every quantity of the forward pass with the formula that produced it."""
    rows = [("z1", "w1 x1 + w2 x2", cache.z1), ("h", f"f(z1) = {cache.f}(z1)", cache.h),
            ("z2", "w3 h", cache.z2), ("y", f"g(z2) = {cache.g}(z2)", cache.y),
            ("E", "1/2 (y - t)^2", cache.E)]
    return pd.DataFrame([{"quantity": q, "formula": formula, "value": round(v, decimals)}
                         for q, formula, v in rows]).set_index("quantity")
