"""The report's CNN (Part One, Table 1).

The report gives layer names and feature-map counts but no kernel sizes; its parameter
counts pin most of them down (notebook 02 derives this):
- conv1 is 5x5: going from 1 to 3 input channels adds 36,498,950 - 36,492,550 = 6,400
  = 2 x 128 x 5 x 5 weights;
- conv2, conv3, conv4_1, conv5_1 and conv5_2 are 3x3 (question 4 lists their weights, e.g.
  conv2.weight = 128 x 128 x 3 x 3 = 147,456);
- conv4_2 is 3x3 by our assumption: question 4 gives no count for it;
- with a 3x3 conv4_2, the 1-channel total leaves fc1 279,936 = 96 x 2,916 inputs. We read
  2,916 as a square 54x54 map; 36x81 or 27x108 fit the total as well, and other conv4_2
  kernels give other (non-square) maps: see ``pool2_map_candidates``. An adaptive average
  pool to 54x54 gives that map for any input size, so the parameter count does not depend
  on the image size and CPU runs can use small images (64x64) with the very same model.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import pandas as pd
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

# ReportCNN and its two sizes are written in notebook 02 and exported from it into
# course_utils/part_one/report_cnn.py (one copy: edit the notebook, then `make export`);
# re-exported here.
from course_utils.part_one.data_spec import check_image_size
from course_utils.part_one.report_cnn import MIN_IMAGE_SIZE, POOL2_SIZE, ReportCNN  # noqa: F401  (re-exported)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Total number of parameters (all, or only those with requires_grad)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


# ---- Tables built from the model itself ---------------------------------------------------

#: How the report spells our layer-name prefixes in Table 1 (conv4_1 -> Conv4_1, bn1 -> BatchNorm1).
_REPORT_PREFIXES = (("conv", "Conv"), ("bn", "BatchNorm"), ("pool", "AvgPool"), ("fc", "FC"))


def report_layer_name(name: str) -> str:
    """The report's Table 1 spelling of one of our layer names.

    conv4_1 -> Conv4_1, bn1 -> BatchNorm1, pool2 -> AvgPool2, fc1 -> FC1, dropout -> Dropout,
    dropout_fc1 -> Dropout_FC1.
    """
    if name.startswith("dropout"):
        rest = name[len("dropout"):].lstrip("_")  # "" or "fc1"
        return "Dropout" + (f"_{report_layer_name(rest)}" if rest else "")
    for prefix, word in _REPORT_PREFIXES:
        if name.startswith(prefix):
            return word + name[len(prefix):].upper()
    raise ValueError(f"layer {name!r} has no Table 1 spelling; known prefixes: "
                     f"{[p for p, _ in _REPORT_PREFIXES]} and 'dropout'")


def _resolve_in_channels(model: nn.Module, in_channels: int | None) -> int:
    """The input channels to feed ``model``: its own, or ``in_channels`` if they agree."""
    own = getattr(model, "in_channels", None)
    if in_channels is None:
        if own is None:
            raise ValueError("pass in_channels: the model has no in_channels attribute")
        return own
    if own is not None and in_channels != own:
        raise ValueError(f"in_channels={in_channels} does not match the model's "
                         f"in_channels={own}; build ReportCNN(in_channels={in_channels}) "
                         "or leave in_channels=None")
    return in_channels


def _dummy_input(model: nn.Module, image_size: int, in_channels: int | None) -> torch.Tensor:
    """A zero batch of one image, x: (1, C, image_size, image_size), on the model's device."""
    check_image_size(image_size)  # a clear error instead of one from deep in torch
    channels = _resolve_in_channels(model, in_channels)
    device = next(model.parameters()).device
    return torch.zeros(1, channels, image_size, image_size, device=device)


def _eval_forward(model: nn.Module, x: torch.Tensor) -> None:
    """One forward pass in eval mode without gradients; the model's mode is restored after.

    Eval mode so dropout is the identity and batch norm leaves its running statistics alone.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    finally:
        model.train(was_training)


def layer_table(model: nn.Module, image_size: int = 256,
                in_channels: int | None = None) -> pd.DataFrame:
    """One row per top-level layer, in the order the forward pass calls them.

    Measured with forward hooks on a real forward pass of one (1, C, image_size, image_size)
    image. Columns: layer (our name), report_name (Table 1 spelling), type, output_shape
    (without the batch dimension), feature_maps (channels of a (N, C, H, W) output, units of
    an (N, F) one), unit ("feature maps" or "units"), activations (values per image),
    parameters (in that layer). Layers with no parameters (pooling, dropout) are included;
    ReLU is a function call in ``forward``, not a layer, so it has no row (as in Table 1).
    """
    x = _dummy_input(model, image_size, in_channels)
    rows: list[dict] = []

    def record(name: str, module: nn.Module):
        def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
            shape = tuple(output.shape[1:])  # drop the batch dimension
            rows.append({
                "layer": name,
                "report_name": report_layer_name(name),
                "type": type(module).__name__,
                "output_shape": " x ".join(str(s) for s in shape),
                "feature_maps": shape[0],
                "unit": "feature maps" if len(shape) == 3 else "units",
                "activations": math.prod(shape),
                "parameters": count_parameters(module),
            })
        return hook

    handles = [module.register_forward_hook(record(name, module))
               for name, module in model.named_children()]
    try:
        _eval_forward(model, x)
    finally:
        for handle in handles:  # hooks must not outlive the table
            handle.remove()
    return pd.DataFrame(rows)


def table1_rows(table: pd.DataFrame) -> tuple[tuple[str, str], ...]:
    """``layer_table`` rows in the report's Table 1 form: (("Conv1", "128 feature maps"), ...)."""
    return tuple((row.report_name, f"{row.feature_maps} {row.unit}")
                 for row in table.itertuples())


def total_conv_feature_maps(model: nn.Module) -> int:
    """Sum of the output channels of every Conv2d layer (the report's "total feature map")."""
    return sum(m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d))


def parameter_table(model: nn.Module) -> pd.DataFrame:
    """One row per parameter tensor, in definition order.

    Columns: tensor ("conv1.weight"), layer, shape ("128 x 1 x 5 x 5"), parameters, share
    (fraction of the model's total, 0..1).
    """
    total = count_parameters(model)
    rows = [{"tensor": name,
             "layer": name.rsplit(".", 1)[0],
             "shape": " x ".join(str(s) for s in p.shape),
             "parameters": p.numel(),
             "share": p.numel() / total}
            for name, p in model.named_parameters()]
    return pd.DataFrame(rows)


# ---- FLOPs ---------------------------------------------------------------------------------

def flops_per_layer(model: nn.Module, image_size: int = 256,
                    in_channels: int | None = None) -> pd.DataFrame:
    """Floating-point operations per image for each layer, counted by ``FlopCounterMode``.

    One forward pass of a (1, C, image_size, image_size) image. FlopCounterMode counts a
    multiply-add as 2 FLOPs and only counts matrix products and convolutions, so batch norm,
    ReLU, pooling and dropout (a few operations per activation) do not appear.
    Columns: layer, flops, share (of the total counted). Rows: layers with counted FLOPs,
    in forward order.
    """
    x = _dummy_input(model, image_size, in_channels)
    with FlopCounterMode(display=False) as counter:
        _eval_forward(model, x)
    root = type(model).__name__
    rows = []
    for name, ops in counter.get_flop_counts().items():
        # keys are "Global", "<Class>" and "<Class>.<child>": keep the direct children only
        if not name.startswith(root + ".") or name.count(".") != 1:
            continue
        rows.append({"layer": name.split(".", 1)[1], "flops": int(sum(ops.values()))})
    table = pd.DataFrame(rows, columns=["layer", "flops"])
    table["share"] = table["flops"] / table["flops"].sum()
    return table


def total_flops(model: nn.Module, image_size: int = 256, in_channels: int | None = None) -> int:
    """Total FLOPs per image (see ``flops_per_layer`` for what is counted)."""
    return int(flops_per_layer(model, image_size, in_channels)["flops"].sum())


def with_conv_padding(model: nn.Module, padding: int) -> nn.Module:
    """A copy of ``model`` whose every Conv2d uses ``padding`` (0 = "valid": no padding).

    The report does not state its padding; the FLOP count depends on it (padding changes
    the map sizes, not the parameters). The original model is left untouched.
    """
    if not isinstance(padding, int) or padding < 0:
        raise ValueError(f"padding must be an integer >= 0, got {padding!r}")
    other = copy.deepcopy(model)
    for module in other.modules():
        if isinstance(module, nn.Conv2d):
            module.padding = (padding, padding)
    return other


# ---- What the report's total says about fc1's input ------------------------------------------

def factor_pairs(n: int) -> list[tuple[int, int]]:
    """Every (h, w) with h * w == n and h <= w, by increasing h (the last is the most square)."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    return [(h, n // h) for h in range(1, math.isqrt(n) + 1) if n % h == 0]


def pool2_map_candidates(model: ReportCNN, total: int,
                         kernels: Sequence[int] = (1, 2, 3, 4, 5, 6, 7)) -> pd.DataFrame:
    """fc1 inputs and pool2 map shapes that a parameter ``total`` allows, per conv4_2 kernel.

    The report pins every kernel except conv4_2's (question 4 gives no count for it), so the
    total fixes fc1's inputs only once a conv4_2 kernel k x k is chosen:
    fc1 inputs = (total - every other parameter - conv4_2.weight(k)) / fc1 units.
    One row per k. Columns: conv4_2 kernel ("3x3"), conv4_2.weight, fc1.weight, fc1 inputs
    (None when not a whole number), map h*w (fc1 inputs / pool2 channels; None when not a
    whole number, i.e. no map of the conv5_2 channels fits), shapes (how many h x w with
    h <= w fit), square (the side if h*w is a perfect square, else None), most square (h x w,
    "-" when none fits).
    """
    conv = model.conv4_2
    channels = model.conv5_2.out_channels  # the maps pool2 averages, flattened into fc1
    units = model.fc1.out_features
    rest = count_parameters(model) - model.fc1.weight.numel() - conv.weight.numel()
    rows = []
    for k in kernels:
        conv_weights = conv.in_channels * conv.out_channels * k * k
        fc1_weights = total - rest - conv_weights
        inputs = fc1_weights // units if fc1_weights > 0 and fc1_weights % units == 0 else None
        area = inputs // channels if inputs is not None and inputs % channels == 0 else None
        pairs = factor_pairs(area) if area else []
        side = math.isqrt(area) if area else 0
        rows.append({"conv4_2 kernel": f"{k}x{k}", "conv4_2.weight": conv_weights,
                     "fc1.weight": fc1_weights, "fc1 inputs": inputs, "map h*w": area,
                     "shapes": len(pairs), "square": side if area and side * side == area
                     else None,
                     "most square": f"{pairs[-1][0]} x {pairs[-1][1]}" if pairs else "-"})
    table = pd.DataFrame(rows)
    # whole numbers with gaps: nullable integers, shown as <NA>, never as floats
    return table.astype({"fc1 inputs": "Int64", "map h*w": "Int64", "square": "Int64"})


# ---- Initialisation ------------------------------------------------------------------------

#: The three initialisations question 3 is about, by the standard deviation each gives a
#: weight with fan_in inputs and fan_out outputs (uniform or normal variants share the std).
INIT_STD = {
    # PyTorch's Conv2d/Linear default: kaiming_uniform_(a=sqrt(5)) = U(-1/sqrt(fan_in), ...)
    "pytorch_default": lambda fan_in, fan_out: 1.0 / math.sqrt(3.0 * fan_in),
    "xavier": lambda fan_in, fan_out: math.sqrt(2.0 / (fan_in + fan_out)),
    "he": lambda fan_in, fan_out: math.sqrt(2.0 / fan_in),
}


def fans(weight: torch.Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a Linear (out, in) or Conv2d (out, in, kh, kw) weight."""
    if weight.ndim < 2:
        raise ValueError("fans need a weight with >= 2 dimensions, "
                         f"got shape {tuple(weight.shape)}")
    receptive_field = math.prod(weight.shape[2:])  # 1 for a Linear weight
    return weight.shape[1] * receptive_field, weight.shape[0] * receptive_field


def init_table(model: nn.Module) -> pd.DataFrame:
    """Measured spread of every Conv2d/Linear weight beside what each initialisation predicts.

    Columns: tensor, fan_in, fan_out, max_abs (measured), default_bound (1/sqrt(fan_in), the
    edge of PyTorch's default uniform), std (measured), one ``<name>_std`` column per entry of
    INIT_STD, and closest (the INIT_STD entry whose std is nearest the measured one, by ratio).
    """
    rows = []
    for name, module in model.named_modules():
        if not isinstance(module, nn.Conv2d | nn.Linear):
            continue
        weight = module.weight.detach()
        fan_in, fan_out = fans(weight)
        std = weight.std().item()
        row = {"tensor": f"{name}.weight", "fan_in": fan_in, "fan_out": fan_out,
               "max_abs": weight.abs().max().item(), "default_bound": 1.0 / math.sqrt(fan_in),
               "std": std}
        predicted = {key: rule(fan_in, fan_out) for key, rule in INIT_STD.items()}
        row.update({f"{key}_std": value for key, value in predicted.items()})
        # ratio distance: a std twice too big is as wrong as one half too small
        row["closest"] = min(predicted, key=lambda key: abs(math.log(std / predicted[key])))
        rows.append(row)
    return pd.DataFrame(rows)


def batchnorm_table(model: nn.Module) -> pd.DataFrame:
    """Range of every batch-norm weight (gamma) and bias (beta): they start at 1 and 0.

    Columns: layer, weight_min, weight_max, bias_min, bias_max.
    """
    rows = [{"layer": name,
             "weight_min": m.weight.min().item(), "weight_max": m.weight.max().item(),
             "bias_min": m.bias.min().item(), "bias_max": m.bias.max().item()}
            for name, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]
    return pd.DataFrame(rows)


def replication_equivalence_error(conv: nn.Conv2d, gray: torch.Tensor) -> float:
    """Max |difference| between a 3-channel conv on replicated input and a 1-channel conv.

    gray: (N, 1, H, W). On a replicated image the three input channels are equal, so
    sum_c W[:, c] * x = (sum_c W[:, c]) * x: the 3-channel layer computes exactly what a
    1-channel layer with the summed weights computes. A result near float precision (~1e-6)
    shows the extra weights add no expressive power on grayscale data.
    """
    if conv.in_channels != 3:
        raise ValueError(f"conv must take 3 input channels, got {conv.in_channels}")
    with torch.no_grad():
        three = conv(gray.expand(-1, 3, -1, -1))
        summed = conv.weight.sum(dim=1, keepdim=True)
        one = torch.nn.functional.conv2d(gray, summed, conv.bias, conv.stride, conv.padding)
    return float((three - one).abs().max())
