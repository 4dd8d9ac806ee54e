"""The from-scratch layers (notebooks 06 and 07) against torch.autograd (float64) and against
numerical gradients.

Shapes, strides and paddings are drawn by hypothesis; the values are drawn from a seeded
numpy generator so each example is cheap. Example counts stay small (the file runs in seconds).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from course_utils.instructor.solutions import im2col, layers
from course_utils.part_two import scratch as helpers

# The layers are the notebooks' solutions (06: layers, 07: im2col); SGD and the gradient check
# are the package's own helpers. One namespace, as the tests read them.
scratch = SimpleNamespace(**{name: getattr(module, name) for module in (layers, im2col, helpers)
                             for name in dir(module) if not name.startswith("_")})

FEW = settings(max_examples=25, deadline=None)
TOL = 1e-10  # float64 against float64: only summation order differs


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.tensor(array, dtype=torch.float64, requires_grad=True)


@st.composite
def conv_case(draw: st.DrawFn) -> dict:
    """A random convolution problem whose kernel fits the padded input."""
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    pad = draw(st.integers(0, 2))
    stride = draw(st.integers(1, 3))
    h = draw(st.integers(max(1, kh - 2 * pad), 8))
    w = draw(st.integers(max(1, kw - 2 * pad), 8))
    return {"n": draw(st.integers(1, 3)), "c": draw(st.integers(1, 3)),
            "f": draw(st.integers(1, 4)), "h": h, "w": w, "kh": kh, "kw": kw,
            "stride": stride, "pad": pad, "seed": draw(st.integers(0, 2**31))}


def conv_arrays(case: dict) -> tuple[np.random.Generator, np.ndarray, np.ndarray, np.ndarray]:
    """The case's generator and its random x (N, C, H, W), w (F, C, KH, KW), b (F,)."""
    rng = np.random.default_rng(case["seed"])
    x = rng.normal(size=(case["n"], case["c"], case["h"], case["w"]))
    w = rng.normal(size=(case["f"], case["c"], case["kh"], case["kw"]))
    return rng, x, w, rng.normal(size=case["f"])


@FEW
@given(conv_case())
def test_conv_forward_and_backward_match_torch(case: dict) -> None:
    rng, x, w, b = conv_arrays(case)
    out, cache = scratch.conv_forward(x, w, b, case["stride"], case["pad"])
    xt, wt, bt = _tensor(x), _tensor(w), _tensor(b)
    expected = F.conv2d(xt, wt, bt, stride=case["stride"], padding=case["pad"])
    assert out.shape == tuple(expected.shape)
    np.testing.assert_allclose(out, expected.detach().numpy(), atol=TOL)

    dout = rng.normal(size=out.shape)
    expected.backward(torch.tensor(dout))
    dx, dw, db = scratch.conv_backward(dout, cache)
    np.testing.assert_allclose(dx, xt.grad.numpy(), atol=TOL)
    np.testing.assert_allclose(dw, wt.grad.numpy(), atol=TOL)
    np.testing.assert_allclose(db, bt.grad.numpy(), atol=TOL)


@settings(max_examples=10, deadline=None)
@given(conv_case())
def test_conv_loops_equal_im2col_version(case: dict) -> None:
    rng, x, w, b = conv_arrays(case)
    fast, _ = scratch.conv_forward(x, w, b, case["stride"], case["pad"])
    np.testing.assert_allclose(scratch.conv_forward_loops(x, w, b, case["stride"], case["pad"]),
                               fast, atol=TOL)


@FEW
@given(conv_case())
def test_im2col_and_col2im_equal_unfold_and_fold(case: dict) -> None:
    rng = np.random.default_rng(case["seed"])
    shape = (case["n"], case["c"], case["h"], case["w"])
    kernel, stride, pad = (case["kh"], case["kw"]), case["stride"], case["pad"]
    x = rng.normal(size=shape)
    cols = scratch.im2col(x, *kernel, stride, pad)
    expected = F.unfold(torch.tensor(x), kernel, stride=stride, padding=pad).numpy()
    np.testing.assert_array_equal(cols, expected)  # pure copying: bit-exact

    other = rng.normal(size=cols.shape)
    folded = scratch.col2im(other, shape, *kernel, stride, pad)
    expected = F.fold(torch.tensor(other), (case["h"], case["w"]), kernel, stride=stride,
                      padding=pad).numpy()
    np.testing.assert_allclose(folded, expected, atol=TOL)


@FEW
@given(st.integers(1, 3), st.integers(1, 3), st.integers(2, 9), st.integers(2, 9),
       st.integers(1, 3), st.integers(1, 3), st.integers(0, 2**31))
def test_maxpool_matches_torch(n: int, c: int, h: int, w: int, pool: int, stride: int,
                               seed: int) -> None:
    pool = min(pool, h, w)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, c, h, w))  # continuous values: ties have probability 0
    out, cache = scratch.maxpool_forward(x, pool, stride)
    xt = _tensor(x)
    expected = F.max_pool2d(xt, pool, stride)
    np.testing.assert_array_equal(out, expected.detach().numpy())
    dout = rng.normal(size=out.shape)
    expected.backward(torch.tensor(dout))
    np.testing.assert_allclose(scratch.maxpool_backward(dout, cache), xt.grad.numpy(), atol=TOL)


@FEW
@given(st.integers(1, 5), st.integers(1, 6), st.integers(1, 6), st.integers(0, 2**31))
def test_linear_matches_torch(n: int, d: int, m: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x, w, b = rng.normal(size=(n, d)), rng.normal(size=(m, d)), rng.normal(size=m)
    out, cache = scratch.linear_forward(x, w, b)
    xt, wt, bt = _tensor(x), _tensor(w), _tensor(b)
    expected = F.linear(xt, wt, bt)
    np.testing.assert_allclose(out, expected.detach().numpy(), atol=TOL)
    dout = rng.normal(size=out.shape)
    expected.backward(torch.tensor(dout))
    for ours, theirs in zip(scratch.linear_backward(dout, cache), (xt, wt, bt), strict=True):
        np.testing.assert_allclose(ours, theirs.grad.numpy(), atol=TOL)


@FEW
@given(st.lists(st.integers(1, 4), min_size=1, max_size=4), st.integers(0, 2**31))
def test_sigmoid_matches_torch(shape: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=3.0, size=shape)
    out, cache = scratch.sigmoid_forward(x)
    xt = _tensor(x)
    expected = torch.sigmoid(xt)
    np.testing.assert_allclose(out, expected.detach().numpy(), atol=TOL)
    dout = rng.normal(size=out.shape)
    expected.backward(torch.tensor(dout))
    np.testing.assert_allclose(scratch.sigmoid_backward(dout, cache), xt.grad.numpy(), atol=TOL)


def test_sgd_update_matches_torch_sgd() -> None:
    rng = np.random.default_rng(0)
    w, dw = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    wt = torch.tensor(w, requires_grad=True)
    wt.grad = torch.tensor(dw)
    torch.optim.SGD([wt], lr=0.3).step()
    np.testing.assert_allclose(scratch.sgd_update(w, dw, 0.3), wt.detach().numpy(), atol=TOL)


# ---- numerical gradients: the check a student can run without torch ----------------------


def test_numerical_gradients_of_conv() -> None:
    rng = np.random.default_rng(1)
    x, w, b = rng.normal(size=(2, 2, 5, 5)), rng.normal(size=(3, 2, 3, 3)), rng.normal(size=3)
    out, cache = scratch.conv_forward(x, w, b, stride=2, pad=1)
    dout = rng.normal(size=out.shape)
    dx, dw, db = scratch.conv_backward(dout, cache)
    num_dx = scratch.numerical_gradient(lambda v: scratch.conv_forward(v, w, b, 2, 1)[0], x, dout)
    num_dw = scratch.numerical_gradient(lambda v: scratch.conv_forward(x, v, b, 2, 1)[0], w, dout)
    num_db = scratch.numerical_gradient(lambda v: scratch.conv_forward(x, w, v, 2, 1)[0], b, dout)
    assert scratch.relative_error(dx, num_dx) < 1e-7
    assert scratch.relative_error(dw, num_dw) < 1e-7
    assert scratch.relative_error(db, num_db) < 1e-7


def test_numerical_gradients_of_linear_sigmoid_maxpool() -> None:
    rng = np.random.default_rng(2)
    x, w, b = rng.normal(size=(3, 5)), rng.normal(size=(4, 5)), rng.normal(size=4)
    out, cache = scratch.linear_forward(x, w, b)
    dout = rng.normal(size=out.shape)
    dx, dw, _ = scratch.linear_backward(dout, cache)
    num_dx = scratch.numerical_gradient(lambda v: scratch.linear_forward(v, w, b)[0], x, dout)
    num_dw = scratch.numerical_gradient(lambda v: scratch.linear_forward(x, v, b)[0], w, dout)
    assert scratch.relative_error(dx, num_dx) < 1e-7
    assert scratch.relative_error(dw, num_dw) < 1e-7

    z = rng.normal(size=(2, 3))
    a, cache = scratch.sigmoid_forward(z)
    da = rng.normal(size=a.shape)
    numeric = scratch.numerical_gradient(lambda v: scratch.sigmoid_forward(v)[0], z, da)
    assert scratch.relative_error(scratch.sigmoid_backward(da, cache), numeric) < 1e-7

    image = rng.normal(size=(1, 2, 4, 4))
    pooled, cache = scratch.maxpool_forward(image)
    dpool = rng.normal(size=pooled.shape)
    numeric = scratch.numerical_gradient(lambda v: scratch.maxpool_forward(v)[0], image, dpool)
    assert scratch.relative_error(scratch.maxpool_backward(dpool, cache), numeric) < 1e-7


def test_numerical_gradient_detects_a_wrong_gradient() -> None:
    """The check must be able to fail: a gradient off by a factor of 2 is caught."""
    x = np.array([0.3, -1.2, 2.0])
    dout = np.ones(3)
    numeric = scratch.numerical_gradient(lambda v: v**2, x, dout)
    assert scratch.relative_error(2 * x, numeric) < 1e-8
    assert scratch.relative_error(4 * x, numeric) > 0.1


def test_fold_of_unfold_counts_overlaps() -> None:
    x = np.ones((1, 1, 5, 5))
    counts = scratch.col2im(scratch.im2col(x, 3, 3), x.shape, 3, 3)
    assert counts[0, 0, 2, 2] == 9 and counts[0, 0, 0, 0] == 1 and counts[0, 0, 0, 2] == 3


# ---- bad input: clear errors that name the parameter ------------------------------------


def test_bad_inputs_raise_clear_errors() -> None:
    x = np.zeros((1, 3, 5, 5))
    with pytest.raises(ValueError, match="3 channels but w expects 2"):
        scratch.conv_forward(x, np.zeros((4, 2, 3, 3)), np.zeros(4))
    with pytest.raises(ValueError, match="x must be a 4-d array"):
        scratch.conv_forward(x[0], np.zeros((4, 3, 3, 3)), np.zeros(4))
    with pytest.raises(ValueError, match="b must have shape"):
        scratch.conv_forward(x, np.zeros((4, 3, 3, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="larger than the padded input"):
        scratch.conv_forward(x, np.zeros((4, 3, 7, 7)), np.zeros(4))
    with pytest.raises(ValueError, match="stride must be an integer >= 1"):
        scratch.im2col(x, 3, 3, stride=0)
    with pytest.raises(ValueError, match="pad must be an integer >= 0"):
        scratch.im2col(x, 3, 3, pad=-1)
    with pytest.raises(ValueError, match="do not fit"):
        scratch.linear_forward(np.zeros((2, 3)), np.zeros((4, 5)), np.zeros(4))
    with pytest.raises(ValueError, match="same shape"):
        scratch.sgd_update(np.zeros(3), np.zeros(4), 0.1)
    with pytest.raises(ValueError, match="pool 3 is larger than the input"):
        scratch.maxpool_forward(np.zeros((1, 1, 2, 2)), pool=3)
    with pytest.raises(ValueError, match="cols has shape"):
        scratch.col2im(np.zeros((1, 9, 4)), (1, 1, 5, 5), 3, 3)


def test_bound_text_and_the_rounding_tolerance() -> None:
    assert scratch.bound_text(scratch.ROUNDING_TOLERANCE) == "< 1e-10"
    assert scratch.bound_text(1e-7) == "< 1e-7" and scratch.bound_text(1.0) == "< 1e0"
    for bad in (0.0, -1e-10, 2e-10):
        with pytest.raises(ValueError, match="power of ten"):
            scratch.bound_text(bad)
    # the tolerance sits far above rounding and far below a real error, for O(1) values
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=(2, 3, 8, 8)), rng.normal(size=(4, 3, 3, 3)), rng.normal(size=4)
    ours, _ = scratch.conv_forward(x, w, b, 1, 1)
    theirs = F.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), padding=1).numpy()
    assert np.max(np.abs(ours - theirs)) < 1e-4 * scratch.ROUNDING_TOLERANCE
    wrong, _ = scratch.conv_forward(x, w[:, :, ::-1, ::-1], b, 1, 1)  # a flipped kernel
    assert np.max(np.abs(wrong - theirs)) > 1e8 * scratch.ROUNDING_TOLERANCE
