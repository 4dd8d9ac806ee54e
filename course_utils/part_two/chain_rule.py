"""The report's chain-rule network (Part Two, "Chain Rule"), by hand, in plain Python.

The network has two inputs, one hidden neuron and one output neuron, no biases:

    z1 = w1 x1 + w2 x2      h = f(z1)          (hidden pre-activation and output)
    z2 = w3 h               y = g(z2)          (output pre-activation and output)
    E  = 1/2 (y - t)^2                         (squared error against the target t)

``forward`` returns every intermediate and ``backward`` applies the chain rule exactly as the
report writes it. The activations and the forward and backward passes themselves are written
in notebook 05 and passed in as a ``Network`` (CS231n style: this package never holds them);
here ``forward`` checks its arguments and both return dataclasses. Every quantity is a Python
float (a scalar): the point is the chain rule, not array shapes.

The rest of notebook 05 builds on this module: ``chain_rule_gradient_checks`` (the gradients
against autograd and finite differences), ``chain_rule_descent`` (the report's update rule
repeated; dead ReLU units) and ``chain_rule_checks`` (the rows of "Checks against the report").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

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


#: The activations notebook 05 defines (its ``ACTIVATION_FUNCTIONS`` keys), in display order.
ACTIVATION_NAMES: tuple[str, ...] = ("sigmoid", "tanh", "relu")


@dataclass(frozen=True)
class Network:
    """The functions notebook 05 writes, passed in to everything here that runs the network.

    activation_functions: {name: (value, derivative)}, names from ``ACTIVATION_NAMES``;
    forward(x1, x2, t, w1, w2, w3, f, g) -> cache dict (the inputs, z1, h, z2, y, E);
    backward(cache dict) -> {"dE_dy", "dE_dw3", "dE_dh", "dE_dw1", "dE_dw2"} (floats).
    """

    activation_functions: dict[str, tuple[Callable[[float], float], Callable[[float], float]]]
    forward: Callable[..., dict]
    backward: Callable[[dict], dict] | None = None  # None until the notebook has written it

    def activation(self, name: str) -> Activation:
        """The activation ``name`` (checked with ``activation_name``) as an ``Activation``."""
        key = activation_name(name, known=self.activation_functions)
        value, derivative = self.activation_functions[key]
        return Activation(key, value, derivative)


def activation_name(name: str, parameter: str = "activation",
                    known: Collection[str] = ACTIVATION_NAMES) -> str:
    """``name`` lower-cased if it is one of ``known``; ``parameter`` names the knob in the error."""
    if not isinstance(name, str) or name.lower() not in known:
        valid = ", ".join(repr(n) for n in known)
        raise ValueError(f"unknown activation {name!r} for parameter {parameter!r}; "
                         f"valid names are {valid}")
    return name.lower()


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


def forward(net: Network, x1: float, x2: float, t: float, w1: float, w2: float, w3: float,
            f: str = "sigmoid", g: str = "sigmoid") -> Forward:
    """Run ``net.forward`` on one example (x1, x2) with target t; return every intermediate."""
    x1, x2, t = require_finite(x1, "x1"), require_finite(x2, "x2"), require_finite(t, "t")
    w1, w2, w3 = require_finite(w1, "w1"), require_finite(w2, "w2"), require_finite(w3, "w3")
    known = net.activation_functions
    f_name, g_name = activation_name(f, "f", known), activation_name(g, "g", known)
    return Forward(**net.forward(x1, x2, t, w1, w2, w3, f_name, g_name))


def backward(net: Network, cache: Forward) -> Gradients:
    """The report's chain rule, one line per equation, from the output back to w1 and w2.

    A thin wrapper: the backward pass is notebook 05's ``backward`` (``net.backward``), which
    reads the cache as a dict and returns the gradients as a dict.
    """
    if net.backward is None:
        raise ValueError("this Network has no backward yet: build it as Network("
                         "ACTIVATION_FUNCTIONS, forward, backward) once backward is written")
    return Gradients(**net.backward(asdict(cache)))


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
