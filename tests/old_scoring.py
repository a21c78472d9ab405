"""The toy DDPM studies' scoring as it was before the blocked kernel sums: the oracle that
``tests/diffusion/test_metrics_oracle.py`` and ``bench/ddpm_scoring.py`` compare the library with.

The old code took one ``logsumexp`` per bandwidth over whole distance matrices from the
``|q|^2 + |r|^2 - 2 q.r`` expansion. The bandwidth search around it and the EMDs did not
change: the old versions call the library's.
"""

import math
from contextlib import contextmanager
from unittest import mock

import numpy as np
import torch

from trainlab.diffusion import metrics


def _old_sq_dists(queries, refs):
    sq = (queries * queries).sum(1, keepdim=True) + (refs * refs).sum(1) - 2.0 * queries @ refs.T
    return sq.clamp_min_(0.0)


def old_study_nll(real, generated, temperature=0.1, chunk=2048):
    x = torch.as_tensor(real, dtype=torch.float64)
    s = torch.as_tensor(generated, dtype=torch.float64)
    d = x.shape[1]
    parts = [torch.logsumexp((-_old_sq_dists(s[i:i + chunk], x) / (4.0 * temperature)).flatten(), 0)
             for i in range(0, s.shape[0], chunk)]
    log_sum = torch.logsumexp(torch.stack(parts), 0)
    log_mean = log_sum - math.log(s.shape[0] * x.shape[0]) - 0.5 * d * math.log(2 * math.pi * temperature)
    return float(-log_mean)


def old_kde_log_density(refs, queries, bandwidths, chunk=2048):
    r = torch.as_tensor(refs, dtype=torch.float64)
    q = torch.as_tensor(queries, dtype=torch.float64)
    single = np.isscalar(bandwidths)
    hs = torch.tensor([bandwidths] if single else list(bandwidths), dtype=torch.float64)
    d, n = r.shape[1], r.shape[0]
    const = -0.5 * d * torch.log(2 * math.pi * hs**2) - math.log(n)
    rows = max(1, min(chunk, 4_000_000 // n))
    out = []
    for i in range(0, q.shape[0], rows):
        neg_half_sq = (-0.5 * _old_sq_dists(q[i:i + rows], r)).float()
        out.append(torch.stack([torch.logsumexp(neg_half_sq / float(h) ** 2, 1) for h in hs]).double())
    out = [o + const[:, None] for o in out]
    res = torch.cat(out, 1).numpy()
    return res[0] if single else res


@contextmanager
def old_density():
    """``metrics.select_bandwidth`` and ``metrics.kde_nll`` did not change: with the old density
    patched in (one thread at a time, as a test or a bench runs them) they are the old ones."""
    with mock.patch.object(metrics, "kde_log_density", old_kde_log_density):
        yield


def old_select_bandwidth(refs, heldout):
    with old_density():
        return metrics.select_bandwidth(refs, heldout)


def old_kde_nll(model_samples, real_heldout, seed=0):
    """(nll, bandwidth) of the old ``kde_nll``."""
    with old_density():
        result = metrics.kde_nll(model_samples, real_heldout, seed=seed)
    return result.nll, result.bandwidth


def old_sample_quality(generated, heldout, floor, *, emd_k=5, emd_n=800, temperature=0.1, seed=0):
    """``metrics.sample_quality`` with a shared floor, as it was (same keys, same order of work)."""
    nll, h = old_kde_nll(generated, heldout, seed=seed)
    mean, std, _ = metrics.emd_splits(generated, heldout, k=emd_k, n=emd_n, seed=seed)
    ratio, _ = metrics.emd_ratio_to(generated, floor, seed=seed + 1)
    return {"nll": nll, "nll_bandwidth": h, "nll_study": old_study_nll(heldout, generated, temperature=temperature),
            "emd_mean": mean, "emd_std": std, "emd_ratio": ratio, "emd_floor": floor.floor}
