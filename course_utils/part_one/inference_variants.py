"""Inference variants of a model measured by benchmarks/gpu_check.py: plain, batch norm folded
into the convolutions, and that through torch.compile."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from course_utils.part_one.devices import prepare_model


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """An inference copy of ``model`` with each ``bnX`` folded into its ``convX``.

    In eval mode batch norm is a fixed per-channel scale and shift, so it can be merged into
    the convolution's weights and bias: one pass over the feature maps instead of two.
    Pairs are found by name (conv1/bn1, conv4_1/bn4_1, ...), as in ReportCNN.
    """
    folded = copy.deepcopy(model).eval()
    for name, module in list(folded.named_children()):
        bn_name = "bn" + name[len("conv"):]
        if name.startswith("conv") and isinstance(getattr(folded, bn_name, None),
                                                  nn.BatchNorm2d):
            setattr(folded, name, fuse_conv_bn_eval(module, getattr(folded, bn_name)))
            setattr(folded, bn_name, nn.Identity())
    return folded


#: Inference variants measured by benchmarks/gpu_check.py (see ``inference_variant``).
VARIANTS = ("plain", "folded", "folded+compile")


def inference_variant(model: nn.Module, variant: str, device: torch.device | str,
                      channels_last: bool = False) -> nn.Module:
    """``model`` prepared for inference on ``device`` as ``variant`` (one of VARIANTS).

    "folded": batch norm folded into the convolutions (``fold_batchnorm``);
    "folded+compile": that, through ``torch.compile(dynamic=False)``: one static graph per
    batch shape (a split's last, smaller batch gets its own), fused kernels. Compiling takes
    minutes on a small CPU, so use it on a GPU; the first calls of each shape are slow.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if variant != "plain":
        model = fold_batchnorm(model)
    model = prepare_model(model, device, channels_last).eval()
    if variant == "folded+compile":
        model = torch.compile(model, dynamic=False)
    return model
