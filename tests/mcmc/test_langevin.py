"""MALA and ULA against analytic targets, and against a naive two-evaluation MALA."""

import math

import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.mcmc.adaptation import DualAveraging
from trainlab.mcmc.langevin import KERNELS, LangevinState, energy_and_grad, init, mala_step, sample, ula_step


def gaussian_energy(mean: torch.Tensor, cov: torch.Tensor):
    """E(x) = (x - m)^T C^{-1} (x - m) / 2: the negative log-density of N(m, C) up to a constant."""
    precision = torch.linalg.inv(cov)

    def energy(x):
        z = x - mean
        return 0.5 * ((z @ precision) * z).sum(1)

    return energy


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_mala_matches_a_correlated_gaussians_mean_and_covariance():
    mean = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    a = torch.tensor([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [-0.3, 0.2, 0.5]], dtype=torch.float64)
    cov = a @ a.T
    x0 = torch.zeros(500, 3, dtype=torch.float64)
    res = sample(gaussian_energy(mean, cov), x0, tau=0.2, burn_in=200, n_samples=400, generator=gen())
    draws = res.samples.reshape(-1, 3)
    assert torch.allclose(draws.mean(0), mean, atol=0.04)
    assert torch.allclose(torch.cov(draws.T), cov, atol=0.05)
    assert 0.3 < float(res.accept_rate.mean()) < 1


def test_ula_stationary_variance_is_the_closed_form_and_mala_removes_the_bias():
    sigma2, tau = 1.0, 0.5
    energy = gaussian_energy(torch.zeros(1, dtype=torch.float64), torch.full((1, 1), sigma2, dtype=torch.float64))
    x0 = torch.zeros(4000, 1, dtype=torch.float64)
    ula = sample(energy, x0, method="ula", tau=tau, burn_in=50, n_samples=200, generator=gen(1))
    expected = sigma2 / (1 - tau / (2 * sigma2))  # 4/3: x' = (1 - tau/s2) x + sqrt(2 tau) xi
    assert float(ula.samples.var()) == pytest.approx(expected, rel=0.02)
    assert float(ula.accept_rate.min()) == 1.0
    mala = sample(energy, x0, method="mala", tau=tau, burn_in=50, n_samples=200, generator=gen(1))
    assert float(mala.samples.var()) == pytest.approx(sigma2, rel=0.03)


def test_acceptance_falls_as_tau_grows():
    energy = gaussian_energy(torch.zeros(20), torch.eye(20))
    x0 = torch.randn(200, 20, generator=gen(2))  # start in the target: no burn-in needed
    rates = [float(sample(energy, x0, tau=tau, burn_in=0, n_samples=50, generator=gen(3)).accept_rate.mean())
             for tau in (0.02, 0.1, 0.4, 1.0, 2.0)]
    assert all(a > b for a, b in zip(rates, rates[1:])), rates
    assert rates[0] > 0.95 and rates[-1] < 0.2


def naive_mala(energy, x0, tau, steps, generator):
    """The textbook step: energy and gradient at x and at x' every step, same random numbers."""
    x, out = x0.clone(), []
    for _ in range(steps):
        e, g = energy_and_grad(energy, x)
        xi = torch.randn(x.shape, generator=generator, dtype=x.dtype)
        prop = x - tau * g + math.sqrt(2 * tau) * xi
        e_new, g_new = energy_and_grad(energy, prop)
        u = torch.rand(x.shape[0], generator=generator, dtype=torch.float64)
        log_q_fwd = -((prop - x + tau * g) ** 2).sum(1) / (4 * tau)
        log_q_back = -((x - prop + tau * g_new) ** 2).sum(1) / (4 * tau)
        log_alpha = e - e_new + log_q_back - log_q_fwd
        x = torch.where((torch.log(u) < log_alpha)[:, None], prop, x)
        out.append(x)
    return torch.stack(out)


def test_one_evaluation_mala_gives_the_naive_two_evaluation_chain():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1)).double()

    def energy(x):  # a non-quadratic energy: the gradient differs from point to point
        return net(x).squeeze(-1) + 0.5 * (x**2).sum(1)

    x0 = torch.randn(64, 5, generator=gen(4), dtype=torch.float64)
    ours = sample(energy, x0, tau=0.3, burn_in=0, n_samples=40, generator=gen(5)).samples
    ref = naive_mala(energy, x0, 0.3, 40, gen(5))
    assert torch.allclose(ours, ref, atol=1e-12)
    assert 0 < (ours[1:] != ours[:-1]).any(2).float().mean() < 1  # some moves accepted, some rejected


def test_nan_and_infinite_proposals_are_rejected_never_propagated():
    def energy(x):  # NaN beyond x = 1, +inf below x = -1
        base = 0.5 * (x**2).sum(1)
        base = torch.where(x[:, 0] > 1, torch.full_like(base, math.nan), base)
        return torch.where(x[:, 0] < -1, torch.full_like(base, math.inf), base)

    for method in ("mala", "ula"):
        res = sample(energy, torch.zeros(100, 2), method=method, tau=0.3, burn_in=10, n_samples=100,
                     generator=gen(6))
        assert torch.isfinite(res.samples).all() and torch.isfinite(res.energy).all()
        assert res.samples[..., 0].max() <= 1 and res.samples[..., 0].min() >= -1


def test_bounds_make_a_flat_energy_uniform_on_the_box():
    res = sample(lambda x: torch.zeros(x.shape[0]), torch.full((400, 2), 0.5), tau=0.02, burn_in=100,
                 n_samples=300, bounds=(0.0, 1.0), generator=gen(7))
    draws = res.samples.reshape(-1, 2)
    assert draws.min() >= 0 and draws.max() <= 1
    assert torch.allclose(draws.mean(0), torch.full((2,), 0.5), atol=0.02)
    assert torch.allclose(draws.var(0), torch.full((2,), 1 / 12), atol=0.006)


def test_dual_averaging_reaches_the_target_acceptance_and_freezes_tau():
    energy = gaussian_energy(torch.zeros(50), torch.eye(50))
    x0 = torch.randn(64, 50, generator=gen(8))
    res = sample(energy, x0, tau=3.0, burn_in=400, n_samples=200, adapt=True, generator=gen(9))
    assert res.tau < 3.0
    assert float(res.accept_rate.mean()) == pytest.approx(0.574, abs=0.1)
    fixed = sample(energy, x0, tau=res.tau, burn_in=0, n_samples=200, generator=gen(9))
    assert float(fixed.accept_rate.mean()) == pytest.approx(float(res.accept_rate.mean()), abs=0.05)


def test_dual_averaging_moves_tau_the_right_way():
    da = DualAveraging(0.1)
    for _ in range(20):
        da.update(torch.tensor(1.0))  # everything accepted: the step should grow
    assert da.final_tau > 0.1
    da = DualAveraging(0.1)
    for _ in range(20):
        da.update(torch.tensor(0.0))
    assert da.final_tau < 0.1


def test_result_shapes_thinning_and_timings():
    energy = gaussian_energy(torch.zeros(3), torch.eye(3))
    res = sample(energy, torch.zeros(4, 3), method="ula", tau=0.1, burn_in=5, n_samples=6, thin=3, generator=gen())
    assert res.samples.shape == (6, 4, 3)
    assert res.energy.shape == (5 + 18, 4)
    assert res.sample_energy.shape == (6, 4)
    assert torch.allclose(res.sample_energy, energy(res.samples.reshape(-1, 3)).reshape(6, 4))
    assert res.burn_in_s >= 0 and res.sampling_s > 0 and res.total_s == res.burn_in_s + res.sampling_s
    assert res.accept_rate.shape == (4,) and res.burn_in_accept_rate.shape == (4,)


def test_bad_arguments_raise():
    energy = gaussian_energy(torch.zeros(2), torch.eye(2))
    with pytest.raises(ValueError, match="method"):
        sample(energy, torch.zeros(2, 2), method="hmc")
    with pytest.raises(ValueError, match=r"\(chains, d\)"):
        sample(energy, torch.zeros(2))
    with pytest.raises(ValueError, match="chains,"):
        sample(lambda x: x, torch.zeros(2, 2), n_samples=1, burn_in=0)
    with pytest.raises(ValueError, match="adaptation"):
        sample(energy, torch.zeros(2, 2), method="ula", adapt=True)


@pytest.mark.parametrize("method", ["mala", "ula"])
def test_sample_is_init_then_the_kernel_in_a_loop_bit_for_bit(method):
    """The driver adds bookkeeping only: the chains are a hand-written loop of the one-step kernel."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))

    def energy(x):
        return net(x).squeeze(-1) + 0.5 * (x**2).sum(1)

    x0 = torch.randn(16, 4, generator=gen(11))
    res = sample(energy, x0, method=method, tau=0.2, burn_in=3, n_samples=5, thin=2, bounds=(-2.0, 2.0),
                 generator=gen(12))
    state, generator, positions, energies, accepted = init(x0, energy), gen(12), [], [], []
    for _ in range(3 + 5 * 2):
        state, info = KERNELS[method](state, energy, 0.2, generator, (-2.0, 2.0))
        positions.append(state.position)
        energies.append(state.energy)
        accepted.append(info.accepted)
    assert torch.equal(res.samples, torch.stack(positions[3 + 1 :: 2]))
    assert torch.equal(res.energy, torch.stack(energies))
    assert torch.equal(res.accept_rate, torch.stack(accepted[3:]).double().mean(0).float())


def test_a_step_keeps_energy_and_gradient_of_its_position_and_reports_what_it_did():
    energy = gaussian_energy(torch.zeros(3, dtype=torch.float64), torch.eye(3, dtype=torch.float64))
    state = init(torch.randn(50, 3, generator=gen(13), dtype=torch.float64), energy)
    assert isinstance(state, LangevinState)
    for step in (mala_step, ula_step):
        new, info = step(state, energy, torch.tensor(0.5, dtype=torch.float64), gen(14))
        e, g = energy_and_grad(energy, new.position)
        assert torch.equal(new.energy, e) and torch.equal(new.gradient, g)
        moved = (new.position != state.position).any(1)
        assert torch.equal(moved, info.accepted)
        assert torch.equal(new.position[moved], info.proposal.position[moved])
        assert info.accept_prob.shape == (50,) and ((info.accept_prob >= 0) & (info.accept_prob <= 1)).all()
    assert 0 < float(mala_step(state, energy, 0.5, gen(14))[1].accepted.double().mean()) < 1


def test_bad_input_is_a_config_error():
    energy = gaussian_energy(torch.zeros(2), torch.eye(2))
    with pytest.raises(ConfigError, match="method"):
        sample(energy, torch.zeros(2, 2), method="hmc")
    with pytest.raises(ConfigError, match="tau > 0"):
        sample(energy, torch.zeros(2, 2), tau=0.0)
    with pytest.raises(ConfigError, match="bounds"):
        sample(energy, torch.zeros(2, 2), bounds=(1.0, 0.0))
