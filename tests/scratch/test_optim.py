"""Gradient descent and Adam against torch.optim (also on the bump study's losses), and the threshold search."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from trainlab.scratch.landscapes import activation, bump_landscape
from trainlab.scratch.optim import adam, bisect_largest, gradient_descent


def _smooth(x):
    """A non-convex 1-D test function for either NumPy floats or torch tensors."""
    lib = torch if isinstance(x, torch.Tensor) else np
    return 0.5 * x**2 + lib.sin(3 * x)


def _smooth_grad(x: float) -> float:
    return x + 3 * math.cos(3 * x)


@pytest.mark.parametrize("betas,eps", [((0.9, 0.999), 1e-8), ((0.5, 0.9), 0.0), ((0.0, 0.99), 1e-3)])
def test_adam_matches_torch_optim(betas, eps):
    x0, alpha, steps = 2.0, 0.3, 40
    ours = adam(_smooth_grad, x0, steps, alpha, *betas, eps=eps)
    p = torch.tensor([x0], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([p], lr=alpha, betas=betas, eps=eps)
    for i in range(steps):
        opt.zero_grad()
        _smooth(p).sum().backward()
        g = p.grad.item()
        opt.step()
        state = opt.state[p]
        assert ours.g[i] == pytest.approx(g, rel=1e-9, abs=1e-12)
        assert ours.m[i] == pytest.approx(state["exp_avg"].item(), rel=1e-9, abs=1e-12)
        assert ours.v[i] == pytest.approx(state["exp_avg_sq"].item(), rel=1e-9, abs=1e-12)
        assert ours.x[i] == pytest.approx(p.item(), rel=1e-9, abs=1e-12)


def test_gradient_descent_matches_torch_sgd():
    ours = gradient_descent(_smooth_grad, -1.5, 30, lr=0.1)
    p = torch.tensor([-1.5], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.1)
    for i in range(30):
        opt.zero_grad()
        _smooth(p).sum().backward()
        opt.step()
        assert ours.x[i] == pytest.approx(p.item(), rel=1e-12, abs=1e-14)
    assert np.isnan(ours.m).all() and np.isnan(ours.v_hat).all()


def test_trace_bias_corrections_and_path():
    tr = adam(_smooth_grad, 1.0, 25, 0.05, 0.8, 0.95, 1e-8)
    assert tr.t.tolist() == list(range(1, 26))
    np.testing.assert_allclose(tr.m_hat, tr.m / (1 - 0.8**tr.t))
    np.testing.assert_allclose(tr.v_hat, tr.v / (1 - 0.95**tr.t))
    path = tr.path()
    np.testing.assert_allclose(np.diff(path), -0.05 * tr.m_hat / (np.sqrt(tr.v_hat) + 1e-8))
    assert len(tr.rows()) == 25 and set(tr.rows()[0]) == {"t", "x", "g", "m", "v", "m_hat", "v_hat"}


def test_gradient_descent_oscillates_between_0_9_and_1_2_on_the_bump():
    """Seed Q1.1: lr 0.3, h 0.5. Three steps of slope -1 reach 0.9, which is still
    left of the bump (g = -1) so x goes to 1.2; on the rising side g = +1 sends it
    back to 0.9, forever (up to floating-point rounding of 0.3 + 0.3 + 0.3)."""
    land = bump_landscape(L=1.0, h=0.5)
    tr = gradient_descent(land.grad, 0.0, 200, lr=0.3)
    np.testing.assert_allclose(tr.x[:3], [0.3, 0.6, 0.9], atol=1e-12)
    np.testing.assert_allclose(tr.x[2::2], 0.9, atol=1e-12)
    np.testing.assert_allclose(tr.x[3::2], 1.2, atol=1e-12)
    np.testing.assert_array_equal(tr.g[3:], np.where(np.arange(3, 200) % 2 == 1, -1.0, 1.0))


def test_bisected_h_max_equals_the_highest_point_of_an_endless_rise():
    """Independent oracle: before Adam passes the peak, its path does not depend on h.
    On a bump that never ends (h huge) the highest x it ever reaches is x*; any bump
    with L + h < x* is crossed and any higher one is not, so h_max = x* - L."""
    L, alpha, betas = 1.0, 0.3, (0.9, 0.999)
    endless = adam(bump_landscape(L, 1e6).grad, 0.0, 3000, alpha, *betas, eps=0.0)
    oracle = endless.x.max() - L

    def gets_over(h: float) -> bool:
        far_foot = L + 2 * h
        tr = adam(bump_landscape(L, h).grad, 0.0, 300, alpha, *betas, eps=0.0, stop=lambda x: x > far_foot)
        return bool(tr.x[-1] > far_foot)

    found = bisect_largest(gets_over, 0.05, 1.0, tol=1e-6)
    assert found.upper - found.value <= 1e-6
    assert found.value <= oracle <= found.upper
    assert round(found.value, 2) == 0.41


def test_bisect_refuses_a_predicate_that_switches_twice():
    with pytest.raises(ValueError, match="not monotone"):
        bisect_largest(lambda p: p < 0.3 or 0.5 < p < 0.7, 0.0, 1.0, 1e-3, grid=21)
    with pytest.raises(ValueError, match="passes"):
        bisect_largest(lambda p: False, 0.0, 1.0, 1e-3)


def test_adam_with_eps_zero_and_zero_gradients_stands_still():
    tr = adam(activation("relu").grad, -1.0, 5, alpha=0.3, eps=0.0)
    assert np.all(tr.x == -1.0) and not np.isnan(tr.x).any()
