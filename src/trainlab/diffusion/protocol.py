"""The protocol ddpm-steps and ddpm-schedules share: split a toy set, train, sample, score.

Every model is trained on a seeded training split of a toy set and judged against a
disjoint held-out split (normalised Parzen NLL, the study's NLL, exact EMD on disjoint
splits and the EMD ratio to the real-vs-real noise floor).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, List

import numpy as np
import torch

from trainlab.config import BaseConfig, check, one_of, positive
from trainlab.data.toy import TOY_DATASETS, make_toy
from trainlab.device import torch_generator
from trainlab.diffusion.ddpm import ARCHS, make_noise_model, sample, train_ddpm
from trainlab.diffusion.metrics import sample_quality
from trainlab.diffusion.schedules import NoiseScheduler

STUDY_NOTE = """**About the two NLLs.** `nll` is the main number: a Gaussian kernel density
(normalised, so it integrates to 1) is fitted to the generated samples, its bandwidth is
chosen on one half of the held-out real points and `-mean log p(x)` is reported on the
other half, in nats per point; it rises when samples stray *and* when modes are missing.
`nll_study` reproduces the course's `utils.get_nll(data, samples, temperature=0.1)` exactly
so that values can be compared with the seed's Figures 1-5. It is not a negative
log-likelihood: its kernel has variance 2·0.1 but the normalising constant of variance 0.1
(each kernel integrates to 2^(d/2)), it takes `-log` of the *mean* of the likelihoods, and it
is the density of the real data at the generated points, so a model that collapses onto a
dense mode scores well. Its scale depends on the dimension and the temperature; compare it
only within one dataset. The EMD that the study could not afford takes about 0.1 s per
800-point split with POT's exact solver."""


@dataclass
class ToyProtocolConfig(BaseConfig):
    """Data split, noise model, training and scoring settings of the toy-set DDPM studies."""

    datasets: List[str] = field(default_factory=lambda: list(TOY_DATASETS))
    """Toy sets to study: any of moons, circles, manycircles, blobs, helix."""
    arch: str = "default"
    """Noise model: default (residual MLP) or study (the seed's 2-hidden-layer MLP)."""
    hidden: int = 128
    """Width of the default residual MLP (ignored by arch=study)."""
    train_steps: int = 3000
    """Optimizer steps per model."""
    batch_size: int = 512
    """Training batch size."""
    lr: float = 3e-3
    """Adam learning rate (cosine-decayed to 0); at 1e-3 the two rings of circles blur into one."""
    n_points: int = 10000
    """Points drawn from each toy set (training split + held-out split)."""
    heldout: int = 4000
    """Points held out of training for the metrics."""
    n_samples: int = 4000
    """Samples generated per model for the metrics."""
    emd_k: int = 5
    """Disjoint subsample pairs for the EMD mean and std (the study's five splits)."""
    emd_n: int = 800
    """Points per EMD subsample."""
    ratio_n: int = 2000
    """Points per set for the EMD ratio (generated vs held-out over training vs held-out)."""
    clip_x0: bool = True
    """Clip the predicted clean point to [-1, 1] while sampling (needed by cosine; no effect on the study's betas)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(len(self.datasets) > 0, "datasets must name at least one toy set, e.g. datasets=[moons]")
        for name in self.datasets:
            one_of("datasets", name, TOY_DATASETS)
        one_of("arch", self.arch, ARCHS)
        for name in ("hidden", "train_steps", "batch_size", "lr", "emd_k", "emd_n", "ratio_n"):
            positive(name, getattr(self, name))
        check(0 < self.heldout < self.n_points, "heldout must be between 0 and n_points")
        check(self.emd_k * self.emd_n <= min(self.heldout, self.n_samples),
              "emd_k * emd_n must be <= heldout and n_samples; lower emd_n")
        check(self.ratio_n <= min(self.heldout, self.n_points - self.heldout, self.n_samples),
              "ratio_n must be <= heldout, the training split and n_samples; lower ratio_n")


def split_toy(name: str, n_points: int, heldout: int, seed: int, device: torch.device):
    """(train, heldout) device tensors: the toy set (the study's seed 42) split by a seeded permutation."""
    X, _ = make_toy(name, n=n_points)
    perm = np.random.default_rng(seed).permutation(len(X))
    X = torch.from_numpy(X[perm]).to(device)
    return X[heldout:], X[:heldout]


def fit_and_score(cfg: Any, scheduler: NoiseScheduler, train: torch.Tensor, held: torch.Tensor,
                  seed: int, eps_fn=None) -> tuple[dict[str, Any], np.ndarray]:
    """Train one noise model on ``train``, sample ``cfg.n_samples`` points, score them.

    Returns (row of metrics and timings, samples as a NumPy array in the data's scale).
    """
    kwargs = {"hidden": cfg.hidden} if cfg.arch == "default" else {}
    torch.manual_seed(seed)  # module initialisers draw from the global generator
    model = make_noise_model(cfg.arch, train.shape[1], scheduler.T, **kwargs).to(train.device)
    gen = torch_generator(seed)
    fit = train_ddpm(model, scheduler, train, steps=cfg.train_steps, batch_size=cfg.batch_size,
                     lr=cfg.lr, generator=gen)
    start = time.perf_counter()
    samples = sample(model, scheduler, cfg.n_samples, generator=gen,
                     eps_fn=None if eps_fn is None else eps_fn(model))
    samples = samples.cpu().numpy()
    sample_s = time.perf_counter() - start
    scores = sample_quality(samples, held.cpu(), train.cpu(), emd_k=cfg.emd_k, emd_n=cfg.emd_n,
                            ratio_n=cfg.ratio_n, seed=seed)
    status = fit.status if np.isfinite(samples).all() else "diverged"
    row = {**scores, "train_time_s": fit.seconds, "sample_time_s": sample_s,
           "final_loss": fit.final_loss(100), "status": status}
    return row, samples


def clipped_x0(scheduler: NoiseScheduler) -> Callable[[torch.nn.Module], Callable]:
    """An ``eps_fn`` factory for :func:`trainlab.diffusion.ddpm.sample` that clips the implied x0.

    eps is turned into x0 = (x - b eps) / a (a = sqrt(abar_t), b = sqrt(1 - abar_t)), x0 is
    clipped to [-1, 1], and the eps consistent with the clipped x0 is returned, so the
    ordinary DDPM step then uses the clipped x0.
    """
    a_all, b_all = scheduler.sqrt_alphas_cumprod, scheduler.sqrt_one_minus_alphas_cumprod

    def factory(model: torch.nn.Module) -> Callable:
        a_dev, b_dev = a_all.to(next(model.parameters()).device), b_all.to(next(model.parameters()).device)

        def eps_fn(x: torch.Tensor, t: torch.Tensor, y: Any = None) -> torch.Tensor:
            eps = model(x, t, y)
            a, b = a_dev[t][:, None], b_dev[t][:, None]
            x0 = ((x - b * eps) / a).clamp(-1.0, 1.0)
            return (x - a * x0) / b

        return eps_fn

    return factory
