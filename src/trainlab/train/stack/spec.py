"""What a stacked trial is: its settings, its data, its solo model and loss, its result.

A :class:`TrialSpec` fixes a one-hidden-layer ``MLP`` and how it is trained; a
:class:`TrialData` (optional) gives it its own rows of a shared pool, sampler and
loss. :func:`init_trial` and :func:`trial_loss` build what the trial would be alone
(``nn.Module`` + loss module), which both the stacks and the solo reference
(``trainlab.train.stack.train_alone``, ``loop.fit``) start from.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import nn

from trainlab.config import check, one_of, positive
from trainlab.device import global_seed
from trainlab.nn.activations import ACTIVATION_NAMES
from trainlab.nn.mlp import MLP
from trainlab.train.loop import OPTIMIZERS, check_lr
from trainlab.train.losses import FocalLoss, LogitAdjustedLoss
from trainlab.train.result import StackResult



@dataclass(frozen=True)
class TrialSpec:
    """One trial: an ``MLP(in_dim, hidden, n_classes, activation)`` and how to train it."""

    hidden: int
    """Width of the single hidden layer."""
    activation: str = "relu"
    """sigmoid, relu, tanh or identity."""
    optimizer: str = "adam"
    """adam (betas 0.9, 0.999, eps 1e-8, as torch.optim.Adam) or sgd (plain)."""
    lr: float = 1e-3
    """Learning rate."""
    batch_size: int = 64
    """Minibatch size; trials only share a stack with trials of the same batch size and seed."""
    seed: int = 0
    """Seeds the initial weights (torch.manual_seed before building the MLP) and the batch order."""

    def __post_init__(self) -> None:
        positive("hidden", self.hidden)
        one_of("activation", self.activation, ACTIVATION_NAMES)
        one_of("optimizer", self.optimizer, OPTIMIZERS)
        check_lr(self.optimizer, self.lr)
        positive("batch_size", self.batch_size)
        check(self.seed >= 0, "seed must be >= 0")


@dataclass(frozen=True, eq=False)
class TrialData:
    """What one trial trains on and how its loss weighs it."""

    rows: torch.Tensor
    """(n,) int64 indices into the pool (x, y): this trial's training set."""
    sample_weights: torch.Tensor | None = None
    """(n,) sampling weights: every epoch draws n rows with replacement in proportion to them
    (``WeightedRandomSampler(weights, n, replacement=True)``); None: a fresh permutation per epoch."""
    class_weights: tuple[float, ...] | None = None
    """Loss weight per class (``CrossEntropyLoss(weight=)``); None: all 1."""
    focal_gamma: float = 0.0
    """Focal loss exponent; 0 is plain (weighted) cross-entropy."""
    logit_offset: tuple[float, ...] | None = None
    """Added to the logits inside the loss only (the logit-adjusted loss: tau * log prior)."""
    output_bias: tuple[float, ...] | None = None
    """Initial output-layer bias instead of ``nn.Linear``'s (the focal loss's prior initialisation)."""

    def __post_init__(self) -> None:
        check(self.rows.ndim == 1 and self.rows.numel() > 0, "a trial needs a non-empty 1-D tensor of rows")
        if self.sample_weights is not None:
            check(self.sample_weights.shape == self.rows.shape, "sample_weights needs one weight per row")
            check(bool((self.sample_weights >= 0).all()) and 0 < float(self.sample_weights.sum()) < math.inf,
                  "sample_weights must be finite and >= 0 with a positive sum")
        if self.class_weights is not None:
            positive("class_weights", list(self.class_weights))
        check(self.focal_gamma >= 0, f"focal_gamma must be >= 0 (got {self.focal_gamma})")
        check(self.focal_gamma == 0 or self.logit_offset is None,
              "a trial takes either a focal loss or a logit offset, not both")

    def key(self) -> tuple:
        """Identifies the batches this data draws (rows and sampler), for grouping trials that share them."""
        return (_digest(self.rows), None if self.sample_weights is None else _digest(self.sample_weights))


def _digest(t: torch.Tensor) -> str:
    return hashlib.blake2b(t.detach().cpu().contiguous().numpy().tobytes(), digest_size=16).hexdigest()


def init_solo(spec: TrialSpec, in_dim: int, n_classes: int) -> MLP:
    """The MLP the one-at-a-time path starts from: ``torch.manual_seed(seed)`` then ``MLP(...)``.

    The global generator is restored afterwards, so building a stack draws nothing from it,
    and stacks built at once on worker threads do not interleave their draws.
    """
    with global_seed(spec.seed):
        return MLP(in_dim, spec.hidden, n_classes, spec.activation)


def init_trial(spec: TrialSpec, data: TrialData | None, in_dim: int, n_classes: int) -> MLP:
    """``init_solo(spec)`` with the trial's initial output bias, if its data sets one."""
    model = init_solo(spec, in_dim, n_classes)
    if data is not None and data.output_bias is not None:
        check(len(data.output_bias) == n_classes, f"output_bias needs {n_classes} values")
        with torch.no_grad():
            model.fc2.bias.copy_(torch.tensor(data.output_bias))
    return model


def trial_loss(data: TrialData | None, device: torch.device | str = "cpu") -> nn.Module:
    """The ``nn.Module`` loss of a trial: cross-entropy, focal or logit-adjusted, class-weighted or not."""
    if data is None:
        return nn.CrossEntropyLoss()
    weight = None if data.class_weights is None else torch.tensor(data.class_weights, device=device)
    if data.focal_gamma > 0:
        return FocalLoss(data.focal_gamma, weight)
    if data.logit_offset is not None:
        return LogitAdjustedLoss(torch.tensor(data.logit_offset, device=device), 1.0, weight)
    return nn.CrossEntropyLoss(weight=weight)


@dataclass(kw_only=True)  # keyword-only: its required fields follow the base's defaults
class TrialResult(StackResult):
    """A :class:`~trainlab.train.result.StackResult` (status, seconds, history, the stack's
    share) plus what a trained MLP trial adds.

    ``history`` holds epoch, train_loss and <name>_acc when evaluated every epoch.
    """

    spec: TrialSpec
    """The trial's settings."""
    model: MLP
    """The trained weights as a plain MLP on the data's device."""
    metrics: dict[str, float] = field(default_factory=dict)
    """<name>_acc (percent) for every evaluation set after training."""


def trial_flops(specs: Sequence[TrialSpec], in_dim: int, n_classes: int, samples: int) -> float:
    """FLOPs that training ``specs`` for ``samples`` sample-passes needs at least.

    Per sample and trial: forward 2 (in*h + h*c), weight gradients 2 (in*h + h*c),
    and the gradient into the hidden layer 2 h*c (none into the input);
    biases and activations are ignored (finer than ``result.training_flops``'s 6 per parameter).
    """
    per_sample = sum(4 * (in_dim * s.hidden + s.hidden * n_classes) + 2 * s.hidden * n_classes for s in specs)
    return float(per_sample) * samples
