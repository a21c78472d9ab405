"""NumPy versions of six ``torch.nn.functional`` ops, each with its backward.

Forward functions take the same names and arguments as torch
(``max_pool1d(input, kernel_size, stride=None, ...)``) and the same layouts:
``(N, C, L)`` for pooling and convolution, ``(*, in_features)`` for ``linear``,
``(N, C, ...)`` for ``batch_norm``. Each ``<op>_backward(grad_output, <the
forward's arguments>)`` returns the gradients with respect to the input and the
parameters, in the order of the forward's arguments, ``None`` where a
parameter was not given. The tests check values and gradients against torch.

Pooling and convolution gather every window at once with one fancy index
(``x[:, :, idx]`` with ``idx[l, j] = l * stride + j * dilation``) and scatter
gradients back with ``np.add.at``, which handles overlapping windows.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

Array = np.ndarray


# -- shapes and windows ----------------------------------------------------------------


def _pool_length(length: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool) -> int:
    """Output length with torch's rule (``pooling_output_shape`` in ATen).

    In ceil mode the last window may run past the end, but it has to start
    inside the input or the left padding.
    """
    span = length + 2 * padding - dilation * (kernel - 1) - 1
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= length + padding:
        out -= 1
    return out


def _windows(out_len: int, kernel: int, stride: int, dilation: int) -> Array:
    """``idx[l, j]``: position in the padded input of tap ``j`` of output ``l``."""
    return np.arange(out_len)[:, None] * stride + np.arange(kernel)[None, :] * dilation


def _check_3d(x: Array, name: str) -> None:
    if x.ndim != 3:
        raise ValueError(f"{name} expects input shaped (N, C, L), got {x.shape}")


def _pool_args(input: Array, kernel_size: int, stride: Optional[int], padding: int, dilation: int, ceil_mode: bool, op: str):
    _check_3d(input, op)
    stride = kernel_size if stride is None else stride
    if kernel_size < 1 or stride < 1 or dilation < 1 or padding < 0:
        raise ValueError(f"{op}: kernel_size, stride and dilation must be >= 1 and padding >= 0")
    out_len = _pool_length(input.shape[-1], kernel_size, stride, padding, dilation, ceil_mode)
    if out_len < 1:
        raise ValueError(f"{op}: input of length {input.shape[-1]} is too short for the window")
    idx = _windows(out_len, kernel_size, stride, dilation)
    # Right padding large enough for ceil-mode windows that run past the end.
    right = max(padding, int(idx.max()) + 1 - padding - input.shape[-1])
    return stride, out_len, idx, right


# -- max_pool1d ----------------------------------------------------------------------


def max_pool1d(
    input: Array,
    kernel_size: int,
    stride: Optional[int] = None,
    padding: int = 0,
    dilation: int = 1,
    ceil_mode: bool = False,
) -> Array:
    """Largest value in each window; padded positions never win (they are -inf).

    With dilation a window can hold padding only; its output is -inf and it
    passes no gradient (torch's gradient for such a window is arbitrary).
    """
    _, _, idx, right = _max_pool_setup(input, kernel_size, stride, padding, dilation, ceil_mode)
    padded = _pad(input, padding, right, -np.inf)
    return padded[:, :, idx].max(axis=-1)


def max_pool1d_backward(
    grad_output: Array,
    input: Array,
    kernel_size: int,
    stride: Optional[int] = None,
    padding: int = 0,
    dilation: int = 1,
    ceil_mode: bool = False,
) -> Array:
    """Gradient w.r.t. the input: each output's gradient goes to its window's first maximum (as torch)."""
    _, _, idx, right = _max_pool_setup(input, kernel_size, stride, padding, dilation, ceil_mode)
    padded = _pad(input, padding, right, -np.inf)
    winner = np.take_along_axis(
        np.broadcast_to(idx, padded.shape[:2] + idx.shape),
        padded[:, :, idx].argmax(axis=-1)[..., None],
        axis=-1,
    )[..., 0]
    grad = np.zeros(padded.shape, dtype=np.result_type(grad_output, input))
    n, c = np.indices(winner.shape[:2])
    np.add.at(grad, (n[..., None], c[..., None], winner), grad_output)
    return grad[:, :, padding : padding + input.shape[-1]]


def _max_pool_setup(input, kernel_size, stride, padding, dilation, ceil_mode):
    setup = _pool_args(input, kernel_size, stride, padding, dilation, ceil_mode, "max_pool1d")
    if 2 * padding > kernel_size:  # torch's limit, whatever the dilation
        raise ValueError("max_pool1d: padding must be at most half of the kernel size")
    return setup


def _pad(x: Array, left: int, right: int, value: float) -> Array:
    return np.pad(x, ((0, 0), (0, 0), (left, right)), constant_values=value)


# -- avg_pool1d ----------------------------------------------------------------------


def avg_pool1d(
    input: Array,
    kernel_size: int,
    stride: Optional[int] = None,
    padding: int = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> Array:
    """Mean of each window, with torch's divisor (see :func:`_avg_divisor`)."""
    _, out_len, idx, right = _avg_setup(input, kernel_size, stride, padding, ceil_mode)
    padded = _pad(input, padding, right, 0.0)
    divisor = _avg_divisor(input.shape[-1], out_len, kernel_size, idx[:, 0], padding, count_include_pad)
    return (padded[:, :, idx].sum(axis=-1) / divisor).astype(input.dtype, copy=False)


def avg_pool1d_backward(
    grad_output: Array,
    input: Array,
    kernel_size: int,
    stride: Optional[int] = None,
    padding: int = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> Array:
    """Gradient w.r.t. the input: each output's gradient / divisor, spread over its window."""
    _, out_len, idx, right = _avg_setup(input, kernel_size, stride, padding, ceil_mode)
    padded_len = padding + input.shape[-1] + right
    divisor = _avg_divisor(input.shape[-1], out_len, kernel_size, idx[:, 0], padding, count_include_pad)
    share = np.broadcast_to((grad_output / divisor)[..., None], grad_output.shape + (kernel_size,))
    grad = np.zeros(input.shape[:2] + (padded_len,), dtype=np.result_type(grad_output, input))
    np.add.at(grad, (slice(None), slice(None), idx), share)
    return grad[:, :, padding : padding + input.shape[-1]]


def _avg_setup(input, kernel_size, stride, padding, ceil_mode):
    setup = _pool_args(input, kernel_size, stride, padding, 1, ceil_mode, "avg_pool1d")
    if 2 * padding > kernel_size:
        raise ValueError("avg_pool1d: padding must be at most half of the kernel size")
    return setup


def _avg_divisor(length: int, out_len: int, kernel: int, starts: Array, padding: int, count_include_pad: bool) -> Array:
    """torch's divisor: the window clipped to the padded input, or to the input alone.

    A ceil-mode window that runs past the right padding counts only up to it,
    even with ``count_include_pad=True`` (ATen's ``AvgPoolKernel``).
    """
    lo = starts - padding  # window start in input coordinates
    hi = np.minimum(lo + kernel, length + padding)
    if count_include_pad:
        return (hi - lo).astype(float)
    return (np.minimum(hi, length) - np.maximum(lo, 0)).astype(float)


# -- conv1d --------------------------------------------------------------------------


def conv1d(
    input: Array,
    weight: Array,
    bias: Optional[Array] = None,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    groups: int = 1,
) -> Array:
    """Cross-correlation (as torch: no kernel flip); weight shaped (C_out, C_in / groups, K)."""
    cols, w = _conv_setup(input, weight, stride, padding, dilation, groups)
    n, g, _, out_len, _ = cols.shape
    out = np.einsum("ngclk,gock->ngol", cols, w).reshape(n, -1, out_len)
    if bias is not None:
        out = out + bias[None, :, None]
    return out


def conv1d_backward(
    grad_output: Array,
    input: Array,
    weight: Array,
    bias: Optional[Array] = None,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    groups: int = 1,
) -> tuple[Array, Array, Optional[Array]]:
    """Gradients w.r.t. (input, weight, bias)."""
    cols, w = _conv_setup(input, weight, stride, padding, dilation, groups)
    n, g, c, out_len, k = cols.shape
    go = grad_output.reshape(n, g, -1, out_len)
    grad_w = np.einsum("ngol,ngclk->gock", go, cols).reshape(weight.shape)
    grad_cols = np.einsum("ngol,gock->ngclk", go, w).reshape(n, g * c, out_len, k)
    idx = _windows(out_len, k, stride, dilation)
    grad = np.zeros((n, g * c, input.shape[-1] + 2 * padding), dtype=grad_cols.dtype)
    np.add.at(grad, (slice(None), slice(None), idx), grad_cols)
    grad_b = grad_output.sum(axis=(0, 2)) if bias is not None else None
    return grad[:, :, padding : padding + input.shape[-1]], grad_w, grad_b


def _conv_setup(input: Array, weight: Array, stride: int, padding: int, dilation: int, groups: int):
    _check_3d(input, "conv1d")
    n, c_in, length = input.shape
    c_out, c_per_group, k = weight.shape
    if c_in % groups or c_out % groups or c_per_group * groups != c_in:
        raise ValueError(f"conv1d: weight {weight.shape} does not fit input channels {c_in} with groups={groups}")
    out_len = (length + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    if out_len < 1:
        raise ValueError(f"conv1d: input of length {length} is too short for the kernel")
    padded = np.pad(input, ((0, 0), (0, 0), (padding, padding)))
    cols = padded[:, :, _windows(out_len, k, stride, dilation)]  # (N, C_in, L_out, K)
    cols = cols.reshape(n, groups, c_per_group, out_len, k)
    return cols, weight.reshape(groups, c_out // groups, c_per_group, k)


# -- sigmoid -------------------------------------------------------------------------


def sigmoid(input: Array) -> Array:
    """1 / (1 + exp(-x)), written as 0.5 (1 + tanh(x / 2)) so it never overflows."""
    return 0.5 * (1.0 + np.tanh(0.5 * input))


def sigmoid_backward(grad_output: Array, input: Array) -> Array:
    s = sigmoid(input)
    return grad_output * s * (1.0 - s)


# -- batch_norm ----------------------------------------------------------------------


def batch_norm(
    input: Array,
    running_mean: Optional[Array],
    running_var: Optional[Array],
    weight: Optional[Array] = None,
    bias: Optional[Array] = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Array:
    """Normalise each channel (axis 1) over the batch and every other axis.

    In training mode the batch's mean and biased variance normalise, and the
    running statistics are updated in place as torch does:
    ``running = (1 - momentum) * running + momentum * batch`` with the
    *unbiased* variance. In eval mode the running statistics normalise.
    """
    mean, var = _bn_stats(input, running_mean, running_var, training)
    if training:
        n = input.size // input.shape[1]
        if running_mean is not None:
            running_mean *= 1 - momentum
            running_mean += momentum * mean
        if running_var is not None:
            running_var *= 1 - momentum
            running_var += momentum * var * n / (n - 1)
    shape = _channel_shape(input)
    out = (input - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


def batch_norm_backward(
    grad_output: Array,
    input: Array,
    running_mean: Optional[Array],
    running_var: Optional[Array],
    weight: Optional[Array] = None,
    bias: Optional[Array] = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> tuple[Array, Optional[Array], Optional[Array]]:
    """Gradients w.r.t. (input, weight, bias); the running statistics are left untouched.

    In training mode the mean and variance depend on the input, which adds the
    two centring terms of the classic batch-norm backward.
    """
    mean, var = _bn_stats(input, running_mean, running_var, training)
    shape = _channel_shape(input)
    axes = _reduce_axes(input)
    inv_std = 1.0 / np.sqrt(var.reshape(shape) + eps)
    x_hat = (input - mean.reshape(shape)) * inv_std
    grad_w = (grad_output * x_hat).sum(axis=axes) if weight is not None else None
    grad_b = grad_output.sum(axis=axes) if bias is not None else None
    g = grad_output * weight.reshape(shape) if weight is not None else grad_output
    if training:
        g = g - g.mean(axis=axes, keepdims=True) - x_hat * (g * x_hat).mean(axis=axes, keepdims=True)
    return g * inv_std, grad_w, grad_b


def _bn_stats(input, running_mean, running_var, training):
    if input.ndim < 2:
        raise ValueError(f"batch_norm expects input shaped (N, C, ...), got {input.shape}")
    if training:
        axes = _reduce_axes(input)
        if input.size // input.shape[1] < 2:
            raise ValueError("batch_norm: expected more than 1 value per channel when training")
        return input.mean(axis=axes), input.var(axis=axes)
    if running_mean is None or running_var is None:
        raise ValueError("batch_norm: running_mean and running_var are needed in eval mode")
    return np.asarray(running_mean), np.asarray(running_var)


def _reduce_axes(input: Array) -> tuple[int, ...]:
    return (0,) + tuple(range(2, input.ndim))


def _channel_shape(input: Array) -> tuple[int, ...]:
    return (1, input.shape[1]) + (1,) * (input.ndim - 2)


# -- linear --------------------------------------------------------------------------


def linear(input: Array, weight: Array, bias: Optional[Array] = None) -> Array:
    """``input @ weight.T + bias`` over the last axis; weight shaped (out_features, in_features)."""
    out = input @ weight.T
    return out + bias if bias is not None else out


def linear_backward(
    grad_output: Array, input: Array, weight: Array, bias: Optional[Array] = None
) -> tuple[Array, Array, Optional[Array]]:
    """Gradients w.r.t. (input, weight, bias)."""
    flat_g = grad_output.reshape(-1, weight.shape[0])
    flat_x = input.reshape(-1, weight.shape[1])
    grad_b = flat_g.sum(axis=0) if bias is not None else None
    return grad_output @ weight, flat_g.T @ flat_x, grad_b


__all__ = [
    "max_pool1d",
    "max_pool1d_backward",
    "avg_pool1d",
    "avg_pool1d_backward",
    "conv1d",
    "conv1d_backward",
    "sigmoid",
    "sigmoid_backward",
    "batch_norm",
    "batch_norm_backward",
    "linear",
    "linear_backward",
]
