"""Settings shared by the experiments that train one conditional DDPM per data set."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional

import torch

from trainlab.config import BaseConfig, check, one_of, positive
from trainlab.data.toy import TOY_DATASETS
from trainlab.device import torch_generator
from trainlab.diffusion.ddpm import ARCHS
from trainlab.diffusion.schedules import SCHEDULES


@dataclass
class ConditionalDDPMConfig(BaseConfig):
    """Data, noise model, schedule and training of a class-conditional DDPM (ddpm-cfg, ddpm-classifier)."""

    datasets: List[str] = field(default_factory=lambda: list(TOY_DATASETS))
    """Toy sets to use (moons, circles, manycircles, blobs, helix)."""
    data_file: Optional[str] = None
    """A .npy (N, ...) array to use instead of the toy sets (needs labels_file)."""
    labels_file: Optional[str] = None
    """A .npy (N,) array of integer labels for data_file."""
    helix_file: Optional[str] = None
    """Raw helix points (.npy, N x 3), e.g. the study's helix.npy; None generates a matching helix."""
    arch: str = "default"
    """Noise model: default (residual MLP) or study (the seed's small MLP)."""
    hidden: int = 64
    """Width of the default model."""
    depth: int = 3
    """Residual blocks of the default model."""
    T: int = 100
    """Diffusion steps."""
    schedule: str = "linear"
    """Noise schedule: linear, cosine or sigmoid."""
    beta_low: float = 1e-3
    """First beta of the linear/sigmoid schedule (the study's 0.001)."""
    beta_high: float = 0.02
    """Last beta of the linear/sigmoid schedule (the study's 0.02)."""
    steps: int = 2000
    """Training steps (batches) of the conditional model."""
    batch_size: int = 512
    """Training batch size."""
    lr: float = 1e-3
    """Adam learning rate (cosine-decayed to 0)."""
    label_dropout: float = 0.1
    """Probability of training a row with the unconditional label."""
    mlp_max_iter: int = 300
    """Iterations of the scikit-learn MLP trained on the real points (the independent classifier)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(bool(self.datasets) or bool(self.data_file), "datasets is empty; e.g. datasets=[moons]")
        for name in self.datasets:
            one_of("datasets", name, TOY_DATASETS)
        one_of("arch", self.arch, ARCHS)
        one_of("schedule", self.schedule, SCHEDULES)
        for name in ("hidden", "depth", "T", "steps", "batch_size", "lr", "mlp_max_iter"):
            positive(name, getattr(self, name))
        check(0 < self.beta_low <= self.beta_high < 1, "need 0 < beta_low <= beta_high < 1")
        check(0 <= self.label_dropout < 1, "label_dropout must be in [0, 1)")

    def fit_model(self, X: Any, y: Any, n_classes: int, device: torch.device):
        """Train the conditional model on (X, y) as configured; returns (model, scheduler, info)."""
        from trainlab.diffusion.guidance import fit_conditional

        model_kwargs = {"hidden": self.hidden, "depth": self.depth} if self.arch == "default" else {}
        return fit_conditional(
            torch.as_tensor(X).to(device), torch.as_tensor(y).to(device), n_classes=n_classes,
            arch=self.arch, T=self.T, schedule=self.schedule, beta_low=self.beta_low, beta_high=self.beta_high,
            steps=self.steps, batch_size=self.batch_size, lr=self.lr, label_dropout=self.label_dropout,
            generator=torch_generator(self.seed), model_kwargs=model_kwargs,
        )
