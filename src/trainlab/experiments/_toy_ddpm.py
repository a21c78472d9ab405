"""Plumbing the four toy-set DDPM recipes share: their configs, data and report prose.

``ddpm-steps`` and ``ddpm-schedules`` train unconditional models on a seeded training split
and score them against a disjoint held-out split (:mod:`trainlab.diffusion.protocol`; their
config inherits its :class:`~trainlab.diffusion.protocol.Protocol`); ``ddpm-cfg`` and
``ddpm-classifier`` train one class-conditional model per data set
(:mod:`trainlab.diffusion.conditional`; their config inherits its ``ConditionalSettings``) and
compare it with an ordinary classifier. Every recipe
accepts the user's own points (``data_file=``) in place of the toy sets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import numpy as np

from trainlab.config import BaseConfig, check, one_of, positive
from trainlab.data.toy import TOY_DATASETS, labelled_sets, load_array, make_toy
from trainlab.diffusion.conditional import ConditionalSettings
from trainlab.diffusion.ddpm import ARCHS
from trainlab.diffusion.protocol import Protocol
from trainlab.diffusion.schedules import SCHEDULES
from trainlab.train.loop import check_lr


STUDY_NOTE = """**About the two NLLs.** `nll` is the main number: a Gaussian kernel density
(normalised, so it integrates to 1) is fitted to the generated samples, its bandwidth is
chosen on one half of the held-out real points and `-mean log p(x)` is reported on the
other half, in nats per point; it rises when samples stray *and* when modes are missing.
`nll_study` reproduces the course's `utils.get_nll(data, samples, temperature=0.1)` exactly
so that values can be compared with the Diffusion study's Figures 1-5. It is not a negative
log-likelihood: its kernel has variance 2·0.1 but the normalising constant of variance 0.1
(each kernel integrates to 2^(d/2)), it takes `-log` of the *mean* of the likelihoods, and it
is the density of the real data at the generated points, so a model that collapses onto a
dense mode scores well. Its scale depends on the dimension and the temperature; compare it
only within one dataset."""


@dataclass
class ToySetsConfig(BaseConfig):
    """Which points the models learn: toy sets by name, or the user's own file."""

    datasets: List[str] = field(default_factory=lambda: list(TOY_DATASETS))
    """Toy sets to study: any of moons, circles, manycircles, blobs, helix."""
    data_file: Optional[str] = None
    """A .npy (N, ...) array of the user's own points, used instead of the toy sets (scaled to [-1, 1])."""
    helix_file: Optional[str] = None
    """Raw helix points (.npy, N x 3), e.g. the study's helix.npy; None generates a matching helix."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(bool(self.datasets) or bool(self.data_file), "datasets is empty; e.g. datasets=[moons]")
        for name in self.datasets:
            one_of("datasets", name, TOY_DATASETS)


@dataclass
class ToyProtocolConfig(ToySetsConfig, Protocol):
    """Data split, noise model, training and scoring settings of the unconditional toy-set studies
    (the noise model, training and scoring fields are :class:`~trainlab.diffusion.protocol.Protocol`'s)."""

    n_points: int = 10000
    """Points drawn from each toy set (training split + held-out split); a data_file uses all its points."""
    heldout: int = 4000
    """Points held out of training for the metrics."""
    stacked: bool = True
    """Train and sample the models as stacks, one single-threaded worker per core; false trains them one at
    a time (the reference: the same tables up to float rounding, several times slower)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        one_of("arch", self.arch, ARCHS)
        for name in ("hidden", "train_steps", "batch_size", "emd_k", "emd_n", "ratio_n"):
            positive(name, getattr(self, name))
        check_lr("adam", self.lr)
        check_recipe(self.warmup_steps, self.ema_decay)
        check(0 < self.heldout < self.n_points, "heldout must be between 0 and n_points")
        check(self.emd_k * self.emd_n <= min(self.heldout, self.n_samples),
              "emd_k * emd_n must be <= heldout and n_samples; lower emd_n")
        check(self.ratio_n <= min(self.heldout, self.n_points - self.heldout, self.n_samples),
              "ratio_n must be <= heldout, the training split and n_samples; lower ratio_n")


def check_recipe(warmup_steps: int, ema_decay: float) -> None:
    """Refuse a warm-up or EMA decay the trainers cannot use."""
    check(warmup_steps >= 0, f"warmup_steps must be >= 0 (got {warmup_steps})")
    check(0 <= ema_decay < 1, f"ema_decay must be in [0, 1); 0 turns the EMA off (got {ema_decay})")


def point_sets(cfg: ToyProtocolConfig) -> list[tuple[str, np.ndarray]]:
    """``[(name, points), ...]``: the user's ``data_file`` (named after the file) or each toy set."""
    if cfg.data_file:
        X, _ = load_array(cfg.data_file)
        need = cfg.heldout + cfg.ratio_n
        check(len(X) >= need, f"data_file has {len(X)} points; heldout + ratio_n needs {need}: lower them")
        return [(Path(cfg.data_file).stem, X)]
    return [(name, make_toy(name, n=cfg.n_points, helix_file=cfg.helix_file if name == "helix" else None)[0])
            for name in cfg.datasets]




@dataclass
class ConditionalDDPMConfig(ToySetsConfig, ConditionalSettings):
    """Data, noise model, schedule and training of a class-conditional DDPM (ddpm-cfg, ddpm-classifier;
    the model, schedule and training fields are :class:`~trainlab.diffusion.conditional.ConditionalSettings`')."""

    labels_file: Optional[str] = None
    """A .npy (N,) array of integer labels for data_file."""
    mlp_max_iter: int = 300
    """Iterations of the scikit-learn MLP trained on the real points (the independent classifier)."""
    stacked: bool = True
    """Train the models of data sets with the same dimension and number of classes as stacks, on every
    core; false trains them one at a time (the reference: the same tables up to float rounding)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        one_of("arch", self.arch, ARCHS)
        one_of("schedule", self.schedule, SCHEDULES)
        for name in ("hidden", "depth", "T", "train_steps", "batch_size", "mlp_max_iter"):
            positive(name, getattr(self, name))
        check_lr("adam", self.lr)
        check_recipe(self.warmup_steps, self.ema_decay)
        check(0 < self.beta_low <= self.beta_high < 1, "need 0 < beta_low <= beta_high < 1")
        check(0 <= self.label_dropout < 1, "label_dropout must be in [0, 1)")


def labelled_point_sets(cfg: ConditionalDDPMConfig) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``[(name, X, y), ...]``: the user's ``data_file`` + ``labels_file``, or each toy set."""
    return labelled_sets(cfg.datasets, cfg.data_file, cfg.labels_file, helix_file=cfg.helix_file)


