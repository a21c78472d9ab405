"""Targets with a known answer: a Gaussian energy with exact density and exact draws.

:class:`GaussianEnergy` is the probabilistic-PCA Gaussian (Tipping & Bishop 1999) that
scikit-learn's ``PCA`` fits: covariance ``C = V^T diag(lam - s2) V + s2 I`` with the
``k`` principal axes ``V`` (rows), their variances ``lam`` and the noise variance ``s2``
(the mean of the discarded eigenvalues). Its energy is the exact negative
log-density, ``-PCA.score_samples``, computed in O(k d) per point, differentiable in
torch; its draws are exact. An energy-based model trained on it can be checked against
the truth, and a sampler's output against exact samples.
"""

from __future__ import annotations

import math
from typing import Mapping, Optional

import torch

from trainlab.errors import ConfigError


class GaussianEnergy:
    """E(x) = -log N(x; mean, C) with C = V^T diag(variances - s2) V + s2 I (exact, normalised)."""

    def __init__(self, mean: torch.Tensor, components: torch.Tensor, variances: torch.Tensor,
                 noise_variance: float):
        k, d = components.shape
        if mean.shape != (d,) or variances.shape != (k,):
            raise ConfigError(f"mean must be ({d},) and variances ({k},) for components of shape ({k}, {d})")
        if not 0 < noise_variance <= float(variances.min()):
            raise ConfigError(f"need 0 < noise variance ({noise_variance}) <= every principal variance")
        self.mean = mean
        self.components = components
        self.variances = variances
        self.noise_variance = float(noise_variance)
        log_variances = torch.log(variances.detach().cpu().double())  # float64 on the host: MPS has none
        self.log_norm = 0.5 * (float(log_variances.sum()) + (d - k) * math.log(noise_variance)
                               + d * math.log(2 * math.pi))

    @classmethod
    def from_pca(cls, pca, dtype: torch.dtype = torch.float32) -> "GaussianEnergy":
        """From a fitted ``sklearn.decomposition.PCA`` (the model behind its ``score_samples``)."""
        return cls(torch.as_tensor(pca.mean_, dtype=dtype), torch.as_tensor(pca.components_, dtype=dtype),
                   torch.as_tensor(pca.explained_variance_, dtype=dtype), float(pca.noise_variance_))

    @property
    def dim(self) -> int:
        return self.components.shape[1]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Energies ``(n,)`` of points ``(n, d)``: -log p(x)."""
        z = x - self.mean.to(x)
        proj = z @ self.components.to(x).T
        shrink = 1.0 - self.noise_variance / self.variances.to(x)  # (lam - s2) / lam
        quad = ((z * z).sum(1) - (proj * proj * shrink).sum(1)) / self.noise_variance
        return 0.5 * quad + self.log_norm

    def sample(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """``n`` exact draws ``(n, d)``: s2 noise off the principal axes, variances ``lam`` on them."""
        eps = torch.randn(n, self.dim, generator=generator, dtype=self.mean.dtype, device=self.mean.device)
        on_axes = eps @ self.components.T
        scale = self.variances.sqrt() - math.sqrt(self.noise_variance)
        return self.mean + math.sqrt(self.noise_variance) * eps + (on_axes * scale) @ self.components

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors only: save with ``torch.save`` and load with ``weights_only=True``."""
        return {"mean": self.mean, "components": self.components, "variances": self.variances,
                "noise_variance": torch.tensor(self.noise_variance, dtype=torch.float64)}

    @classmethod
    def from_state_dict(cls, state: Mapping[str, torch.Tensor]) -> "GaussianEnergy":
        return cls(state["mean"], state["components"], state["variances"], float(state["noise_variance"]))

    def ula_mean_energy(self, tau: float) -> float:
        """Mean of this energy under ULA's stationary law with step ``tau`` (closed form).

        Along an axis of variance lam, ULA's chain is x' = (1 - tau/lam) x + sqrt(2 tau) xi, whose
        stationary variance is lam / (1 - tau / (2 lam)); so E[E] = log Z + sum_i 1 / (2 - tau / lam_i)
        (d/2 + log Z under the target itself). Infinite when tau >= 2 lam_min (ULA diverges).
        """
        k, d = self.components.shape
        lam = torch.cat([self.variances.detach().cpu().double(),
                         torch.full((d - k,), self.noise_variance, dtype=torch.float64)])
        if tau >= 2 * float(lam.min()):
            return math.inf
        return self.log_norm + float((1.0 / (2.0 - tau / lam)).sum())

    def describe_scales(self, tau: float) -> dict[str, float]:
        """How a Langevin step ``tau`` sits against this target's scales.

        ``tau_over_smallest``: tau / s2 (MALA's acceptance falls off as it grows; ULA is unstable
        past 2); ``relax_steps_largest``: lam_max / tau, the number of steps the overdamped
        Langevin dynamics needs to forget its start along the widest axis.
        """
        return {"smallest_variance": self.noise_variance, "largest_variance": float(self.variances.max()),
                "tau_over_smallest": tau / self.noise_variance,
                "relax_steps_largest": float(self.variances.max()) / tau}
