"""Adam as every trainlab training path makes it: torch's fused kernel where the device has one.

    optimizer = make_adam(model.parameters(), lr=1e-3)

The fused kernel does the same update in one pass over each parameter, where torch's default
(``foreach``) runs several whole-tensor operations per step, each allocating its result. For a
large model on a CPU that is a large share of the step: one step of the energy-based model
study's 14.4M-parameter regressor (batch 128, two threads) took 92 ms fused against 137 ms with
the default, whose Adam was 40% of the step (26% in a ``sqrt`` and a ``div`` that each allocate
a new tensor). The fused kernel rounds differently, so its numbers differ from the default's in
the last bits, as any change of summation order does (``bench/adam_fused.py`` compares the two).
"""

from __future__ import annotations

from typing import Iterable

import torch


def fused_adam(device: torch.device) -> bool:
    """Whether torch has a fused Adam kernel for ``device`` (CPU, CUDA); elsewhere (MPS) the foreach one runs."""
    return device.type in ("cpu", "cuda")


def make_adam(params: Iterable[torch.Tensor], lr: float, weight_decay: float = 0.0) -> torch.optim.Adam:
    """``torch.optim.Adam`` over ``params`` (one device), fused where :func:`fused_adam` says so."""
    params = list(params)
    fused = bool(params) and fused_adam(params[0].device)
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=fused or None)
