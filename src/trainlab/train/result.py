"""The one result type of every trainer and the one status vocabulary.

``train.loop.fit``, the stacked trainer (``train.batched``, whose ``TrialResult``
adds the trial's extras), ``diffusion.ddpm.train_ddpm`` and the NumPy network
(``NeuralNetwork.fit`` leaves it in ``net.result``) all report a :class:`TrainResult`.
Tables and sweeps use the same words: ``done``, ``diverged``, ``failed``.

Pure Python (no torch) so that the NumPy network can use it too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

STATUSES = ("done", "diverged", "failed")
"""done: trained to the end; diverged: the training loss became NaN/Inf and training
stopped there; failed: an error ended the run (a sweep records it and goes on)."""


def combined_status(statuses: Iterable[str]) -> str:
    """One status for several trainings (a table row over seeds): ``done`` only if all are,
    else ``failed`` if one failed, else ``diverged``."""
    seen = set(statuses)
    return "done" if seen <= {"done"} else "failed" if "failed" in seen else "diverged"


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
