"""Optimisation & CNN study, Q4: six torch ops re-implemented without a deep-learning library.

The study fed a 32-sample ramp (``pixel_input.pt``) and its filters
(``filter.pt``) through MaxPool1d, AvgPool1d, conv1d, Sigmoid, BatchNorm1d and
Linear, re-implemented each in plain Python and checked that the outputs
match. Here the re-implementations are the NumPy ops of
:mod:`trainlab.scratch.ops`, and the comparison covers the gradients too
(with respect to the input and every parameter) and BatchNorm's running
statistics after its training-mode update.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from trainlab.config import BaseConfig, positive
from trainlab.device import torch_generator
from trainlab.errors import DataError
from trainlab.report.figures import new_figure
from trainlab.runs import Run
from trainlab.scratch import ops

NAME = "torch-ops"
STUDY = "optim-cnn"
QUESTION = "Q4"
SUMMARY = "NumPy max/avg pool, conv1d, sigmoid, batch norm, linear against torch (values, grads)"
RUNTIME = "~4 s"  # bench/runtimes.py, 2026-12-06 (3.7 s), one at a time on the 2-core machine
QUICK: dict = {}

FILES = ("pixel_input.pt", "filter.pt")


@dataclass
class Config(BaseConfig):
    data_dir: Optional[str] = None
    """Folder with the study's pixel_input.pt and filter.pt; None builds the same ramp and filters."""
    pool_kernel: int = 2
    """Kernel of MaxPool1d and AvgPool1d (the study's 2)."""
    pool_stride: int = 1
    """Stride of MaxPool1d and AvgPool1d (the study's 1)."""
    linear_out: int = 4
    """out_features of Linear(32, out_features); the study does not say, weights are seeded random."""
    bn_training: bool = True
    """Run BatchNorm1d in training mode (batch statistics, running-stat update), as a fresh nn.Module does."""

    def __post_init__(self) -> None:
        super().__post_init__()
        positive("pool_kernel", self.pool_kernel)
        positive("pool_stride", self.pool_stride)
        positive("linear_out", self.linear_out)


def run(cfg: Config, out: Run) -> None:
    # Data: the study's ramp and filters, from its files or rebuilt.
    x, filters, source = load_inputs(cfg.data_dir)
    out.text(
        "data",
        f"Input {tuple(x.shape)} and filter {tuple(filters.shape)} ({source}). The filter file holds "
        f"{filters.shape[0]} one-tap filters (out_channels={filters.shape[0]}, kernel_size={filters.shape[-1]}), "
        "not one 3-tap filter, so conv1d gives one output channel per filter, each the input times a constant.",
        title="Data",
    )

    # Model: the study's six torch calls, with parameters shared with the NumPy versions.
    gen = torch_generator(cfg.seed)
    length = x.shape[-1]
    bound = 1.0 / length**0.5  # nn.Linear's default init range, drawn from our generator
    lin_w = (torch.rand(cfg.linear_out, length, generator=gen) * 2 - 1) * bound
    lin_b = (torch.rand(cfg.linear_out, generator=gen) * 2 - 1) * bound
    pool = dict(kernel_size=cfg.pool_kernel, stride=cfg.pool_stride)
    cases = build_cases(x, filters, lin_w, lin_b, pool, cfg.bn_training)

    # Measure: outputs and gradients of each, torch against NumPy.
    rows, outputs = [], []
    for case in cases:
        result = compare(case, out.device, gen)
        for row in result.pop("rows"):
            rows.append(row)
            out.log(op=row["op"], max_abs_diff=row["max_abs_diff"], max_abs_grad_diff=row["max_abs_grad_diff"])
        outputs.append(result)

    out.table(
        "ops", rows, columns=["op", "output_shape", "max_abs_diff", "max_abs_grad_diff", "torch_call"],
        title="NumPy against torch",
        caption="Largest absolute difference of the outputs, and of the gradients with respect to the "
        "input and every parameter for a random upstream gradient (float32, CPU NumPy against torch on "
        f"{out.device}).",
    )
    out.figure("outputs", _plot(outputs), title="Outputs side by side",
               caption="torch (line) and NumPy (dots) for every op; channel 0 of the first sample.")
    out.text("values", _side_by_side(outputs), title="Output values (torch above, NumPy below)", code=True)
    worst = max(r["max_abs_diff"] for r in rows)
    worst_grad = max(r["max_abs_grad_diff"] for r in rows if not math.isnan(r["max_abs_grad_diff"]))
    out.summary(headline="max_abs_diff", max_abs_diff=worst, max_abs_grad_diff=worst_grad, n_ops=len(cases))


def load_inputs(data_dir: Optional[str]) -> tuple[torch.Tensor, torch.Tensor, str]:
    """The study's input ramp (1, 1, 32) and filters (3, 1, 1), from ``data_dir`` or rebuilt."""
    if data_dir is None:
        ramp = torch.cat([torch.arange(1, 17), torch.arange(16, 0, -1)]).float() / 16
        return ramp.reshape(1, 1, 32), torch.tensor([0.8, 0.4, 0.6]).reshape(3, 1, 1), "rebuilt"
    folder = Path(data_dir)
    missing = [f for f in FILES if not (folder / f).is_file()]
    if missing:
        raise DataError(f"{folder} lacks {', '.join(missing)}; put the study's files there or leave data_dir unset")
    try:
        x, filters = (torch.load(folder / f, weights_only=True) for f in FILES)
    except Exception as exc:  # corrupt file or pickled objects refused by weights_only
        raise DataError(f"cannot read {folder}/{FILES[0]} or {FILES[1]} as tensors: {exc}") from None
    if not (isinstance(x, torch.Tensor) and x.ndim == 3 and isinstance(filters, torch.Tensor) and filters.ndim == 3):
        raise DataError(f"{folder}: pixel_input.pt must hold an (N, C, L) tensor and filter.pt a (C_out, C_in, K) one")
    return x.float(), filters.float(), f"loaded from {folder}"


def build_cases(x, filters, lin_w, lin_b, pool, bn_training) -> list[dict]:
    """Each case: the torch module or call, the NumPy forward and backward, the parameters."""
    bn = nn.BatchNorm1d(x.shape[1], eps=1e-5, momentum=0.1).train(bn_training)
    rm, rv = np.zeros(x.shape[1], np.float32), np.ones(x.shape[1], np.float32)
    ones, zeros = np.ones(x.shape[1], np.float32), np.zeros(x.shape[1], np.float32)
    bn_args = dict(training=bn_training, momentum=0.1, eps=1e-5)
    linear = nn.Linear(x.shape[-1], lin_w.shape[0])
    with torch.no_grad():
        linear.weight.copy_(lin_w)
        linear.bias.copy_(lin_b)
    p = ", ".join(f"{k}={v}" for k, v in pool.items())
    return [
        dict(op="max_pool1d", torch_call=f"nn.MaxPool1d({p})", module=nn.MaxPool1d(**pool), x=x, params={},
             ours=lambda a: ops.max_pool1d(a, **pool), grads=lambda g, a: (ops.max_pool1d_backward(g, a, **pool),)),
        dict(op="avg_pool1d", torch_call=f"nn.AvgPool1d({p})", module=nn.AvgPool1d(**pool), x=x, params={},
             ours=lambda a: ops.avg_pool1d(a, **pool), grads=lambda g, a: (ops.avg_pool1d_backward(g, a, **pool),)),
        dict(op="conv1d", torch_call="F.conv1d(input, filter)", module=_Conv(filters), x=x,
             params={"filter": filters}, ours=lambda a: ops.conv1d(a, filters.numpy()),
             grads=lambda g, a: ops.conv1d_backward(g, a, filters.numpy())[:2]),
        dict(op="sigmoid", torch_call="nn.Sigmoid()", module=nn.Sigmoid(), x=x, params={},
             ours=ops.sigmoid, grads=lambda g, a: (ops.sigmoid_backward(g, a),)),
        dict(op="batch_norm", torch_call=f"nn.BatchNorm1d({x.shape[1]}).train({bn_training})", module=bn, x=x,
             params={"weight": bn.weight, "bias": bn.bias}, running=(rm, rv),
             ours=lambda a: ops.batch_norm(a, rm, rv, ones, zeros, **bn_args),
             grads=lambda g, a: ops.batch_norm_backward(g, a, rm, rv, ones, zeros, **bn_args)),
        dict(op="linear", torch_call=f"nn.Linear({x.shape[-1]}, {lin_w.shape[0]})", module=linear, x=x,
             params={"weight": linear.weight, "bias": linear.bias},
             ours=lambda a: ops.linear(a, lin_w.numpy(), lin_b.numpy()),
             grads=lambda g, a: ops.linear_backward(g, a, lin_w.numpy(), lin_b.numpy())),
    ]


class _Conv(nn.Module):
    """``F.conv1d(input, filter)`` with the filter as a parameter, so its gradient is measured."""

    def __init__(self, filters: torch.Tensor):
        super().__init__()
        self.filter = nn.Parameter(filters.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.conv1d(x, self.filter)


def compare(case: dict, device: torch.device, gen: torch.Generator) -> dict:
    """Run one case in torch (on ``device``) and NumPy; differences of outputs and gradients."""
    module = case["module"].to(device)
    x = case["x"].numpy()
    xt = case["x"].to(device, copy=True).requires_grad_(True)
    out_t = module(xt)
    ours = case["ours"](x)
    upstream = torch.randn(out_t.shape, generator=gen)
    out_t.backward(upstream.to(device))
    grads_t = [xt.grad] + [prm.grad for prm in module.parameters()]
    grads = case["grads"](upstream.numpy(), x)
    grad_diff = max(float(np.abs(np.asarray(a) - b.detach().cpu().numpy()).max()) for a, b in zip(grads, grads_t))
    torch_out = out_t.detach().cpu().numpy()
    rows = [dict(op=case["op"], torch_call=case["torch_call"], output_shape=str(tuple(torch_out.shape)),
                 max_abs_diff=float(np.abs(ours - torch_out).max()), max_abs_grad_diff=grad_diff)]
    if "running" in case:  # the training-mode update of BatchNorm's running statistics
        stats_t = np.concatenate([module.running_mean.cpu().numpy(), module.running_var.cpu().numpy()])
        rows.append(dict(op="batch_norm running stats", torch_call="running_mean, running_var",
                         output_shape=str((2, stats_t.size // 2)),
                         max_abs_diff=float(np.abs(np.concatenate(case["running"]) - stats_t).max()),
                         max_abs_grad_diff=float("nan")))
    return dict(rows=rows, op=case["op"], torch=torch_out, ours=ours)


def _plot(outputs: list[dict]):
    fig, axes = new_figure(ncols=3, nrows=2, size=(4.0, 2.8))
    for ax, result in zip(axes.flat, outputs):
        ax.plot(result["torch"][0, 0], color="C0", label="torch")
        ax.plot(result["ours"][0, 0], "o", ms=3, color="C1", label="NumPy")
        ax.set(title=result["op"], xlabel="position")
    axes[0, 0].legend()
    return fig


def _side_by_side(outputs: list[dict]) -> str:
    blocks = []
    for result in outputs:
        fmt = dict(precision=4, max_line_width=110, suppress_small=True)
        blocks.append(f"{result['op']} {tuple(result['torch'].shape)}\n"
                      f"torch {np.array2string(result['torch'].reshape(-1, result['torch'].shape[-1]), **fmt)}\n"
                      f"ours  {np.array2string(result['ours'].reshape(-1, result['ours'].shape[-1]), **fmt)}")
    return "\n\n".join(blocks)
