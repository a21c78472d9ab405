"""Evaluation metrics on device-resident tensors (classification accuracy lives in ``loop.evaluate``)."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn


@torch.inference_mode()
def mean_loss(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    batch_size: int = 8192,
) -> float:
    """Mean of a mean-reduced ``loss_fn`` over all of (x, y), evaluated in chunks.

    Chunks are weighted by their size, so the result equals the loss over the whole set
    (for MSE: the mean over every element) whatever ``batch_size`` is.
    """
    model.eval()
    total = torch.zeros((), device=x.device)
    for start in range(0, x.shape[0], batch_size):
        xb, yb = x[start : start + batch_size], y[start : start + batch_size]
        total += loss_fn(model(xb), yb) * xb.shape[0]
    return (total / max(x.shape[0], 1)).item()
