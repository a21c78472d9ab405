"""Convergence diagnostics: bulk and tail ESS, rank-normalised split R-hat (Vehtari et al. 2021).

The estimators are arviz-stats' (the ArviZ project's NumPy/SciPy core); this module fixes
the conventions trainlab uses and adds the scalar summaries worth diagnosing. Arrays are
laid out like :func:`trainlab.mcmc.langevin.sample`'s output: draws first, then chains,
``(draws, chains)``, optionally with trailing quantities ``(draws, chains, k)``.

- ``ess_bulk``: ESS of the rank-normalised split chains (how well the centre is sampled).
- ``ess_tail``: the smaller ESS of the indicators of the 5% and 95% quantiles.
- ``rhat``: max of the rank-normalised split R-hat and its folded version; values above
  1.01 say the chains have not mixed.

Diagnose scalar summaries (the energy, the first principal components of the samples),
not all pixels: :func:`pca_projections` gives the latter.
"""

from __future__ import annotations

import numpy as np
import torch

from trainlab.errors import ConfigError

TAIL_PROB = (0.05, 0.95)


def _chain_draw(x: np.ndarray | torch.Tensor) -> np.ndarray:
    """``(draws, chains, ...)`` -> arviz-stats' ``(..., chains, draws)`` as float64."""
    a = x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)
    if a.ndim < 2:
        raise ConfigError(f"diagnostics need (draws, chains[, k]) arrays (got shape {a.shape})")
    return np.moveaxis(np.moveaxis(a, 0, -1), 0, -2)


def ess_bulk(x: np.ndarray | torch.Tensor) -> np.ndarray | float:
    """Bulk effective sample size over all chains; one value per trailing quantity."""
    from arviz_stats.base import array_stats

    return _scalar(array_stats.ess(_chain_draw(x), method="bulk"))


def ess_tail(x: np.ndarray | torch.Tensor) -> np.ndarray | float:
    """Tail effective sample size: min of the 5% and 95% quantile ESS."""
    from arviz_stats.base import array_stats

    return _scalar(array_stats.ess(_chain_draw(x), method="tail", prob=TAIL_PROB))


def rhat(x: np.ndarray | torch.Tensor) -> np.ndarray | float:
    """Rank-normalised split R-hat (the max of the bulk and folded versions)."""
    from arviz_stats.base import array_stats

    return _scalar(array_stats.rhat(_chain_draw(x), method="rank"))


def summarize(x: np.ndarray | torch.Tensor) -> dict[str, float]:
    """``ess_bulk``, ``ess_tail`` and ``rhat`` of one scalar quantity ``(draws, chains)``."""
    return {"ess_bulk": float(ess_bulk(x)), "ess_tail": float(ess_tail(x)), "rhat": float(rhat(x))}


def pca_projections(samples: torch.Tensor, k: int = 2, reference: torch.Tensor | None = None) -> np.ndarray:
    """Samples ``(draws, chains, d)`` projected on the first ``k`` principal axes: ``(draws, chains, k)``.

    The axes are those of ``reference`` (``(n, d)``, for example exact draws or the data)
    when given, else of the pooled samples, so every sampler can be diagnosed on the same axes.
    """
    from sklearn.decomposition import PCA

    draws, chains, d = samples.shape
    flat = samples.reshape(-1, d).detach().cpu().double().numpy()
    ref = flat if reference is None else reference.detach().cpu().double().numpy()
    pca = PCA(n_components=k, svd_solver="full").fit(ref)
    return pca.transform(flat).reshape(draws, chains, k)


def _scalar(v: np.ndarray) -> np.ndarray | float:
    v = np.asarray(v, dtype=np.float64)
    return float(v) if v.ndim == 0 else v
