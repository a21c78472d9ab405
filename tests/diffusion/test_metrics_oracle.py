"""The blocked kernel sums against the implementation they replaced (kept here as the oracle).

The old code took one logsumexp per bandwidth over whole distance matrices; the new one
sums every bandwidth from one cache-sized block (``metrics._log_kernel_sums``). Both run
the KDE's exp in float32, so log densities agree to float32 rounding, the study's score
(float64 both ways) to 1e-12, and the chosen bandwidth exactly.
"""

import math

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from trainlab.data.toy import make_toy
from trainlab.diffusion import metrics

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)


# -- the old implementation, verbatim but for names ------------------------------------------


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
    hs = torch.tensor(list(bandwidths), dtype=torch.float64)
    d, n = r.shape[1], r.shape[0]
    const = -0.5 * d * torch.log(2 * math.pi * hs**2) - math.log(n)
    rows = max(1, min(chunk, 4_000_000 // n))
    out = []
    for i in range(0, q.shape[0], rows):
        neg_half_sq = (-0.5 * _old_sq_dists(q[i:i + rows], r)).float()
        out.append(torch.stack([torch.logsumexp(neg_half_sq / float(h) ** 2, 1) for h in hs]).double())
    out = [o + const[:, None] for o in out]
    return torch.cat(out, 1).numpy()


def old_select_bandwidth(refs, heldout, bandwidths=metrics.DEFAULT_BANDWIDTHS, refine=8):
    grid = sorted(float(h) for h in bandwidths)
    curve = old_kde_log_density(refs, heldout, grid).mean(axis=1)
    best = int(np.argmax(curve))
    if refine > 0 and len(grid) > 1:
        lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
        fine = [float(h) for h in np.geomspace(lo, hi, refine + 2)[1:-1]]
        fine_curve = old_kde_log_density(refs, heldout, fine).mean(axis=1)
        grid, curve = grid + fine, np.concatenate([curve, fine_curve])
        best = int(np.argmax(curve))
    return grid[best], float(curve[best])


def old_kde_nll(model_samples, real_heldout, seed=0):
    real = torch.as_tensor(real_heldout, dtype=torch.float64)
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(real.shape[0]))
    half = real.shape[0] // 2
    val, test = real[perm[:half]], real[perm[half:]]
    h, _ = old_select_bandwidth(model_samples, val)
    logp = old_kde_log_density(model_samples, test, [h])[0]
    return float(-logp.mean()), h


# -- random point clouds ---------------------------------------------------------------------


@st.composite
def clouds(draw):
    """(refs, queries): a few hundred points in 1-3 dimensions, at scales from tight clusters to
    spread-out sets, sometimes snapped to a grid (exact duplicates and equal distances)."""
    seed = draw(st.integers(0, 2**32 - 1))
    d = draw(st.integers(1, 3))
    n_refs, n_queries = draw(st.integers(1, 300)), draw(st.integers(4, 200))
    spread = draw(st.sampled_from([0.01, 0.1, 0.5, 1.0, 3.0]))
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-1, 1, size=(draw(st.integers(1, 6)), d))
    refs = centres[rng.integers(len(centres), size=n_refs)] + spread * rng.normal(size=(n_refs, d))
    queries = centres[rng.integers(len(centres), size=n_queries)] + spread * rng.normal(size=(n_queries, d))
    if draw(st.booleans()):
        refs, queries = np.round(refs, 1), np.round(queries, 1)
    dtype = draw(st.sampled_from([np.float32, np.float64]))  # models' samples are float32
    return refs.astype(dtype), queries.astype(dtype)


def _close_to_float32_rounding(new, old):
    # the float32 exp's rounding is relative to the exponent of the nearest term, which the
    # log density carries: 2e-6 of the value (plus 2e-6 absolute near 0) is a few float32 ulps
    np.testing.assert_allclose(new, old, rtol=2e-6, atol=2e-6)


@SETTINGS
@given(clouds())
def test_kde_log_density_equals_the_old_implementation(pair):
    refs, queries = pair
    hs = list(metrics.DEFAULT_BANDWIDTHS)
    _close_to_float32_rounding(metrics.kde_log_density(refs, queries, hs), old_kde_log_density(refs, queries, hs))


@SETTINGS
@given(clouds())
def test_the_chosen_bandwidth_is_the_old_one(pair):
    refs, queries = pair
    h, value = metrics.select_bandwidth(refs, queries)
    old_h, old_value = old_select_bandwidth(refs, queries)
    assert h == old_h
    _close_to_float32_rounding(value, old_value)


@SETTINGS
@given(clouds(), st.sampled_from([0.01, 0.1, 0.5]))
def test_study_nll_equals_the_old_implementation(pair, temperature):
    real, generated = pair
    new, old = metrics.study_nll(real, generated, temperature), old_study_nll(real, generated, temperature)
    assert new == np.float64(old) or abs(new - old) <= 1e-12 * max(1.0, abs(old))


def test_kde_nll_on_the_toy_sets_equals_the_old_implementation():
    # the recipes' case: samples near the data (a noisy copy of training points), held-out real points
    for name in ("moons", "manycircles", "helix"):
        points = make_toy(name, n=1500, seed=1)[0]
        noisy = points[:700] + 0.03 * np.random.default_rng(2).normal(size=points[:700].shape).astype(np.float32)
        got = metrics.kde_nll(noisy, points[700:], seed=3)
        nll, h = old_kde_nll(noisy, points[700:], seed=3)
        assert got.bandwidth == h
        assert abs(got.nll - nll) <= 1e-6 * max(1.0, abs(nll))
