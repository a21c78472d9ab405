"""Imbalance losses against closed forms and torch's cross-entropy."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from trainlab.errors import ConfigError
from trainlab.train.losses import FocalLoss, LogitAdjustedLoss, log_prior, posthoc_adjust, prior_bias


def batch(n=32, c=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, generator=gen) * 3, torch.randint(c, (n,), generator=gen)


def test_focal_with_gamma_zero_is_cross_entropy_weighted_or_not():
    z, y = batch()
    w = torch.tensor([1.0, 4.0, 0.5])
    torch.testing.assert_close(FocalLoss(0.0)(z, y), F.cross_entropy(z, y))
    torch.testing.assert_close(FocalLoss(0.0, w)(z, y), F.cross_entropy(z, y, weight=w))


def test_focal_loss_closed_form_and_it_discounts_easy_samples():
    z = torch.tensor([[math.log(9.0), 0.0], [0.0, 0.0]])  # p_y = 0.9 (easy) and 0.5
    y = torch.tensor([0, 0])
    expected = [0.1**2 * -math.log(0.9), 0.5**2 * -math.log(0.5)]
    assert FocalLoss(2.0)(z, y).item() == pytest.approx(sum(expected) / 2, rel=1e-5)
    # Relative to cross-entropy the easy sample loses a factor 100, the hard one a factor 4.
    assert FocalLoss(2.0)(z[:1], y[:1]).item() / F.cross_entropy(z[:1], y[:1]).item() == pytest.approx(0.01)
    with pytest.raises(ConfigError):
        FocalLoss(-1.0)


def test_logit_adjusted_loss_and_posthoc_adjustment():
    z, y = batch()
    lp = torch.tensor([0.7, 0.2, 0.1]).log()
    torch.testing.assert_close(LogitAdjustedLoss(lp, tau=1.5)(z, y), F.cross_entropy(z + 1.5 * lp, y))
    torch.testing.assert_close(posthoc_adjust(z, lp, 2.0), z - 2.0 * lp)
    # A model whose logits are the log prior (it knows nothing but the prior) predicts the majority class;
    # adjusted, its logits are all equal (no class favoured).
    adjusted = posthoc_adjust(lp.expand(4, 3), lp)
    assert torch.allclose(adjusted, torch.zeros(4, 3))


def test_prior_bias_and_log_prior():
    bias = torch.tensor(prior_bias([990, 10]))
    torch.testing.assert_close(bias.softmax(0), torch.tensor([0.99, 0.01]))
    labels = torch.tensor([0] * 99 + [1])
    torch.testing.assert_close(log_prior(labels, 2), torch.tensor([0.99, 0.01]).log())
    with pytest.raises(ConfigError, match="class"):
        log_prior(torch.zeros(5, dtype=torch.long), 2)
    with pytest.raises(ConfigError):
        prior_bias([1.0, 0.0])
