"""05 · The chain rule: one hidden neuron, by hand, by autograd and by finite differences.

GENERATED from the cells marked ``#| export`` in notebooks/05_chain_rule.ipynb by
``python -m course_utils.instructor.grading export`` (``make export``): edit the notebook, not
this file.
``tests/test_grading_export.py`` fails when this file is stale.
"""

# Given code. Plain floats: the point is the chain rule, not shapes.
import math
from collections.abc import Callable


def sigmoid(z: float) -> float:
    """1 / (1 + exp(-z)), written so that exp never overflows for large |z|."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)  # z < 0: exp(z) is small, exp(-z) could overflow
    return e / (1.0 + e)


def sigmoid_derivative(z: float) -> float:
    """sigma'(z) = sigma(z) (1 - sigma(z))."""
    s = sigmoid(z)
    return s * (1.0 - s)


def tanh(z: float) -> float:
    """tanh(z)."""
    return math.tanh(z)


def tanh_derivative(z: float) -> float:
    """tanh'(z) = 1 - tanh(z)^2."""
    return 1.0 - math.tanh(z) ** 2


def relu(z: float) -> float:
    """max(0, z)."""
    return z if z > 0 else 0.0


def relu_derivative(z: float) -> float:
    """d max(0, z) / dz, as a float.

    ReLU has no derivative at z = 0 (the slope jumps there). Return the value PyTorch's
    autograd uses at the kink, so that autograd and this code agree even exactly at z = 0.
    """
    return 1.0 if z > 0 else 0.0


#: Every activation as (value, derivative), both functions of the pre-activation z. The
#: backward pass never differentiates anything itself: it looks the derivative up here.
ACTIVATION_FUNCTIONS: dict[str, tuple[Callable[[float], float], Callable[[float], float]]] = {
    "sigmoid": (sigmoid, sigmoid_derivative),
    "tanh": (tanh, tanh_derivative),
    "relu": (relu, relu_derivative),
}


def forward(x1: float, x2: float, t: float, w1: float, w2: float, w3: float,
            f: str = "sigmoid", g: str = "sigmoid") -> dict[str, float | str]:
    """The forward pass on one example (x1, x2) with target t.

    Inputs: floats x1, x2, t, w1, w2, w3; the activation names f (hidden) and g (output),
    keys of ACTIVATION_FUNCTIONS.
    Returns cache, a dict: the inputs as given and every intermediate, z1, h, z2, y, E
    (floats): what ``backward`` reads.
    """
    z1 = w1 * x1 + w2 * x2
    h = ACTIVATION_FUNCTIONS[f][0](z1)
    z2 = w3 * h
    y = ACTIVATION_FUNCTIONS[g][0](z2)
    E = 0.5 * (y - t) ** 2
    return {"x1": x1, "x2": x2, "t": t, "w1": w1, "w2": w2, "w3": w3, "f": f, "g": g,
            "z1": z1, "h": h, "z2": z2, "y": y, "E": E}


def backward(cache: dict[str, float | str]) -> dict[str, float]:
    """The report's chain rule, one line per equation, from the output back to w1 and w2.

    Inputs: cache, the dict ``forward`` returns (x1, x2, t, w1, w2, w3, z1, h, z2, y, E
    floats; f, g activation names).
    Returns a dict of floats: dE_dy, dE_dw3, dE_dh, dE_dw1, dE_dw2.
    """
    f_prime = ACTIVATION_FUNCTIONS[cache["f"]][1]
    g_prime = ACTIVATION_FUNCTIONS[cache["g"]][1]
    dE_dy = cache["y"] - cache["t"]  # the 1/2 in E cancels the 2 from the square
    delta2 = dE_dy * g_prime(cache["z2"])  # g' at the pre-activation z2 = w3 h, not at y
    dE_dw3 = delta2 * cache["h"]
    dE_dh = delta2 * cache["w3"]
    delta1 = dE_dh * f_prime(cache["z1"])  # the signal at the hidden neuron, reused twice
    dE_dw1 = delta1 * cache["x1"]
    dE_dw2 = delta1 * cache["x2"]
    return {"dE_dy": dE_dy, "dE_dw3": dE_dw3, "dE_dh": dE_dh, "dE_dw1": dE_dw1,
            "dE_dw2": dE_dw2}
