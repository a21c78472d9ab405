"""The PPCA Gaussian energy is scikit-learn's exact negative log-density, its draws exact."""

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from trainlab.mcmc.langevin import sample
from trainlab.mcmc.targets import GaussianEnergy


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((600, 12)) @ rng.standard_normal((12, 12)) + rng.standard_normal(12)
    return x, PCA(n_components=3).fit(x)


def test_energy_is_minus_score_samples(fitted):
    x, pca = fitted
    target = GaussianEnergy.from_pca(pca, dtype=torch.float64)
    assert np.allclose(target(torch.from_numpy(x)).numpy(), -pca.score_samples(x), rtol=1e-10)
    assert np.allclose(target(torch.from_numpy(x).float()).numpy(), -pca.score_samples(x), rtol=1e-5)
    grad = torch.autograd.functional.jacobian(lambda z: target(z[None])[0], torch.from_numpy(x[0]))
    assert np.allclose(grad.numpy(), np.linalg.solve(pca.get_covariance(), x[0] - pca.mean_))


def test_exact_draws_have_the_pca_covariance(fitted):
    _, pca = fitted
    target = GaussianEnergy.from_pca(pca, dtype=torch.float64)
    draws = target.sample(100_000, generator=torch.Generator().manual_seed(1)).numpy()
    cov = pca.get_covariance()
    assert np.allclose(draws.mean(0), pca.mean_, atol=0.05 * np.sqrt(cov.diagonal().max()))
    assert np.abs(np.cov(draws.T) - cov).max() < 0.02 * np.abs(cov).max()


def test_state_dict_round_trip_and_scales(fitted, tmp_path):
    _, pca = fitted
    target = GaussianEnergy.from_pca(pca)
    torch.save(target.state_dict(), tmp_path / "t.pt")
    back = GaussianEnergy.from_state_dict(torch.load(tmp_path / "t.pt", weights_only=True))
    x = torch.randn(5, 12)
    assert torch.allclose(back(x), target(x))
    scales = target.describe_scales(0.01)
    assert scales["smallest_variance"] == pytest.approx(pca.noise_variance_)
    assert scales["relax_steps_largest"] == pytest.approx(pca.explained_variance_[0] / 0.01, rel=1e-6)


def test_mala_on_the_target_matches_exact_draws(fitted):
    _, pca = fitted
    target = GaussianEnergy.from_pca(pca, dtype=torch.float64)
    gen = torch.Generator().manual_seed(2)
    x0 = target.sample(300, generator=gen)
    tau = 0.3 * target.noise_variance
    res = sample(target, x0, tau=tau, burn_in=50, n_samples=200, thin=2, generator=gen)
    draws = res.samples.reshape(-1, 12)
    # E = chi2_12 / 2 + log Z under the target: mean d/2 + log Z, the closed form
    assert float(target(draws).mean()) == pytest.approx(12 / 2 + target.log_norm, abs=0.15)
    assert float(target(target.sample(60_000, generator=gen)).mean()) == pytest.approx(6 + target.log_norm, abs=0.05)


def test_ula_mean_energy_is_its_closed_form(fitted):
    _, pca = fitted
    target = GaussianEnergy.from_pca(pca, dtype=torch.float64)
    gen = torch.Generator().manual_seed(3)
    tau = 0.5 * target.noise_variance  # the narrow axes' variance grows by 1 / (1 - 1/4) under ULA
    res = sample(target, target.sample(400, generator=gen), method="ula", tau=tau, burn_in=100, n_samples=200,
                 thin=2, generator=gen)
    predicted = target.ula_mean_energy(tau)
    assert predicted - (6 + target.log_norm) > 1.0  # a bias worth testing: well above the target's d/2
    assert float(target(res.samples.reshape(-1, 12)).mean()) == pytest.approx(predicted, abs=0.15)
    assert target.ula_mean_energy(0.0) == pytest.approx(6 + target.log_norm)
    assert target.ula_mean_energy(2.5 * target.noise_variance) == float("inf")
