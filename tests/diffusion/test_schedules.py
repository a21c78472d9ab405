"""Schedules against their closed forms; add_noise moments; one reverse step against the posterior mean."""

import math

import pytest
import torch

from trainlab.diffusion.schedules import NoiseScheduler, cosine, linear, make_scheduler, sigmoid
from trainlab.errors import ConfigError


def test_linear_endpoints_spacing_and_cumprod():
    betas = linear(50, 1e-3, 0.02)
    assert betas.shape == (50,) and betas.dtype == torch.float32
    assert betas[0].item() == pytest.approx(1e-3) and betas[-1].item() == pytest.approx(0.02)
    torch.testing.assert_close(betas.diff(), torch.full((49,), (0.02 - 1e-3) / 49), rtol=1e-4, atol=1e-8)
    s = NoiseScheduler(betas)
    expected = 1.0
    for t in range(50):  # alphas_cumprod[t] = prod_{s<=t} (1 - beta_s), by a plain loop
        expected *= 1 - betas[t].item()
        assert s.alphas_cumprod[t].item() == pytest.approx(expected, rel=1e-5)
    torch.testing.assert_close(s.alphas, 1 - betas)
    assert s.T == 50


def test_cosine_matches_nichol_dhariwal():
    T, s_ = 200, 0.008
    f = lambda u: math.cos(((u / T) + s_) / (1 + s_) * math.pi / 2) ** 2  # noqa: E731
    sch = NoiseScheduler(cosine(T, s_))
    betas = sch.betas
    assert betas.max().item() <= 0.999 + 1e-6
    for t in range(T):
        closed = f(t + 1) / f(0)
        if 1 - f(t + 1) / f(t) < 0.999:  # below the cap, alphas_cumprod is f(t+1)/f(0) exactly
            assert sch.alphas_cumprod[t].item() == pytest.approx(closed, rel=1e-4, abs=1e-7)
    assert betas[-1].item() == pytest.approx(0.999)  # f(T) = 0 -> beta 1, capped
    assert (betas.diff() > 0).all()


def test_sigmoid_is_a_monotone_ramp_between_the_ends():
    b = sigmoid(100, 1e-4, 0.02)
    assert (b.diff() > 0).all()
    expected_first = 1e-4 + (0.02 - 1e-4) / (1 + math.exp(6))
    assert b[0].item() == pytest.approx(expected_first, rel=1e-5)
    assert b[50].item() == pytest.approx(1e-4 + (0.02 - 1e-4) / (1 + math.exp(6 - 12 * 50 / 99)), rel=1e-5)


def test_add_noise_mean_and_variance():
    sch = make_scheduler("linear", 100)
    t = 60
    x0 = torch.full((20000, 2), 0.7)
    g = torch.Generator().manual_seed(0)
    xt = sch.add_noise(x0, torch.randn(x0.shape, generator=g), torch.full((20000,), t))
    abar = sch.alphas_cumprod[t].item()
    assert xt.mean().item() == pytest.approx(math.sqrt(abar) * 0.7, abs=0.02)
    assert xt.var().item() == pytest.approx(1 - abar, rel=0.03)


def test_add_noise_uses_each_rows_timestep():
    sch = make_scheduler("cosine", 10)
    x0, noise, t = torch.ones(3, 2), torch.zeros(3, 2), torch.tensor([0, 4, 9])
    out = sch.add_noise(x0, noise, t)
    torch.testing.assert_close(out[:, 0], sch.alphas_cumprod[t].sqrt())


def test_step_without_noise_is_the_closed_form_posterior_mean():
    sch = make_scheduler("linear", 50, 1e-3, 0.02)
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(64, 3, generator=g)
    eps = torch.randn(64, 3, generator=g)
    t = 30
    xt = sch.add_noise(x0, eps, torch.full((64,), t))
    # q(x_{t-1} | x_t, x_0) mean (Ho et al. eq. 7) with the true x_0 is what the step must
    # give when the model predicts the true noise.
    a, ab, ab_prev, b = sch.alphas[t], sch.alphas_cumprod[t], sch.alphas_cumprod[t - 1], sch.betas[t]
    mu = (ab_prev.sqrt() * b / (1 - ab)) * x0 + (a.sqrt() * (1 - ab_prev) / (1 - ab)) * xt
    out = sch.step(eps, t, xt, noise=torch.zeros_like(xt))
    torch.testing.assert_close(out, mu, rtol=1e-4, atol=1e-5)
    # per-row tensor timesteps agree with the integer path
    out_vec = sch.step(eps, torch.full((64,), t), xt, noise=torch.zeros_like(xt))
    torch.testing.assert_close(out_vec, out)


def test_step_noise_scale_and_no_noise_at_t0():
    sch = make_scheduler("linear", 20)
    x, eps, z = torch.zeros(4, 2), torch.zeros(4, 2), torch.ones(4, 2)
    assert torch.equal(sch.step(eps, 0, x, noise=z), torch.zeros(4, 2))
    torch.testing.assert_close(sch.step(eps, 5, x, noise=z), torch.full((4, 2), sch.betas[5].sqrt().item()))
    mixed = sch.step(eps, torch.tensor([0, 5, 0, 5]), x, noise=z)
    assert mixed[0].abs().sum() == 0 and mixed[1, 0].item() == pytest.approx(sch.betas[5].sqrt().item())


def test_bad_input():
    with pytest.raises(ConfigError):
        make_scheduler("quadratic", 10)
    with pytest.raises(ConfigError):
        linear(10, 0.02, 0.001)
    with pytest.raises(ConfigError):
        NoiseScheduler(torch.tensor([0.1, 1.0]))
