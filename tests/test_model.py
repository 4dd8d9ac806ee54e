"""The report's CNN: parameter counts, shapes, the tables built from it, FLOPs, bad inputs."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from course_utils.part_one.model import (
    MIN_IMAGE_SIZE,
    POOL2_SIZE,
    ReportCNN,
    batchnorm_table,
    count_parameters,
    factor_pairs,
    flops_per_layer,
    init_table,
    layer_table,
    parameter_table,
    pool2_map_candidates,
    report_layer_name,
    table1_rows,
    total_conv_feature_maps,
    total_flops,
    with_conv_padding,
)
from course_utils.report import value


@pytest.fixture(scope="module")
def model_1() -> ReportCNN:
    torch.manual_seed(0)
    return ReportCNN(in_channels=1)


@pytest.fixture(scope="module")
def model_3() -> ReportCNN:
    torch.manual_seed(0)
    return ReportCNN(in_channels=3)


def _model(request: pytest.FixtureRequest, channels: int) -> ReportCNN:
    return request.getfixturevalue(f"model_{channels}")


# ---- parameter counts ----------------------------------------------------------------------

def test_totals_match_report(model_1: ReportCNN, model_3: ReportCNN) -> None:
    assert count_parameters(model_1) == value("params_1_channel") == 36_492_550
    assert count_parameters(model_3) == value("params_3_channel") == 36_498_950


def test_three_channels_add_only_conv1_weights(model_1: ReportCNN, model_3: ReportCNN) -> None:
    # 2 extra input channels x 128 filters x 5 x 5 kernel
    assert count_parameters(model_3) - count_parameters(model_1) == 2 * 128 * 5 * 5
    assert model_3.conv1.weight.numel() == 3 * model_1.conv1.weight.numel()


def test_report_per_tensor_counts(model_1: ReportCNN) -> None:
    tensors = dict(model_1.named_parameters())
    for name, count in value("largest_tensors_q4"):
        assert tensors[name].numel() == count, name


def test_fc1_input_is_pinned_by_the_total_given_a_3x3_conv4_2(model_1: ReportCNN) -> None:
    assert model_1.fc1.in_features == 96 * POOL2_SIZE * POOL2_SIZE == 279_936
    others = count_parameters(model_1) - model_1.fc1.weight.numel()
    assert (value("params_1_channel") - others) / model_1.fc1.out_features == 279_936


def test_factor_pairs() -> None:
    assert factor_pairs(12) == [(1, 12), (2, 6), (3, 4)]
    assert factor_pairs(2_916)[-1] == (54, 54) and (36, 81) in factor_pairs(2_916)
    with pytest.raises(ValueError, match="positive integer"):
        factor_pairs(0)


def test_the_total_fits_other_pool2_maps_and_conv4_2_kernels(model_1: ReportCNN) -> None:
    table = pool2_map_candidates(model_1, value("params_1_channel")).set_index("conv4_2 kernel")
    # 3x3: 279,936 = 96 x 2,916 inputs, square 54 x 54, but 27 x 108 and 36 x 81 fit too
    assert table.loc["3x3", "fc1 inputs"] == 279_936 == 96 * 36 * 81 == 96 * 27 * 108
    assert table.loc["3x3", "square"] == 54 and table.loc["3x3", "shapes"] == 11
    # other odd kernels: only non-square maps fit; even kernels leave no 96-channel map
    assert table.loc["5x5", "most square"] == "44 x 66" and 96 * 44 * 66 * 128 == (
        table.loc["5x5", "fc1.weight"])
    assert table.loc["7x7", "most square"] == "39 x 74"
    assert table.loc["1x1", "map h*w"] == 2_922 and pd.isna(table.loc["1x1", "square"])
    assert all(pd.isna(table.loc[k, "map h*w"]) for k in ("2x2", "4x4", "6x6"))
    # every row spends the same total
    rest = count_parameters(model_1) - table.loc["3x3", "fc1.weight"] - 82_944
    assert (table["fc1.weight"] + table["conv4_2.weight"] + rest
            == value("params_1_channel")).all()


def test_biases_and_batchnorm_affine_are_needed_for_whole_fc1_inputs(model_1: ReportCNN) -> None:
    # With a 3x3 conv4_2, dropping the conv/FC biases or batch norm's weight and bias leaves
    # the total no whole number of 96-channel fc1 inputs (notebook 02, "pinned" table).
    params = dict(model_1.named_parameters())
    rest = count_parameters(model_1) - model_1.fc1.weight.numel()
    conv_fc_biases = sum(p.numel() for n, p in params.items()
                         if n.endswith(".bias") and not n.startswith("bn"))
    batchnorm = sum(p.numel() for n, p in params.items() if n.startswith("bn"))
    for dropped in (conv_fc_biases, batchnorm, conv_fc_biases + batchnorm):
        fc1_weights = value("params_1_channel") - (rest - dropped)
        assert fc1_weights % (128 * 96) != 0


def test_with_conv_padding_copies_and_changes_only_the_maps(model_1: ReportCNN) -> None:
    valid = with_conv_padding(model_1, 0)
    assert model_1.conv1.padding == (2, 2) and valid.conv1.padding == (0, 0)
    assert count_parameters(valid) == count_parameters(model_1)
    flops = flops_per_layer(valid, image_size=64).set_index("layer")["flops"]
    assert flops["conv1"] == 2 * 128 * 5 * 5 * 60 * 60  # 64 - 5 + 1 = 60
    assert flops["conv2"] == 2 * 128 * 128 * 9 * 28 * 28  # pool1: 30, then 30 - 3 + 1 = 28
    with pytest.raises(ValueError, match="padding"):
        with_conv_padding(model_1, -1)


def test_trainable_only_counts_frozen_parameters_out() -> None:
    model = ReportCNN()
    model.fc1.weight.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == 36_492_550 - 35_831_808


# ---- shapes --------------------------------------------------------------------------------

@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [64, 128, 256])
def test_output_shape_and_count_at_any_size(request: pytest.FixtureRequest, channels: int,
                                            size: int) -> None:
    model = _model(request, channels).eval()
    with torch.no_grad():
        out = model(torch.randn(2, channels, size, size))
    assert out.shape == (2, 6)
    assert torch.isfinite(out).all()
    assert count_parameters(model) == value(f"params_{channels}_channel")


_SMALL_MODEL = ReportCNN()  # built once: hypothesis calls the test many times


@settings(max_examples=6, deadline=None)
@given(height=st.integers(MIN_IMAGE_SIZE, 160), width=st.integers(MIN_IMAGE_SIZE, 160))
def test_any_rectangular_size_gives_logits(height: int, width: int) -> None:
    model = _SMALL_MODEL.eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 1, height, width)).shape == (1, 6)


def test_num_classes_sets_fc2() -> None:
    model = ReportCNN(num_classes=10).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 1, 64, 64)).shape == (1, 10)


# ---- tables --------------------------------------------------------------------------------

def test_layer_table_reproduces_table1(model_1: ReportCNN) -> None:
    table = layer_table(model_1, image_size=64)
    assert table1_rows(table) == value("table1")


def test_layer_table_shapes_and_parameters(model_3: ReportCNN) -> None:
    table = layer_table(model_3, image_size=256).set_index("layer")
    assert table.loc["conv1", "output_shape"] == "128 x 256 x 256"
    assert table.loc["pool1", "output_shape"] == "128 x 128 x 128"
    assert table.loc["conv5_2", "output_shape"] == "96 x 128 x 128"
    assert table.loc["pool2", "output_shape"] == "96 x 54 x 54"
    assert table.loc["fc1", "output_shape"] == "128"
    assert table.loc["conv1", "activations"] == 128 * 256 * 256
    assert table.loc["conv1", "parameters"] == 3 * 128 * 25 + 128
    assert table["parameters"].sum() == count_parameters(model_3)


def test_layer_table_leaves_model_as_it_was(model_1: ReportCNN) -> None:
    model_1.train()
    before = model_1.bn1.running_mean.clone()
    layer_table(model_1, image_size=64)
    assert model_1.training
    assert all(not m._forward_hooks for m in model_1.modules())
    assert torch.equal(model_1.bn1.running_mean, before)


def test_total_feature_maps_is_768_for_both(model_1: ReportCNN, model_3: ReportCNN) -> None:
    assert total_conv_feature_maps(model_1) == total_conv_feature_maps(model_3)
    assert total_conv_feature_maps(model_1) == value("total_feature_maps") == 128 * 3 + 96 * 4


def test_parameter_table(model_1: ReportCNN) -> None:
    table = parameter_table(model_1)
    assert len(table) == len(list(model_1.parameters()))
    assert table["parameters"].sum() == count_parameters(model_1)
    assert table["share"].sum() == pytest.approx(1.0)
    top = table.sort_values("parameters", ascending=False).iloc[0]
    assert (top["tensor"], top["parameters"], top["shape"]) == (
        "fc1.weight", 35_831_808, "128 x 279936")
    assert top["share"] == pytest.approx(35_831_808 / 36_492_550)
    assert top["share"] > 0.98


def test_report_layer_names() -> None:
    assert [report_layer_name(n) for n in ("conv4_1", "bn5_2", "pool1", "fc2", "dropout",
                                           "dropout_fc1")] == [
        "Conv4_1", "BatchNorm5_2", "AvgPool1", "FC2", "Dropout", "Dropout_FC1"]
    with pytest.raises(ValueError, match="relu"):
        report_layer_name("relu")


# ---- FLOPs ---------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [64, 96])
def test_flops_by_hand(model_1: ReportCNN, size: int) -> None:
    flops = flops_per_layer(model_1, image_size=size).set_index("layer")["flops"]
    half = size // 2  # pool1 halves the maps before conv2
    assert flops["conv1"] == 2 * 1 * 128 * 5 * 5 * size * size
    assert flops["conv2"] == 2 * 128 * 128 * 9 * half * half
    assert flops["conv4_1"] == 2 * 128 * 96 * 9 * half * half
    assert flops["fc1"] == 2 * 279_936 * 128  # does not depend on the image size
    assert flops["fc2"] == 2 * 128 * 6
    assert total_flops(model_1, image_size=size) == flops.sum()


def test_flops_three_channels_triple_conv1_only(model_1: ReportCNN, model_3: ReportCNN) -> None:
    one = flops_per_layer(model_1, 64).set_index("layer")["flops"]
    three = flops_per_layer(model_3, 64, in_channels=3).set_index("layer")["flops"]
    assert three["conv1"] == 3 * one["conv1"]
    assert (three.drop("conv1") == one.drop("conv1")).all()


# ---- initialisation ------------------------------------------------------------------------

def test_default_init_is_pytorch_default_not_xavier_or_he(model_1: ReportCNN) -> None:
    table = init_table(model_1)
    assert len(table) == 9  # 7 conv + 2 linear weights
    assert (table["closest"] == "pytorch_default").all()
    assert (table["max_abs"] <= table["default_bound"]).all()
    # a uniform U(-b, b) has std b / sqrt(3)
    assert table["std"].to_numpy() == pytest.approx(
        (table["default_bound"] / math.sqrt(3)).to_numpy(), rel=0.05)


@pytest.mark.parametrize(("init", "expected"), [
    (nn.init.xavier_uniform_, "xavier"),
    (lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu"), "he"),
])
def test_init_table_recognises_other_inits(init, expected: str) -> None:
    model = ReportCNN()
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            init(module.weight.data)
    convs = init_table(model).query("tensor.str.startswith('conv')")
    assert (convs["closest"] == expected).all()


def test_batchnorm_starts_at_identity(model_1: ReportCNN) -> None:
    table = batchnorm_table(model_1)
    assert len(table) == 7
    assert (table[["weight_min", "weight_max"]] == 1.0).all().all()
    assert (table[["bias_min", "bias_max"]] == 0.0).all().all()


# ---- bad input -----------------------------------------------------------------------------

def test_wrong_channel_count_is_a_clear_error(model_1: ReportCNN) -> None:
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 1, H, W\).*in_channels"):
        model_1(torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match="expected input of shape"):
        model_1(torch.zeros(1, 64, 64))  # a missing batch dimension


def test_too_small_image_is_a_clear_error(model_1: ReportCNN) -> None:
    with pytest.raises(ValueError, match="smaller than the model accepts.*image_size"):
        model_1(torch.zeros(1, 1, 16, 16))
    with pytest.raises(ValueError, match="image_size must be an integer >= 32"):
        layer_table(model_1, image_size=16)
    with pytest.raises(ValueError, match="image_size"):
        flops_per_layer(model_1, image_size=64.0)


def test_mismatched_in_channels_is_a_clear_error(model_1: ReportCNN) -> None:
    expected = r"in_channels=3 does not match.*ReportCNN\(in_channels=3\)"
    with pytest.raises(ValueError, match=expected):
        flops_per_layer(model_1, image_size=64, in_channels=3)


@pytest.mark.parametrize("kwargs", [{"in_channels": 0}, {"num_classes": 1}])
def test_bad_constructor_arguments(kwargs: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        ReportCNN(**kwargs)
