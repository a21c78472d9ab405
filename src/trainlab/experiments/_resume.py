"""The config key of every experiment that resumes (``trainlab run --resume RUN_DIR``)."""

from __future__ import annotations

from dataclasses import dataclass

from trainlab.config import check

CHECKPOINT_EVERY_S = 300.0


@dataclass
class Checkpointing:
    """Mixin for resumable experiments, listed first (``class Config(Checkpointing, ...)``): its
    ``__post_init__`` then runs the experiment's own checks through ``super()``."""

    checkpoint_every: float = CHECKPOINT_EVERY_S
    """Seconds between snapshots of the training state (taken at the next epoch boundary);
    0 saves at every one. A run stopped or killed continues with trainlab run --resume RUN_DIR."""

    def __post_init__(self) -> None:
        super().__post_init__()  # type: ignore[misc]  # the experiment's own config is next in the MRO
        check(self.checkpoint_every >= 0, f"checkpoint_every must be >= 0 seconds (got {self.checkpoint_every})")
