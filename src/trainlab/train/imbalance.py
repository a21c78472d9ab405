"""Strategies against class imbalance for a binary classifier whose rare class is 1.

Trained strategies turn into a :class:`~trainlab.train.stack.TrialData`
(what a trial trains on and how its loss weighs it), so any number of them
train together with ``train_per_trial``:

- ``none``: plain cross-entropy on the imbalanced data (the baseline);
- ``loss_weight``: ``CrossEntropyLoss(weight=[1, w])``;
- ``resample``: every epoch draws ``n`` samples with replacement, a rare one ``w``
  times as likely as a common one (``WeightedRandomSampler``);
- ``focal``: focal loss with the output bias initialised to the class prior (Lin et al. 2017);
- ``logit_adjust``: the logit-adjusted loss, cross-entropy of ``logits + tau log prior`` (Menon et al. 2021).

Post-hoc strategies train nothing: they move the decision threshold of the
baseline's score ``z1 - z0`` (predict 1 where the score exceeds it):

- ``posthoc_adjust``: post-hoc logit adjustment, threshold ``tau (log p1 - log p0)``;
- ``threshold``: the threshold with the best F1 on the validation set.
"""

from __future__ import annotations

import math
import re

import torch

from trainlab.errors import ConfigError
from trainlab.train.losses import prior_bias
from trainlab.train.metrics import best_f1_threshold
from trainlab.train.stack.spec import TrialData

STRATEGIES = ("none", "loss_weight", "resample", "focal", "logit_adjust", "posthoc_adjust", "threshold")
WEIGHTED = ("loss_weight", "resample")
"""Strategies that take a weight factor for the rare class."""
POSTHOC = {"posthoc_adjust": "none", "threshold": "none"}
"""Post-hoc strategies and the trained strategy whose model they adjust."""

_FACTOR = re.compile(r"^\s*(?:(?P<number>[0-9.eE+-]+)|N\s*/\s*(?P<div>[0-9.eE+-]+)|N|(?P<balanced>n0\s*/\s*n1))\s*$")


def weight_factor(expr: str, n: int, counts: tuple[int, int]) -> float:
    """The rare class's weight from one of the study's factor expressions.

    ``"1"`` or any number, ``"N/10"``, ``"N/2"``, ``"N"`` (the sparsity), or
    ``"n0/n1"`` (common over rare training samples: balances the classes exactly).
    """
    match = _FACTOR.match(str(expr))
    if match is None:
        raise ConfigError(f"weight {expr!r} is not a number, N, N/<number> or n0/n1 (e.g. weights=[1,N/10,n0/n1])")
    if match["balanced"] is not None and counts[1] == 0:
        raise ConfigError("n0/n1 needs at least one training sample of the rare class; lower N")
    try:
        if match["number"] is not None:
            value = float(match["number"])
        elif match["div"] is not None:
            value = n / float(match["div"])
        elif match["balanced"] is not None:
            value = counts[0] / counts[1]
        else:
            value = float(n)
    except (ValueError, ZeroDivisionError):
        raise ConfigError(f"weight {expr!r} is not a number, N, N/<number> or n0/n1") from None
    if not value > 0 or not math.isfinite(value):
        raise ConfigError(f"weight {expr!r} gives {value}; weights must be > 0")
    return value


def strategy_data(strategy: str, rows: torch.Tensor, labels: torch.Tensor, factor: float = 1.0, *,
                  gamma: float = 2.0, tau: float = 1.0) -> TrialData:
    """The training set-up of a trained strategy; ``labels`` are the labels of ``rows`` (0 common, 1 rare).

    ``resample``'s sample weights are float64 on the CPU, where the sampler draws from them
    (``torch.multinomial`` of float64 weights, as ``WeightedRandomSampler``): never on the device.
    """
    labels = labels.cpu()  # counted and weighted on the host: the counts are read there anyway
    counts = torch.bincount(labels, minlength=2).tolist()
    if strategy == "none":
        return TrialData(rows)
    if strategy == "loss_weight":
        return TrialData(rows, class_weights=(1.0, float(factor)))
    if strategy == "resample":
        return TrialData(rows, sample_weights=torch.where(labels == 1, float(factor), 1.0).double())
    if strategy == "focal":
        return TrialData(rows, focal_gamma=gamma, output_bias=tuple(prior_bias(counts)))
    if strategy == "logit_adjust":
        return TrialData(rows, logit_offset=tuple(tau * b for b in prior_bias(counts)))
    if strategy in POSTHOC:
        raise ConfigError(f"{strategy} adjusts a trained model's decision; it has no training set-up")
    raise ConfigError(f"strategy={strategy!r} is not one of {', '.join(STRATEGIES)}")


def strategy_grid(strategies: list[str], weights: list[str], n: int, rows: torch.Tensor, labels: torch.Tensor, *,
                  gamma: float = 2.0, tau: float = 1.0) -> list[tuple[str, str, float, TrialData]]:
    """Every trained set-up of ``strategies`` on one training set thinned at sparsity ``n``.

    One ``(strategy, weight, factor, data)`` per trained strategy and, for ``loss_weight`` and
    ``resample``, per weight expression (``weight`` is ``"-"`` for the others); the
    baseline ``none`` is included whenever a post-hoc strategy needs its model.
    """
    counts = tuple(torch.bincount(labels, minlength=2).tolist())
    wanted = set(strategies) | ({"none"} if set(strategies) & set(POSTHOC) else set())
    grid = []
    for strategy in (s for s in STRATEGIES if s in wanted and s not in POSTHOC):
        for expr in (weights if strategy in WEIGHTED else ["-"]):
            factor = weight_factor(expr, n, counts) if strategy in WEIGHTED else 1.0
            grid.append((strategy, expr, factor, strategy_data(strategy, rows, labels, factor, gamma=gamma, tau=tau)))
    return grid


def scores(logits: torch.Tensor) -> torch.Tensor:
    """The binary decision score ``z1 - z0`` of logits (..., 2): argmax is ``score > 0``."""
    return logits[..., 1] - logits[..., 0]


def posthoc_threshold(counts: tuple[int, int], tau: float = 1.0) -> float:
    """Post-hoc logit adjustment as a threshold on ``z1 - z0``: argmax of ``z - tau log prior``."""
    log_p0, log_p1 = prior_bias(counts)
    return tau * (log_p1 - log_p0)


def posthoc_decision(strategy: str, counts: tuple[int, int], val_labels: torch.Tensor, val_scores: torch.Tensor,
                     tau: float = 1.0) -> float:
    """The threshold on ``z1 - z0`` that a post-hoc strategy gives the baseline model.

    ``counts`` are the training samples per class, ``val_scores`` the baseline's
    scores on the validation set (labels ``val_labels``).
    """
    if strategy == "posthoc_adjust":
        return posthoc_threshold(counts, tau)
    if strategy == "threshold":
        return float(best_f1_threshold(val_labels, val_scores.reshape(1, -1))[0])
    raise ConfigError(f"{strategy!r} is not a post-hoc strategy ({', '.join(POSTHOC)})")
