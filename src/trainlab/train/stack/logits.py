"""Logits of many trained one-hidden-layer MLPs on one set, all at once.

Sweeps and the imbalance study end with dozens of small models to score on the same
validation and test images. Concatenating their first layers into one wide matrix
turns that into one GEMM per chunk of images for every model together, instead of
one small forward pass per model.
"""

from __future__ import annotations

from typing import Sequence

import torch

from trainlab.config import check
from trainlab.nn.mlp import ACTIVATIONS, MLP
from trainlab.train.stack.shared_batches import ACTIVATION_FNS

__all__ = ["logits_many"]


@torch.inference_mode()
def logits_many(models: Sequence[MLP], x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """Logits of many equal-width one-hidden-layer MLPs on one set: (models, samples, classes).

    The first layers of all models are one wide matrix, so each chunk of ``x``
    costs one GEMM for every model at once.
    """
    check(len(models) > 0, "logits_many needs at least one model")
    hidden = models[0].fc1.out_features
    check(all(m.fc1.out_features == hidden for m in models), "logits_many needs models of one hidden width")
    w1 = torch.cat([m.fc1.weight for m in models])
    b1 = torch.cat([m.fc1.bias for m in models])
    w2 = torch.stack([m.fc2.weight for m in models])  # (T, C, H)
    b2 = torch.stack([m.fc2.bias for m in models])
    acts = [_activation_name(m) for m in models]
    t = len(models)
    out = torch.empty(t, x.shape[0], w2.shape[1], device=x.device)
    for start in range(0, x.shape[0], batch_size):
        xb = x[start : start + batch_size]
        h = torch.addmm(b1, xb, w1.t()).view(xb.shape[0], t, hidden)
        if len(set(acts)) == 1:
            a = ACTIVATION_FNS[acts[0]](h)
        else:
            a = torch.empty_like(h)
            for name in set(acts):
                which = torch.tensor([i for i, n in enumerate(acts) if n == name], device=x.device)
                a[:, which] = ACTIVATION_FNS[name](h[:, which])
        out[:, start : start + xb.shape[0]] = torch.baddbmm(b2.unsqueeze(1), a.transpose(0, 1), w2.transpose(1, 2))
    return out


def _activation_name(model: MLP) -> str:
    return next(name for name, cls in ACTIVATIONS.items() if type(model.activation) is cls)
