"""Classification with a conditional DDPM and no extra training.

Two scores, both computed for every class on the SAME ``n_t`` pairs ``(t, noise)`` per
example (common random numbers: the class comparison is not swamped by the noise draw),
``x_t = sqrt(abar_t) x + sqrt(1 - abar_t) noise``, ``t`` uniform on ``{0..T-1}``:

- ``score="error"`` (Li et al. 2023, "Your diffusion model is secretly a zero-shot
  classifier"; Clark & Jaini 2023): ``e_c = mean_t ||noise - eps(x_t, t, c)||^2``, a
  Monte-Carlo estimate of the class-conditional denoising loss, i.e. of ``-ELBO(x | c)``
  up to weights.  The lowest error wins; ``proba = softmax(-(T/2) e)`` (the unweighted
  ELBO scale; it only sets how peaked the probabilities are).
- ``score="study"`` (the study's): ``D_c = sum_t ||eps(x_t,t,c) - eps(x_t,t,uncond)||^2``,
  the largest wins, ``proba = softmax(D)``.  Since ``eps_c - eps_uncond`` is proportional
  to ``-grad log p(c | x_t)``, this rewards the class whose posterior changes fastest
  around ``x_t``, which is not the same as the most likely class; measure before trusting it.
- ``score="study-min"``: the same ``D_c`` with the smallest winning (``proba = softmax(-D)``):
  for a point deep inside class ``c``, ``p(c | x_t)`` is flat (near 1), so ``eps_c`` stays
  close to ``eps_uncond`` while the wrong classes move it most.

``adaptive=True`` (error score only) evaluates timesteps in rounds and keeps the better
half of each example's remaining classes after every round (Li et al.'s idea of
spending evaluations on plausible classes only).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from trainlab.diffusion.schedules import NoiseScheduler
from trainlab.errors import ConfigError

SCORES = ("error", "study", "study-min")


class DiffusionClassifier:
    """``predict_proba(X)`` / ``predict(X)`` from a conditional noise model (``model.n_classes``
    classes plus the unconditional label).

    ``n_t``: timesteps per example; ``seed``: every call draws the same ``(t, noise)``
    pairs for the same inputs; ``max_rows``: network rows per forward pass;
    ``rounds``: number of elimination rounds when ``adaptive``.
    """

    def __init__(
        self,
        model: nn.Module,
        scheduler: NoiseScheduler,
        n_classes: int | None = None,
        n_t: int = 10,
        score: str = "error",
        adaptive: bool = False,
        *,
        seed: int = 0,
        max_rows: int = 65536,
        rounds: int = 4,
    ):
        n_classes = model.n_classes if n_classes is None else n_classes
        if getattr(model, "n_classes", 0) != n_classes or n_classes < 2:
            raise ConfigError(f"the model must be conditional on n_classes={n_classes} >= 2 classes")
        if score not in SCORES:
            raise ConfigError(f"score={score!r} is not one of {', '.join(SCORES)}")
        if n_t < 1:
            raise ConfigError(f"n_t must be >= 1 (got {n_t})")
        if adaptive and score != "error":
            raise ConfigError("adaptive elimination needs score=error")
        self.model, self.scheduler, self.n_classes = model, scheduler, n_classes
        self.n_t, self.score, self.adaptive = n_t, score, adaptive
        self.seed, self.max_rows, self.rounds = seed, max_rows, max(1, min(rounds, n_t))
        self.evaluations = 0  # network rows evaluated by the last call (cost accounting)

    # -- public API -------------------------------------------------------------------
    def predict_proba(self, X: Any) -> np.ndarray:
        """``(N, n_classes)`` class probabilities (NumPy float64)."""
        logits = self.logits(X)
        return torch.softmax(logits.double(), dim=1).numpy()

    def predict(self, X: Any) -> np.ndarray:
        """``(N,)`` predicted labels (NumPy int64)."""
        return self.logits(X).argmax(dim=1).numpy().astype(np.int64)

    def logits(self, X: Any) -> torch.Tensor:
        """``(N, n_classes)`` unnormalised log-probabilities on the CPU (see the module docstring)."""
        device = next(self.model.parameters()).device
        X = torch.as_tensor(np.asarray(X) if not torch.is_tensor(X) else X, dtype=torch.float32).to(device)
        gen = torch.Generator().manual_seed(self.seed)
        n, d = X.shape
        t = torch.randint(0, self.scheduler.T, (n, self.n_t), generator=gen).to(device)
        noise = torch.randn(n, self.n_t, d, generator=gen).to(device)
        self.evaluations = 0
        self.model.eval()
        with torch.inference_mode():
            if self.score.startswith("study"):
                delta = self._study(X, t, noise).cpu()
                return delta if self.score == "study" else -delta
            if self.adaptive:
                return self._adaptive(X, t, noise).cpu()
            return self._error(X, t, noise, torch.ones(n, self.n_classes, dtype=torch.bool, device=device)).cpu()

    # -- scores -------------------------------------------------------------------------
    def _noisy(self, X: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``(N, k, d)`` noisy copies for timesteps ``t`` ``(N, k)``."""
        n, k = t.shape
        return self.scheduler.add_noise(X[:, None, :].expand(n, k, -1).reshape(n * k, -1), noise.reshape(n * k, -1),
                                        t.reshape(-1)).reshape(n, k, -1)

    def _eps(self, xt: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Network output for flat rows, in chunks of ``max_rows``."""
        self.evaluations += xt.shape[0]
        outs = [self.model(xt[i : i + self.max_rows], t[i : i + self.max_rows], y[i : i + self.max_rows])
                for i in range(0, xt.shape[0], self.max_rows)]
        return torch.cat(outs) if outs else xt.new_zeros(xt.shape)

    def _pair_errors(self, X, t, noise, ex: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
        """Mean squared noise-prediction error over the ``k`` timesteps for each (example, class) pair."""
        k = t.shape[1]
        xt = self._noisy(X, t, noise)  # (N, k, d)
        rows_x = xt[ex].reshape(-1, X.shape[1])  # (P*k, d)
        rows_t = t[ex].reshape(-1)
        rows_y = cls[:, None].expand(-1, k).reshape(-1)
        err = (self._eps(rows_x, rows_t, rows_y) - noise[ex].reshape(-1, X.shape[1])).pow(2).sum(1)
        return err.reshape(-1, k).mean(1)

    def _error(self, X, t, noise, active: torch.Tensor) -> torch.Tensor:
        ex, cls = active.nonzero(as_tuple=True)
        errors = torch.full(active.shape, math.inf, device=X.device)
        errors[ex, cls] = self._pair_errors(X, t, noise, ex, cls)
        return -(self.scheduler.T / 2) * errors

    def _adaptive(self, X, t, noise) -> torch.Tensor:
        n, c = X.shape[0], self.n_classes
        active = torch.ones(n, c, dtype=torch.bool, device=X.device)
        total = torch.zeros(n, c, device=X.device)
        bounds = np.linspace(0, self.n_t, self.rounds + 1).round().astype(int)
        used = 0
        for r in range(self.rounds):
            lo, hi = bounds[r], bounds[r + 1]
            if hi <= lo:
                continue
            ex, cls = active.nonzero(as_tuple=True)
            total[ex, cls] += self._pair_errors(X, t[:, lo:hi], noise[:, lo:hi], ex, cls) * (hi - lo)
            used += hi - lo
            mean = torch.where(active, total / used, torch.full_like(total, math.inf))
            keep = max(1, math.ceil(int(active.sum(1).max()) / 2))
            if r < self.rounds - 1 and keep < c:
                # keep each example's `keep` best classes; ties broken by class index
                cutoff = mean.sort(dim=1).values[:, keep - 1 : keep]
                active &= mean <= cutoff
            if bool((active.sum(1) <= 1).all()):
                break
        mean = torch.where(active, total / max(used, 1), torch.full_like(total, math.inf))
        return -(self.scheduler.T / 2) * mean

    def _study(self, X, t, noise) -> torch.Tensor:
        n, k = t.shape
        c = self.n_classes
        xt = self._noisy(X, t, noise)  # (N, k, d)
        labels = torch.arange(c + 1, device=X.device)  # classes and the unconditional label
        rows_x = xt[:, :, None, :].expand(n, k, c + 1, -1).reshape(-1, X.shape[1])
        rows_t = t[:, :, None].expand(n, k, c + 1).reshape(-1)
        rows_y = labels.expand(n, k, c + 1).reshape(-1)
        eps = self._eps(rows_x, rows_t, rows_y).reshape(n, k, c + 1, -1)
        delta = (eps[:, :, :c] - eps[:, :, c:]).pow(2).sum(-1).sum(1)  # (N, C)
        return delta
