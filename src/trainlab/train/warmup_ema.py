"""The learning-rate warm-up + cosine decay and the weight EMA that the DDPM trainers share.

Both carry ``state_dict`` / ``load_state_dict``, so a trainer's snapshot holds them like a
model or an optimizer (:mod:`trainlab.train.snapshots`) and a resumed run continues them
bit for bit.
"""

from __future__ import annotations

import math

import torch


def warmup_cosine(optimizer: torch.optim.Optimizer, steps: int, warmup_steps: int = 0,
                  decay: bool = True) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over ``warmup_steps`` (step ``s`` uses ``(s + 1) / warmup_steps`` of the lr),
    then, with ``decay``, cosine decay to 0 at ``steps`` (else constant). Call ``step()`` after
    every optimizer step. Without warm-up this is ``CosineAnnealingLR(T_max=steps)``'s curve."""
    warmup = min(max(warmup_steps, 0), steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if not decay:
            return 1.0
        return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(steps - warmup, 1)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class WeightEMA:
    """An exponential moving average of named tensors (a model's parameters, or a stack's).

    ``update`` after every optimizer step; ``copy_to`` writes the average into the tensors
    (the weights a sampler should use). The decay of update ``n`` is ``min(decay, (1 + n) / (10 + n))``,
    the usual ramp (diffusers' EMA, TensorFlow's ``num_updates``): early on the average
    forgets the random initial weights quickly instead of being held back by them for
    ``1 / (1 - decay)`` steps, which matters in runs of only a few thousand steps.
    """

    def __init__(self, tensors: dict[str, torch.Tensor], decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1) (got {decay})")
        self.decay = decay
        self.updates = 0
        self.shadow = {name: t.detach().clone() for name, t in tensors.items()}

    @torch.no_grad()
    def update(self, tensors: dict[str, torch.Tensor]) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for name, average in self.shadow.items():
            average.lerp_(tensors[name].detach(), 1.0 - decay)

    @torch.no_grad()
    def copy_to(self, tensors: dict[str, torch.Tensor]) -> None:
        for name, average in self.shadow.items():
            tensors[name].copy_(average)

    def state_dict(self) -> dict:
        return {"updates": self.updates, "shadow": dict(self.shadow)}

    @torch.no_grad()
    def load_state_dict(self, state: dict) -> None:
        self.updates = int(state["updates"])
        for name, average in self.shadow.items():
            average.copy_(state["shadow"][name])
