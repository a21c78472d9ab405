"""ESS and R-hat against Gaussian AR(1) chains, whose effective sample sizes are known."""

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal, norm

from trainlab.mcmc.diagnostics import ess_bulk, ess_tail, pca_projections, rhat, summarize


def ar1(phi: float, draws: int, chains: int, seed: int = 0) -> np.ndarray:
    """Stationary AR(1) x_t = phi x_{t-1} + sqrt(1 - phi^2) e_t, unit variance; shape (draws, chains)."""
    rng = np.random.default_rng(seed)
    e = rng.standard_normal((draws, chains))
    x = np.empty_like(e)
    x[0] = e[0]
    for t in range(1, draws):
        x[t] = phi * x[t - 1] + np.sqrt(1 - phi**2) * e[t]
    return x


def quantile_indicator_ess(phi: float, n: int, p: float) -> float:
    """Exact ESS of I(x_t <= q_p) for the AR(1): autocorrelations from bivariate normal orthants."""
    q = norm.ppf(p)
    rho_sum, k = 0.0, 1
    while phi**k > 1e-8:
        r = phi**k
        joint = multivariate_normal(mean=[0, 0], cov=[[1, r], [r, 1]]).cdf([q, q])
        rho_sum += (joint - p * p) / (p * (1 - p))
        k += 1
    return n / (1 + 2 * rho_sum)


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.8])
def test_bulk_ess_of_ar1_is_n_times_1_minus_phi_over_1_plus_phi(phi):
    draws, chains = 4000, 8
    x = ar1(phi, draws, chains, seed=1)
    expected = draws * chains * (1 - phi) / (1 + phi)
    assert ess_bulk(x) == pytest.approx(expected, rel=0.1)


def test_tail_ess_of_ar1_matches_the_quantile_indicators_autocorrelation():
    phi, draws, chains = 0.8, 4000, 8
    x = ar1(phi, draws, chains, seed=2)
    expected = quantile_indicator_ess(phi, draws * chains, 0.05)
    assert expected > draws * chains * (1 - phi) / (1 + phi)  # indicators decorrelate faster than x
    assert ess_tail(x) == pytest.approx(expected, rel=0.15)


def test_rhat_is_one_for_mixed_chains_and_flags_shifted_or_rescaled_ones():
    x = ar1(0.5, 1000, 4, seed=3)
    assert rhat(x) < 1.01
    shifted = x.copy()
    shifted[:, 0] += 2.0
    assert rhat(shifted) > 1.1
    rescaled = x.copy()
    rescaled[:, 0] *= 4.0  # same centre: only the folded (scale) part of R-hat sees it
    assert rhat(rescaled) > 1.05
    drifting = x + np.linspace(0, 3, 1000)[:, None]  # non-stationary: split halves disagree
    assert rhat(drifting) > 1.1


def test_layout_is_draws_then_chains_with_trailing_quantities_and_tensors_accepted():
    x = ar1(0.5, 2000, 4, seed=4)
    stacked = np.stack([x, ar1(0.0, 2000, 4, seed=5)], axis=-1)  # (draws, chains, 2)
    bulk = ess_bulk(stacked)
    assert bulk.shape == (2,) and bulk[0] == pytest.approx(ess_bulk(x))
    assert bulk[1] > 2 * bulk[0]
    assert ess_bulk(torch.from_numpy(x).float()) == pytest.approx(ess_bulk(x), rel=1e-4)
    s = summarize(x)
    assert set(s) == {"ess_bulk", "ess_tail", "rhat"} and all(isinstance(v, float) for v in s.values())
    with pytest.raises(ValueError, match="draws, chains"):
        ess_bulk(np.zeros(10))


def test_pca_projections_use_the_reference_axes():
    rng = np.random.default_rng(6)
    ref = torch.from_numpy(rng.standard_normal((500, 3)) * np.array([5.0, 1.0, 0.1]))
    samples = torch.from_numpy(rng.standard_normal((20, 4, 3)))
    proj = pca_projections(samples, k=2, reference=ref)
    assert proj.shape == (20, 4, 2)
    # the first axis of the reference is the first coordinate: the projection is that coordinate, centred
    first = samples[..., 0].numpy() - ref[:, 0].mean().item()
    assert np.allclose(np.abs(proj[..., 0]), np.abs(first), atol=0.1)
