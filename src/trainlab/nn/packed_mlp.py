"""A frozen ReLU MLP whose output and input gradient run on weights prepacked for oneDNN (CPU).

Langevin sampling through the energy study's regressor (784 -> 4096 -> ... -> 1, 14.4M
parameters) evaluates the network and its gradient with respect to the input for 16 chains at
every step: two matrix products of 16 rows against every weight. PyTorch's default CPU path
(MKL's sgemm, weights as stored) is slow on products that short and that wide: on a 2-core AMD
EPYC (Zen 4) the 4096 x 2048 layer takes 3.7 ms, 71 GFLOP/s. oneDNN, given the weights once
reordered into its blocked layout (``torch.ops.mkldnn._reorder_linear_weight``, what PyTorch's
own compiler does for frozen CPU models), takes 1.5 ms, and a whole energy-and-gradient step
7.3 ms instead of 14.1 (two threads; 12.7 against 20.1 on one). Still float32 throughout: only the
order of the sums differs, and the result does not depend on the thread count.

The backward pass of each layer is a product with the transposed weight, prepacked too, so the
weights are held three times (the module's and two packed copies; 173 MB for the regressor).
Only the input gradient exists: the packed copies are constants, and changes made to the module
after packing are not seen. Where oneDNN is missing, the device is not a CPU, the weights are not
float32 or the network is not Linear (ReLU Linear)*, :func:`packed_relu_mlp` returns the module
itself, whose numbers these equal up to float rounding (``tests/nn/test_packed_mlp.py``). The ops are
private to PyTorch, so each packed copy is first checked against the module on one probe batch (output
and input gradient); where the ops fail or disagree, the module is used.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn


def _linear(x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None, relu: bool) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "relu" if relu else "none", [], "")


class _PackedLayer(torch.autograd.Function):
    """``relu?(x W^T + b)`` forward and ``g W`` backward (``g``: the output gradient, masked by the ReLU),
    both on packed weights."""

    @staticmethod
    def forward(ctx, x, forward_weight, backward_weight, bias, relu: bool):  # type: ignore[override]
        out = _linear(x, forward_weight, bias, relu)
        ctx.backward_weight, ctx.relu = backward_weight, relu
        if relu:
            ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        if ctx.relu:
            (out,) = ctx.saved_tensors
            grad = grad.masked_fill(out <= 0, 0.0)  # ReLU's derivative, 0 at 0 as torch takes it
        return _linear(grad.contiguous(), ctx.backward_weight, None, False), None, None, None, None


class PackedReluMLP:
    """``net(x)`` for a ``Linear (ReLU Linear)*`` stack, differentiable in ``x`` only."""

    def __init__(self, linears: list[nn.Linear], batch: int):
        reorder = torch.ops.mkldnn._reorder_linear_weight
        with torch.no_grad():
            self.layers = [(reorder(m.weight.detach(), batch), reorder(m.weight.detach().t().contiguous(), batch),
                            None if m.bias is None else m.bias.detach().clone()) for m in linears]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.layers) - 1
        for i, (forward_weight, backward_weight, bias) in enumerate(self.layers):
            x = _PackedLayer.apply(x.contiguous(), forward_weight, backward_weight, bias, i < last)
        return x


def _linears_of(net: nn.Sequential) -> list[nn.Linear] | None:
    """The Linear layers of a ``Linear (ReLU Linear)*`` stack, else None."""
    layers = list(net)
    if not layers or len(layers) % 2 == 0:
        return None
    if not all(isinstance(m, nn.Linear) for m in layers[::2]) or not all(type(m) is nn.ReLU for m in layers[1::2]):
        return None
    return layers[::2]


def onednn_available() -> bool:
    """Whether this PyTorch build has the oneDNN ops the packed path calls."""
    ops = torch.ops.mkldnn
    return torch.backends.mkldnn.is_available() and all(
        hasattr(ops, name) for name in ("_linear_pointwise", "_reorder_linear_weight"))


def packed_relu_mlp(net: nn.Sequential, batch: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """``net`` as a function of its input alone, on packed copies of its weights where that pays.

    ``batch`` is the number of rows it will mostly be called with (oneDNN picks its blocking for
    it; other sizes work). The copies are taken now. Returns ``net`` itself when the packed path
    does not apply (see the module docstring).
    """
    linears = _linears_of(net)
    if linears is None or not onednn_available():
        return net
    weights = [m.weight for m in linears]
    if any(w.device.type != "cpu" or w.dtype != torch.float32 for w in weights):
        return net
    try:
        packed = PackedReluMLP(linears, batch)
        agrees = _agrees(packed, net, batch, linears[0].in_features)
    except (RuntimeError, NotImplementedError):  # private ops: a CPU or build they do not support
        return net
    return packed if agrees else net


def _agrees(packed: PackedReluMLP, net: nn.Sequential, batch: int, in_dim: int) -> bool:
    """Whether the packed copy gives the module's outputs and input gradients on one probe batch:
    the ops are private to PyTorch, so they are checked on every CPU they run on before being used."""
    results = []
    with torch.inference_mode(False), torch.enable_grad():  # whatever mode the caller is in
        probe = torch.linspace(-1.0, 1.0, batch * in_dim).reshape(batch, in_dim)
        for f in (net, packed):
            x = probe.clone().requires_grad_(True)
            out = f(x)
            (grad,) = torch.autograd.grad(out.sum(), x)
            results.append((out.detach(), grad))
    return all(torch.allclose(b, a, rtol=1e-4, atol=1e-4 * float(a.abs().max()) + 1e-30)
               for a, b in zip(results[0], results[1]))
