"""Imbalance strategies: weight factors, each strategy's training set-up, post-hoc decisions."""

from __future__ import annotations

import math

import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.train.imbalance import (
    STRATEGIES,
    posthoc_decision,
    posthoc_threshold,
    scores,
    strategy_data,
    strategy_grid,
    weight_factor,
)
from trainlab.train.losses import log_prior, posthoc_adjust
from trainlab.train.loop import epoch_order
from trainlab.train.stack import trial_loss


@pytest.mark.parametrize("expr,value", [("1", 1.0), ("2.5", 2.5), ("N/10", 100.0), ("N / 2", 500.0), ("N", 1000.0),
                                        ("n0/n1", 4800 / 4)])
def test_the_studys_weight_factors(expr, value):
    assert weight_factor(expr, 1000, (4800, 4)) == pytest.approx(value)


@pytest.mark.parametrize("expr", ["N/0", "0", "-3", "n1/n0", "x", "N/-2"])
def test_bad_weight_factors_are_config_errors(expr):
    with pytest.raises(ConfigError):
        weight_factor(expr, 1000, (4800, 4))


def test_balancing_needs_a_rare_sample():
    with pytest.raises(ConfigError, match="lower N"):
        weight_factor("n0/n1", 1000, (4800, 0))


def test_each_trained_strategy_sets_up_its_data_and_loss():
    labels = torch.tensor([0] * 96 + [1] * 4)
    rows = torch.arange(100, 200)
    z = torch.randn(100, 2, generator=torch.Generator().manual_seed(0))
    plain = strategy_data("none", rows, labels)
    assert plain.sample_weights is None and plain.class_weights is None
    assert isinstance(trial_loss(plain), torch.nn.CrossEntropyLoss)

    weighted = strategy_data("loss_weight", rows, labels, 24.0)
    assert weighted.class_weights == (1.0, 24.0)
    torch.testing.assert_close(trial_loss(weighted)(z, labels),
                               torch.nn.functional.cross_entropy(z, labels, weight=torch.tensor([1.0, 24.0])))

    resampled = strategy_data("resample", rows, labels, 24.0)
    assert resampled.sample_weights[labels == 1].tolist() == [24.0] * 4 and resampled.class_weights is None
    draws = torch.cat([epoch_order(100, torch.Generator().manual_seed(s), resampled.sample_weights)
                       for s in range(40)])
    assert 0.4 < labels[draws].float().mean().item() < 0.6  # 24 * 4 against 96: balanced on average

    focal = strategy_data("focal", rows, labels, gamma=2.0)
    assert focal.focal_gamma == 2.0
    torch.testing.assert_close(torch.tensor(focal.output_bias).softmax(0), torch.tensor([0.96, 0.04]))

    adjusted = strategy_data("logit_adjust", rows, labels, tau=1.0)
    torch.testing.assert_close(torch.tensor(adjusted.logit_offset), log_prior(labels, 2))

    for name in ("posthoc_adjust", "threshold", "smote"):
        with pytest.raises(ConfigError):
            strategy_data(name, rows, labels)
    assert set(STRATEGIES) >= {"none", "loss_weight", "resample", "focal", "logit_adjust"}


def test_posthoc_threshold_is_the_argmax_of_adjusted_logits():
    z = torch.randn(500, 2, generator=torch.Generator().manual_seed(1)) * 4
    counts = (950, 50)
    lp = torch.tensor([math.log(0.95), math.log(0.05)])
    expected = posthoc_adjust(z, lp, tau=1.5).argmax(1)
    predicted = (scores(z) > posthoc_threshold(counts, tau=1.5)).long()
    assert torch.equal(predicted, expected)
    assert predicted.sum() > (scores(z) > 0).sum()  # the rare class is predicted more often


def test_posthoc_decisions():
    val_y = torch.tensor([0, 0, 0, 1, 0])
    val_s = torch.tensor([-6.0, -5.0, -4.0, -2.0, -3.0])  # the positive ranks first, below argmax's 0
    assert posthoc_decision("threshold", (99, 1), val_y, val_s) == -2.5
    assert posthoc_decision("posthoc_adjust", (99, 1), val_y, val_s, tau=1.0) == pytest.approx(math.log(1 / 99))
    with pytest.raises(ConfigError):
        posthoc_decision("none", (99, 1), val_y, val_s)


def test_strategy_grid_lists_every_trained_setting():
    labels = torch.tensor([0] * 96 + [1] * 4)
    grid = strategy_grid(["resample", "threshold", "focal"], ["1", "n0/n1"], 100, torch.arange(100), labels)
    assert [(s, w) for s, w, _, _ in grid] == [("none", "-"), ("resample", "1"), ("resample", "n0/n1"), ("focal", "-")]
    assert grid[2][2] == 24.0 and grid[2][3].sample_weights.max() == 24.0  # n0/n1 = 96 / 4
