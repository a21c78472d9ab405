"""Metrics against closed forms: translations for W1, Gaussians for sliced W2 and KDE, a slow loop for the study NLL."""

import math

import numpy as np
import pytest
import torch

from trainlab.diffusion import metrics
from trainlab.errors import DataError


def test_emd_of_identical_sets_is_zero():
    x = np.random.default_rng(0).normal(size=(300, 2))
    assert metrics.emd(x, x) == pytest.approx(0.0, abs=1e-9)
    # order must not matter: a permuted copy is the same distribution
    assert metrics.emd(x, x[::-1].copy()) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("shift", [np.array([0.7]), np.array([0.3, -0.4]), np.array([1.0, 2.0, -2.0])])
def test_emd_of_translated_set_equals_shift_norm(shift):
    # W1 with Euclidean cost between a cloud and its translate is exactly ||shift||:
    # the identity coupling costs that much, and ||E[x - y]|| <= E||x - y|| bounds every coupling below.
    x = np.random.default_rng(1).normal(size=(250, len(shift)))
    assert metrics.emd(x, x + shift) == pytest.approx(float(np.linalg.norm(shift)), rel=1e-6)


def test_emd_one_dimensional_matches_sorted_matching():
    # in 1-D the optimal coupling matches order statistics
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=400), rng.exponential(size=400)
    expected = np.abs(np.sort(a) - np.sort(b)).mean()
    assert metrics.emd(a, b) == pytest.approx(expected, rel=1e-6)


def test_emd_splits_are_disjoint_and_seeded():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(1000, 2)), rng.normal(size=(1000, 2)) + np.array([2.0, 0.0])
    mean, std, values = metrics.emd_splits(a, b, k=5, n=200, seed=7)
    assert len(values) == 5 and std > 0
    assert mean == pytest.approx(2.0, abs=0.25)  # shift dominates the sampling noise
    assert metrics.emd_splits(a, b, k=5, n=200, seed=7)[2] == values
    with pytest.raises(DataError):
        metrics.emd_splits(a, b, k=6, n=200)


def test_sliced_wasserstein_matches_closed_form_for_gaussians():
    # For N(m1, s1^2 I) and N(m2, s2^2 I) in d dims every 1-D projection is a pair of 1-D
    # Gaussians, so SW2^2 = E_theta[(theta . dm)^2] + (s1 - s2)^2 = ||dm||^2 / d + (s1 - s2)^2.
    rng = np.random.default_rng(5)
    d, n = 2, 6000
    dm, s1, s2 = np.array([1.0, -0.5]), 1.0, 1.5
    a = rng.normal(size=(n, d)) * s1
    b = rng.normal(size=(n, d)) * s2 + dm
    expected = math.sqrt(dm @ dm / d + (s1 - s2) ** 2)
    got = metrics.sliced_wasserstein(a, b, n_projections=200, seed=0)
    assert got == pytest.approx(expected, rel=0.06)
    # and in 1-D sliced W2 is W2 itself: sqrt(dm^2 + (s1 - s2)^2)
    a1, b1 = a[:, 0:1], b[:, 0:1]
    assert metrics.sliced_wasserstein(a1, b1, n_projections=10) == pytest.approx(
        math.sqrt(1.0 + 0.25), rel=0.03)


def test_kde_log_density_is_normalised():
    # integrate the KDE over a fine 2-D grid: a normalised density integrates to 1
    refs = np.random.default_rng(6).uniform(-0.5, 0.5, size=(50, 2))
    g = np.linspace(-2, 2, 201)
    xx, yy = np.meshgrid(g, g)
    grid = np.stack([xx.ravel(), yy.ravel()], 1)
    for h in (0.1, 0.3):
        dens = np.exp(metrics.kde_log_density(refs, grid, h))
        assert dens.sum() * (g[1] - g[0]) ** 2 == pytest.approx(1.0, abs=2e-3)


def test_kde_log_density_matches_torch_distributions():
    rng = np.random.default_rng(7)
    refs, q, h = rng.normal(size=(30, 3)), rng.normal(size=(5, 3)), 0.4
    mix = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(torch.ones(30, dtype=torch.float64)),
        torch.distributions.Independent(torch.distributions.Normal(torch.tensor(refs), h), 1),
    )
    expected = mix.log_prob(torch.tensor(q)).numpy()
    np.testing.assert_allclose(metrics.kde_log_density(refs, q, h), expected, rtol=1e-5)


def test_kde_nll_of_gaussian_sample_approaches_entropy():
    # with enough samples and a held-out bandwidth, -mean log p(x) -> differential entropy
    # of N(0, I_2) = (d / 2) (1 + log 2 pi) = 2.8379 nats (KDE bias at h~0.3 is ~+0.005)
    rng = np.random.default_rng(8)
    model, real = rng.normal(size=(2500, 2)), rng.normal(size=(2000, 2))
    res = metrics.kde_nll(model, real, seed=0)
    entropy = 0.5 * 2 * (1 + math.log(2 * math.pi))
    assert res.nll == pytest.approx(entropy, abs=max(0.06, 3 * res.nll_std_err))
    assert 0.1 < res.bandwidth < 0.6  # Silverman's rule gives ~0.28 here
    # a model that misses half the data must score clearly worse (the held-out bandwidth
    # widens to cover the empty half, so the penalty is ~0.3 nats, about 15 standard errors)
    half = model[model[:, 0] > 0]
    assert metrics.kde_nll(half, real, seed=0).nll > res.nll + 0.2


def _study_nll_slow(data, samples, temperature=0.1):
    # the course's utils.get_nll written out as loops in plain floats
    d = len(data[0])
    coeff = 1.0 / math.sqrt(2 * math.pi * temperature) ** d
    total = 0.0
    for s in samples:
        acc = 0.0
        for x in data:
            exp_term = sum(-0.5 * (si - xi) ** 2 for si, xi in zip(s, x, strict=True))
            acc += coeff * math.exp(exp_term / (2 * temperature))
        total += acc / len(data)
    return -math.log(total / len(samples))


@pytest.mark.parametrize("d,temperature", [(2, 0.1), (3, 0.1), (2, 0.5)])
def test_study_nll_matches_direct_loop(d, temperature):
    rng = np.random.default_rng(9 + d)
    data, samples = rng.uniform(-1, 1, size=(17, d)), rng.uniform(-1, 1, size=(11, d))
    expected = _study_nll_slow(data.tolist(), samples.tolist(), temperature)
    got = metrics.study_nll(data, samples, temperature=temperature, chunk=4)
    assert got == pytest.approx(expected, rel=1e-9)


def test_study_nll_stays_finite_where_direct_formula_underflows():
    data = np.zeros((5, 2))
    far = np.full((3, 2), 40.0)  # exp(-8000) underflows to 0 in float64
    value = metrics.study_nll(data, far)
    expected = 2 * 40.0**2 / (4 * 0.1) - math.log(1 / (2 * math.pi * 0.1))
    assert value == pytest.approx(expected, rel=1e-9)


def test_emd_ratio_near_one_for_real_vs_real_and_large_for_bad_model():
    rng = np.random.default_rng(10)
    real = rng.normal(size=(1500, 2))
    ratio, _, floor = metrics.emd_ratio(rng.normal(size=(500, 2)), real[:500], real[500:1000], n=500)
    assert floor > 0 and 0.6 < ratio < 1.6
    bad, _, _ = metrics.emd_ratio(rng.normal(size=(500, 2)) + 1.0, real[:500], real[500:1000], n=500)
    assert bad > 3


def test_a_shared_emd_floor_scores_models_of_one_data_set_against_one_denominator():
    rng = np.random.default_rng(12)
    real = rng.normal(size=(1500, 2))
    floor = metrics.emd_floor(real[:500], real[500:1000], n=500, seed=3)
    perfect, shifted = rng.normal(size=(500, 2)), rng.normal(size=(500, 2)) + 1.0
    (r_perfect, e_perfect), (r_shifted, e_shifted) = (metrics.emd_ratio_to(g, floor) for g in (perfect, shifted))
    # one denominator: the ratios of two models are the ratio of their EMDs to the same held-out subsets
    assert r_perfect / r_shifted == pytest.approx(e_perfect / e_shifted, rel=1e-12)
    assert 0.6 < r_perfect < 1.6 and r_shifted > 3
    # the floor is what emd_ratio divides by when drawn with the same seed
    assert metrics.emd_ratio(perfect, real[:500], real[500:1000], n=500, seed=3)[2] == pytest.approx(floor.floor)
    with pytest.raises(DataError, match="500 points"):
        metrics.emd_ratio_to(perfect[:100], floor)


def test_bad_inputs_raise_data_error():
    with pytest.raises(DataError):
        metrics.emd(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(DataError):
        metrics.study_nll(np.zeros((3, 2)), np.full((3, 2), np.nan))


def test_sample_quality_scores_a_perfect_sampler_at_the_floor_and_nan_for_diverged():
    rng = np.random.default_rng(11)
    real, other, perfect = rng.normal(size=(600, 2)), rng.normal(size=(600, 2)), rng.normal(size=(600, 2))
    q = metrics.sample_quality(perfect, real, other, emd_k=2, emd_n=200, ratio_n=300, seed=0)
    assert set(q) == {"nll", "nll_bandwidth", "nll_study", "emd_mean", "emd_std", "emd_ratio", "emd_floor"}
    assert 0.7 < q["emd_ratio"] < 1.4
    assert q["nll"] == pytest.approx(0.5 * 2 * (1 + math.log(2 * math.pi)), abs=0.15)
    bad = perfect.copy()
    bad[3, 0] = np.nan
    assert all(math.isnan(v) for v in metrics.sample_quality(bad, real, other, emd_k=2, emd_n=200,
                                                             ratio_n=300).values())
