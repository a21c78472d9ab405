"""What one training example costs a model, for planning work on the cores (:mod:`trainlab.workers`)."""

from __future__ import annotations

import copy

import torch
from torch import nn


def training_flops_per_example(model: nn.Module, example: torch.Tensor) -> float:
    """FLOPs of one training step per example: the forward pass counted by torch, times 3
    (the backward pass costs about twice the forward).

    ``example`` is one input with its batch dimension (``x[:1]``). The count runs on a copy
    on the CPU in eval mode, so the model's own state (BatchNorm's running statistics) stays untouched.
    """
    from torch.utils.flop_counter import FlopCounterMode  # here: it imports more of torch

    probe = copy.deepcopy(model).cpu().eval()  # eval: BatchNorm takes a batch of one
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        probe(example.cpu())
    return 3.0 * counter.get_total_flops()
