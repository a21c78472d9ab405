"""The NumPy ops against torch.nn.functional: values and gradients, over random shapes and arguments."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from trainlab.scratch import ops

SETTINGS = settings(max_examples=50, deadline=None)
TOL = dict(rtol=1e-10, atol=1e-12)


def _arrays(seed: int, *shapes: tuple[int, ...], scale: float = 1.0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(scale=scale, size=s) for s in shapes]


def _torch_grads(out: torch.Tensor, grad_out: np.ndarray, *leaves) -> list:
    out.backward(torch.from_numpy(grad_out))
    return [None if t is None else t.grad.numpy() for t in leaves]


def _leaf(a: np.ndarray | None) -> torch.Tensor | None:
    return None if a is None else torch.tensor(a, requires_grad=True)


def _assert_close(ours, theirs, **tol) -> None:
    assert (ours is None) == (theirs is None)
    if ours is not None:
        assert ours.shape == theirs.shape
        np.testing.assert_allclose(ours, theirs, **(tol or TOL))


@st.composite
def pool_args(draw, dilated: bool):
    kernel = draw(st.integers(1, 5))
    dilation = draw(st.integers(1, 3)) if dilated else 1
    effective = dilation * (kernel - 1) + 1
    padding = draw(st.integers(0, kernel // 2))
    stride = draw(st.one_of(st.none(), st.integers(1, 4)))
    length = draw(st.integers(max(1, effective - 2 * padding), effective + 12))
    return dict(
        shape=(draw(st.integers(1, 3)), draw(st.integers(1, 3)), length),
        kernel_size=kernel,
        stride=stride,
        padding=padding,
        dilation=dilation,
        ceil_mode=draw(st.booleans()),
        seed=draw(st.integers(0, 2**31)),
    )


def _has_empty_window(length, kernel_size, stride, padding, dilation, ceil_mode) -> bool:
    out = np.isfinite(ops.max_pool1d(np.zeros((1, 1, length)), kernel_size, stride, padding, dilation, ceil_mode))
    return not out.all()


@SETTINGS
@given(pool_args(dilated=True))
def test_max_pool1d_matches_torch(a):
    seed, shape = a.pop("seed"), a.pop("shape")
    # With dilation a window can hold padding only; its output is -inf and torch's
    # gradient for it is arbitrary, so such windows are left out.
    assume(not _has_empty_window(shape[-1], **a))
    (x,) = _arrays(seed, shape)  # continuous values: no ties, so the argmax is unambiguous
    xt = _leaf(x)
    out_t = F.max_pool1d(xt, **a)
    out = ops.max_pool1d(x, **a)
    _assert_close(out, out_t.detach().numpy())
    (g,) = _arrays(seed + 1, out.shape)
    (gx_t,) = _torch_grads(out_t, g, xt)
    _assert_close(ops.max_pool1d_backward(g, x, **a), gx_t)


@SETTINGS
@given(pool_args(dilated=False), st.booleans())
def test_avg_pool1d_matches_torch(a, count_include_pad):
    seed, shape = a.pop("seed"), a.pop("shape")
    a.pop("dilation")
    a["count_include_pad"] = count_include_pad
    (x,) = _arrays(seed, shape)
    xt = _leaf(x)
    out_t = F.avg_pool1d(xt, **a)
    out = ops.avg_pool1d(x, **a)
    _assert_close(out, out_t.detach().numpy())
    (g,) = _arrays(seed + 1, out.shape)
    (gx_t,) = _torch_grads(out_t, g, xt)
    _assert_close(ops.avg_pool1d_backward(g, x, **a), gx_t)


@SETTINGS
@given(
    n=st.integers(1, 3),
    groups=st.integers(1, 3),
    c_in=st.integers(1, 3),
    c_out=st.integers(1, 3),
    kernel=st.integers(1, 4),
    stride=st.integers(1, 3),
    padding=st.integers(0, 3),
    dilation=st.integers(1, 3),
    extra=st.integers(0, 10),
    with_bias=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_conv1d_matches_torch(n, groups, c_in, c_out, kernel, stride, padding, dilation, extra, with_bias, seed):
    length = max(1, dilation * (kernel - 1) + 1 - 2 * padding) + extra
    x, w, b = _arrays(seed, (n, groups * c_in, length), (groups * c_out, c_in, kernel), (groups * c_out,))
    b = b if with_bias else None
    args = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    xt, wt, bt = _leaf(x), _leaf(w), _leaf(b)
    out_t = F.conv1d(xt, wt, bt, **args)
    out = ops.conv1d(x, w, b, **args)
    _assert_close(out, out_t.detach().numpy())
    (g,) = _arrays(seed + 1, out.shape)
    expected = _torch_grads(out_t, g, xt, wt, bt)
    for ours, theirs in zip(ops.conv1d_backward(g, x, w, b, **args), expected, strict=True):
        _assert_close(ours, theirs)


@SETTINGS
@given(
    shape=st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple),
    scale=st.sampled_from([0.1, 1.0, 30.0]),
    seed=st.integers(0, 2**31),
)
def test_sigmoid_matches_torch(shape, scale, seed):
    (x,) = _arrays(seed, shape, scale=scale)  # scale 30 reaches exp overflow territory
    xt = _leaf(x)
    out_t = torch.sigmoid(xt)
    _assert_close(ops.sigmoid(x), out_t.detach().numpy())
    (g,) = _arrays(seed + 1, shape)
    (gx_t,) = _torch_grads(out_t, g, xt)
    np.testing.assert_allclose(ops.sigmoid_backward(g, x), gx_t, rtol=1e-9, atol=1e-15)


@SETTINGS
@given(
    n=st.integers(1, 4),
    c=st.integers(1, 3),
    length=st.one_of(st.none(), st.integers(1, 5)),
    training=st.booleans(),
    affine=st.booleans(),
    momentum=st.floats(0.0, 1.0),
    eps=st.sampled_from([1e-5, 1e-3, 0.1]),
    seed=st.integers(0, 2**31),
)
def test_batch_norm_matches_torch(n, c, length, training, affine, momentum, eps, seed):
    shape = (n, c) if length is None else (n, c, length)
    if training and n * (length or 1) < 2:
        with pytest.raises(ValueError, match="more than 1 value"):
            ops.batch_norm(np.zeros(shape), np.zeros(c), np.ones(c), training=True)
        return
    x, w, b, rm = _arrays(seed, shape, (c,), (c,), (c,))
    rv = np.random.default_rng(seed + 2).uniform(0.5, 2.0, size=c)
    w, b = (w, b) if affine else (None, None)
    rm_t, rv_t = torch.tensor(rm), torch.tensor(rv)
    args = dict(training=training, momentum=momentum, eps=eps)
    xt, wt, bt = _leaf(x), _leaf(w), _leaf(b)
    out_t = F.batch_norm(xt, rm_t, rv_t, wt, bt, **args)
    rm_ours, rv_ours = rm.copy(), rv.copy()
    out = ops.batch_norm(x, rm_ours, rv_ours, w, b, **args)
    _assert_close(out, out_t.detach().numpy())
    _assert_close(rm_ours, rm_t.numpy())  # running statistics updated in place, as torch
    _assert_close(rv_ours, rv_t.numpy())
    (g,) = _arrays(seed + 1, shape)
    expected = _torch_grads(out_t, g, xt, wt, bt)
    before = (rm_ours.copy(), rv_ours.copy())
    for ours, theirs in zip(ops.batch_norm_backward(g, x, rm_ours, rv_ours, w, b, **args), expected, strict=True):
        _assert_close(ours, theirs, rtol=1e-8, atol=1e-10)
    assert np.array_equal(before[0], rm_ours) and np.array_equal(before[1], rv_ours)


@SETTINGS
@given(
    batch=st.lists(st.integers(1, 3), min_size=0, max_size=2).map(tuple),
    in_features=st.integers(1, 5),
    out_features=st.integers(1, 5),
    with_bias=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_linear_matches_torch(batch, in_features, out_features, with_bias, seed):
    x, w, b = _arrays(seed, batch + (in_features,), (out_features, in_features), (out_features,))
    b = b if with_bias else None
    xt, wt, bt = _leaf(x), _leaf(w), _leaf(b)
    out_t = F.linear(xt, wt, bt)
    out = ops.linear(x, w, b)
    _assert_close(out, out_t.detach().numpy())
    (g,) = _arrays(seed + 1, out.shape)
    expected = _torch_grads(out_t, g, xt, wt, bt)
    for ours, theirs in zip(ops.linear_backward(g, x, w, b), expected, strict=True):
        _assert_close(ours, theirs)


def test_float32_input_stays_float32():
    x = np.linspace(0, 1, 32, dtype=np.float32).reshape(1, 1, 32)
    w = np.array([[[0.8]], [[0.4]], [[0.6]]], dtype=np.float32)
    for out in (ops.max_pool1d(x, 2, 1), ops.avg_pool1d(x, 2, 1), ops.conv1d(x, w), ops.sigmoid(x)):
        assert out.dtype == np.float32


def test_bad_arguments_raise():
    x = np.zeros((1, 1, 4))
    with pytest.raises(ValueError, match="half"):
        ops.max_pool1d(x, 2, padding=2)
    with pytest.raises(ValueError, match="too short"):
        ops.conv1d(x, np.zeros((1, 1, 6)))
    with pytest.raises(ValueError, match="groups"):
        ops.conv1d(np.zeros((1, 3, 4)), np.zeros((2, 1, 1)), groups=2)
    with pytest.raises(ValueError, match=r"\(N, C, L\)"):
        ops.avg_pool1d(np.zeros(4), 2)
