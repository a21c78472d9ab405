"""Sinusoidal embeddings of integer timesteps (Vaswani et al. 2017; Ho et al. 2020)."""

from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """``(B,)`` timesteps -> ``(B, dim)`` features ``[sin(w_k t), cos(w_k t)]``.

    Frequencies are ``w_k = max_period ** (-k / (dim/2))`` for ``k = 0 .. dim/2 - 1``
    (the Transformer / DDPM form); ``dim`` must be even.
    """
    if dim % 2:
        raise ValueError(f"sinusoidal embedding needs an even dim, got {dim}")
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.to(torch.float32).reshape(-1, 1) * freqs
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class SinusoidalEmbedding(nn.Module):
    """Module wrapper around :func:`sinusoidal` (no parameters)."""

    def __init__(self, dim: int, max_period: float = 10_000.0):
        super().__init__()
        self.dim = dim
        self.max_period = max_period

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return sinusoidal(t, self.dim, self.max_period)
