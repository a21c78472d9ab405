"""The one result type of every trainer and the one status vocabulary.

``train.loop.fit``, ``diffusion.ddpm.train_ddpm`` and the NumPy network
(``NeuralNetwork.fit`` leaves it in ``net.result``) report a :class:`TrainResult`;
every member of a stacked model (``train.stack``'s MLP trials, ``diffusion.stacked``'s
noise models) reports a :class:`StackResult`, which adds the stack's share.
Tables and sweeps use the same words: ``done``, ``diverged``, ``failed``.
:func:`training_flops` is the one training-cost estimate the thread and worker plans use.

Pure Python (no torch) so that the NumPy network can use it too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

STATUSES = ("done", "diverged", "failed", "pruned")
"""done: trained to the end; diverged: the training loss became NaN/Inf and training
stopped there; failed: an error ended the run (a sweep records it and goes on); pruned: a
tune gave up on it after some epochs (a member of a stacked trial, ``Run.report_epoch``)."""


class StopTraining(Exception):
    """Raised by an epoch callback to end one model's training there as ``pruned``.

    ``values`` are the numbers the callback measured for that epoch (kept in the history).
    """

    def __init__(self, values: dict[str, float]):
        super().__init__("a tune gave up on this model")
        self.values = values


def combined_status(statuses: Iterable[str]) -> str:
    """One status for several trainings (a table row over seeds): ``done`` only if all are,
    else ``failed`` if one failed, else ``diverged`` if one diverged, else ``pruned``."""
    seen = set(statuses)
    if seen <= {"done"}:
        return "done"
    return next(status for status in ("failed", "diverged", "pruned") if status in seen)


def loss_status(loss: float) -> str:
    """``done`` for a finite loss, ``diverged`` for NaN or +-Inf."""
    return "done" if math.isfinite(loss) else "diverged"


@dataclass
class TrainResult:
    status: str
    """One of :data:`STATUSES`; a trainer returns ``done`` or ``diverged``."""
    seconds: float
    """Wall time of the training loop alone (evaluation between epochs is not counted)."""
    history: list[dict[str, float]]
    """One record per epoch (per optimizer step for ``train_ddpm``): ``epoch`` or ``step``,
    ``train_loss`` and whatever else the trainer measured then; it ends at the first
    non-finite loss."""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status={self.status!r} is not one of {', '.join(STATUSES)}")

    def final_loss(self, last: int = 1) -> float:
        """Mean ``train_loss`` of the last ``last`` records (NaN when there are none)."""
        tail = [r["train_loss"] for r in self.history[-last:]]
        return math.fsum(tail) / len(tail) if tail else float("nan")


@dataclass
class StackResult(TrainResult):
    """The :class:`TrainResult` of one member of a stacked model (MLP trials, noise models).

    ``seconds`` is the member's share of its stack's training time (in proportion to its size).
    """

    stack_seconds: float = 0.0
    """Training time of the whole stack this member was part of."""
    stack_size: int = 1
    """Number of members in that stack (1: trained alone)."""


def training_flops(params: int, samples: int) -> float:
    """FLOPs of training ``params`` parameters on ``samples`` sample-passes: forward and backward
    cost about 6 FLOPs per parameter per sample (2 forward, 4 backward)."""
    return 6.0 * samples * params
