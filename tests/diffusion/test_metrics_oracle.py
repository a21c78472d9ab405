"""The blocked kernel sums against the implementation they replaced (tests/old_scoring.py, the oracle).

The old code took one logsumexp per bandwidth over whole distance matrices; the new one
sums every bandwidth from one cache-sized block (``metrics._log_kernel_sums``). Both run
the KDE's exp in float32, so log densities agree to float32 rounding, the study's score
(float64 both ways) to 1e-12, and the chosen bandwidth exactly.
"""

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from old_scoring import old_kde_log_density, old_sample_quality, old_select_bandwidth, old_study_nll

from trainlab.data.toy import make_toy
from trainlab.diffusion import metrics

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)


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


def test_sample_quality_on_the_toy_sets_equals_the_old_implementation():
    # the recipes' case: samples near the data (a noisy copy of training points), held-out real points
    for name in ("moons", "manycircles", "helix"):
        points = make_toy(name, n=1600, seed=1)[0]
        held, other = points[:800], points[800:]
        noisy = other[:700] + 0.03 * np.random.default_rng(2).normal(size=other[:700].shape).astype(np.float32)
        floor = metrics.emd_floor(held, other, n=300, seed=0)
        got = metrics.sample_quality(noisy, held, other, emd_k=2, emd_n=200, seed=3, floor=floor)
        old = old_sample_quality(noisy, held, floor, emd_k=2, emd_n=200, seed=3)
        assert got.keys() == old.keys() and got["nll_bandwidth"] == old["nll_bandwidth"]
        for key in got:
            assert abs(got[key] - old[key]) <= 1e-6 * max(1.0, abs(old[key])), (name, key)
