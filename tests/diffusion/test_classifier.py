"""The diffusion classifier with the exact noise predictor of two Gaussian classes (an oracle),
and with a briefly trained model."""

import numpy as np
import pytest
import torch
from torch import nn

from trainlab.diffusion.classifier import DiffusionClassifier
from trainlab.diffusion.guidance import fit_conditional
from trainlab.diffusion.schedules import make_scheduler
from trainlab.errors import ConfigError

SD = 0.3


class MixtureOracle(nn.Module):
    """Exact E[noise | x_t, y] when x_0 | y ~ N(means[y], SD^2 I), classes equally likely;
    label n_classes gives the unconditional E[noise | x_t] = sum_c p(c | x_t) E[noise | x_t, c]."""

    def __init__(self, scheduler, means):
        super().__init__()
        self.means = torch.as_tensor(means, dtype=torch.float32)
        self.n_classes, self.n_dim, self.T = len(self.means), self.means.shape[1], scheduler.T
        self.abar = scheduler.alphas_cumprod
        self.anchor = nn.Parameter(torch.zeros(()))
        self.calls = []

    def forward(self, x, t, y=None):
        self.calls.append((x.clone(), t.clone(), None if y is None else y.clone()))
        ab = self.abar[t].unsqueeze(1)
        var = ab * SD**2 + 1 - ab
        centres = ab.sqrt().unsqueeze(1) * self.means  # (B, C, d)
        eps_all = (1 - ab).sqrt().unsqueeze(1) * (x.unsqueeze(1) - centres) / var.unsqueeze(1)
        post = torch.softmax(-((x.unsqueeze(1) - centres) ** 2).sum(-1) / (2 * var), dim=1)  # p(c | x_t)
        eps_u = (post.unsqueeze(-1) * eps_all).sum(1)
        y = torch.full((x.shape[0],), self.n_classes) if y is None else y
        out = eps_u.clone()
        cond = y < self.n_classes
        out[cond] = eps_all[cond, y[cond]]
        return out


def _two_classes(n=400, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    means = np.array([[-0.5, 0.0], [0.5, 0.0]])
    return (means[y] + SD * rng.normal(size=(n, 2))).astype(np.float32), y, means


def test_error_score_reaches_the_bayes_rate_with_the_exact_model():
    X, y, means = _two_classes()
    sch = make_scheduler("linear", 100, 1e-3, 0.02)
    clf = DiffusionClassifier(MixtureOracle(sch, means), sch, 2, n_t=50, score="error")
    bayes = float(((X[:, 0] > 0).astype(int) == y).mean())  # the optimal rule for these two Gaussians
    acc = float((clf.predict(X) == y).mean())
    assert acc > 0.9 and acc >= bayes - 0.04
    proba = clf.predict_proba(X)
    assert proba.shape == (400, 2)
    np.testing.assert_allclose(proba.sum(1), 1, atol=1e-9)
    np.testing.assert_array_equal(clf.predict_proba(X), proba)  # same seed, same draws


def test_study_score_picks_the_less_likely_class_and_its_minimum_the_likely_one():
    # For two equal-variance Gaussians, eps_c - eps_uncond = (1 - p(c | x_t)) (eps_c - eps_other):
    # the study's "largest distance to unconditional" picks the class with the lower posterior.
    X, y, means = _two_classes(seed=1)
    sch = make_scheduler("linear", 100, 1e-3, 0.02)
    model = MixtureOracle(sch, means)
    study = (DiffusionClassifier(model, sch, 2, n_t=10, score="study").predict(X) == y).mean()
    study_min = (DiffusionClassifier(model, sch, 2, n_t=10, score="study-min").predict(X) == y).mean()
    assert study < 0.15 and study_min > 0.85


def test_every_class_sees_the_same_noisy_inputs():
    X, y, means = _two_classes(n=5)
    sch = make_scheduler("linear", 20)
    model = MixtureOracle(sch, means)
    DiffusionClassifier(model, sch, 2, n_t=3, score="error").predict(X)
    assert len(model.calls) == 1  # one batched forward for all classes and timesteps
    x, t, lab = model.calls[0]
    x0, x1 = x[lab == 0], x[lab == 1]
    assert torch.equal(x0, x1) and torch.equal(t[lab == 0], t[lab == 1]) and x0.shape == (15, 2)


def test_adaptive_elimination_agrees_and_saves_work():
    rng = np.random.default_rng(2)
    means = np.array([[-1, -1], [-1, 1], [1, -1], [1, 1]], dtype=float)
    y = rng.integers(0, 4, 300)
    X = (means[y] + SD * rng.normal(size=(300, 2))).astype(np.float32)
    sch = make_scheduler("linear", 100, 1e-3, 0.02)
    model = MixtureOracle(sch, means)
    full = DiffusionClassifier(model, sch, 4, n_t=20)
    fast = DiffusionClassifier(model, sch, 4, n_t=20, adaptive=True, rounds=2)
    p_full, p_fast = full.predict(X), fast.predict(X)
    assert (p_full == y).mean() > 0.9 and (p_fast == y).mean() > 0.9
    assert fast.evaluations < 0.8 * full.evaluations


def test_briefly_trained_model_beats_chance_clearly():
    X, y, _ = _two_classes(n=2000, seed=3)
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model, sch, info = fit_conditional(torch.as_tensor(X[:1600]), torch.as_tensor(y[:1600]), n_classes=2,
                                       arch="study", T=50, beta_low=1e-3, beta_high=0.05, steps=600,
                                       batch_size=256, lr=1e-2, generator=g, progress=False)
    assert info.status == "done"
    acc = (DiffusionClassifier(model, sch, n_t=20).predict(X[1600:]) == y[1600:]).mean()
    assert acc > 0.8  # chance is 0.5; Bayes is about 0.95


def test_bad_arguments():
    sch = make_scheduler("linear", 10)
    model = MixtureOracle(sch, [[0, 0], [1, 1]])
    with pytest.raises(ConfigError):
        DiffusionClassifier(model, sch, 2, score="likelihood")
    with pytest.raises(ConfigError):
        DiffusionClassifier(model, sch, 3)
    with pytest.raises(ConfigError):
        DiffusionClassifier(model, sch, 2, score="study", adaptive=True)
