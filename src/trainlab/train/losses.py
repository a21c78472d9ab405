"""Classification losses for imbalanced data, as ``nn.Module``s (the solo reference of stacked training).

- ``nn.CrossEntropyLoss(weight=)``: class weights; a batch's loss is
  ``sum_i w[y_i] * loss_i / sum_i w[y_i]``, torch's convention, which every loss here follows.
- :class:`FocalLoss` (Lin et al. 2017, "Focal Loss for Dense Object Detection"):
  ``-(1 - p_y)^gamma log p_y``; easy, well-classified samples weigh little.
  Its companion :func:`prior_bias` starts the output layer at the class prior.
- :class:`LogitAdjustedLoss` (Menon et al. 2021, "Long-tail learning via logit
  adjustment"): cross-entropy of ``logits + tau * log prior``, and
  :func:`posthoc_adjust`, the same correction applied to a trained model's logits.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from trainlab.errors import ConfigError


def _weighted_mean(losses: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    if weight is None:
        return losses.mean()
    w = weight[y]
    return (w * losses).sum() / w.sum()


class FocalLoss(nn.Module):
    """Softmax focal loss ``-(1 - p_y)^gamma log p_y``, optionally class-weighted; ``gamma=0`` is cross-entropy."""

    def __init__(self, gamma: float = 2.0, weight: torch.Tensor | None = None):
        super().__init__()
        if gamma < 0:
            raise ConfigError(f"focal gamma={gamma} must be >= 0")
        self.gamma = float(gamma)
        self.register_buffer("weight", weight)

    def forward(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(logits, dim=1).gather(1, y[:, None]).squeeze(1)
        losses = -((1.0 - log_p.exp()) ** self.gamma) * log_p
        return _weighted_mean(losses, y, self.weight)


class LogitAdjustedLoss(nn.Module):
    """Cross-entropy of ``logits + tau * log_prior`` (the logit-adjusted loss), optionally class-weighted.

    Training against the prior-shifted logits makes the raw logits estimate a
    balanced classifier: at test time ``argmax logits`` needs no correction.
    """

    def __init__(self, log_prior: torch.Tensor, tau: float = 1.0, weight: torch.Tensor | None = None):
        super().__init__()
        self.register_buffer("offset", tau * log_prior)
        self.register_buffer("weight", weight)

    def forward(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits + self.offset, y, weight=self.weight)


def log_prior(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Log of the class frequencies in ``labels`` (float32, on their device); every class must occur."""
    counts = torch.bincount(labels, minlength=n_classes).float()
    if bool((counts == 0).any()):
        missing = torch.nonzero(counts == 0).flatten().tolist()
        raise ConfigError(f"class(es) {missing} have no training samples, so their prior is 0; keep more samples")
    return (counts / counts.sum()).log()


def prior_bias(prior: Sequence[float]) -> list[float]:
    """Output biases whose softmax is ``prior`` at a zero hidden layer (Lin et al.'s prior initialisation).

    With these biases the untrained model predicts the class frequencies instead
    of a uniform guess, so the first steps of a focal loss are not swamped by the
    loss of the many easy majority samples.
    """
    if any(p <= 0 for p in prior):
        raise ConfigError(f"prior {list(prior)} must be > 0 for every class")
    total = sum(prior)
    return [math.log(p / total) for p in prior]


def posthoc_adjust(logits: torch.Tensor, log_prior: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """Post-hoc logit adjustment: ``logits - tau * log_prior`` (predict with argmax of the result)."""
    return logits - tau * log_prior
