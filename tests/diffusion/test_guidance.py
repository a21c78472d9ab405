"""Classifier-free guidance: w = 0 is conditional sampling, the mixing formula, one batched forward."""

import pytest
import torch
from torch import nn

from trainlab.diffusion.ddpm import NoiseModel, StudyNoiseModel, train_ddpm
from trainlab.diffusion.guidance import guided_eps, make_conditional_model, sample_cfg, sample_conditional
from trainlab.diffusion.schedules import make_scheduler
from trainlab.errors import ConfigError


class CountingModel(nn.Module):
    """Wraps a model and records the batch size of every forward pass."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.batches = inner, []
        self.n_dim, self.T, self.n_classes = inner.n_dim, inner.T, inner.n_classes

    def forward(self, x, t, y=None):
        self.batches.append(x.shape[0])
        return self.inner(x, t, y)


def _model(T=15, n_classes=3, seed=0):
    torch.manual_seed(seed)
    return NoiseModel(2, T, hidden=16, depth=1, n_classes=n_classes)


def test_guidance_zero_equals_conditional_sampling():
    sch = make_scheduler("linear", 15)
    model = _model()
    a = sample_conditional(model, sch, 64, 1, generator=torch.Generator().manual_seed(5))
    b = sample_cfg(model, sch, 64, 1, 0.0, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    c = sample_cfg(model, sch, 64, 1, 2.0, generator=torch.Generator().manual_seed(5))
    assert (c - a).abs().max() > 1e-3  # guidance changes the samples


def test_guided_eps_is_the_seed_mixture_from_one_forward_pass():
    model = CountingModel(_model())
    x, t, y = torch.randn(10, 2), torch.randint(0, 15, (10,)), torch.randint(0, 3, (10,))
    w = 1.7
    out = guided_eps(model, w)(x, t, y)
    assert model.batches == [20]  # conditional and unconditional rows stacked in one call
    expected = (1 + w) * model.inner(x, t, y) - w * model.inner(x, t, torch.full_like(y, 3))
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    model.batches.clear()
    sample_cfg(model, make_scheduler("linear", 15), 8, 0, 1.0)
    assert model.batches == [16] * 15  # T steps, each one forward of 2n rows


def test_guidance_moves_samples_away_from_the_unconditional_mean():
    # Train a tiny conditional model on two well-separated 1-D classes at -0.6 and +0.6;
    # guidance towards class 1 must push the samples further right than plain conditioning.
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    y = torch.randint(0, 2, (4000,), generator=g)
    X = (y.float() * 1.2 - 0.6 + 0.1 * torch.randn(4000, generator=g)).unsqueeze(1)
    sch = make_scheduler("linear", 40, 1e-3, 0.05)
    model = StudyNoiseModel(1, 40, n_classes=2)
    out = train_ddpm(model, sch, X, steps=700, batch_size=256, lr=1e-2, generator=g, labels=y,
                     label_dropout=0.2, progress=False)
    assert out.status == "done"
    plain = sample_cfg(model, sch, 2000, 1, 0.0, generator=torch.Generator().manual_seed(1))
    strong = sample_cfg(model, sch, 2000, 1, 3.0, generator=torch.Generator().manual_seed(1))
    assert plain.mean() > 0.3  # conditioning works at all
    assert strong.mean() > plain.mean() + 0.02
    assert (strong > 0).float().mean() >= (plain > 0).float().mean()


def test_bad_labels_and_unconditional_models():
    sch = make_scheduler("linear", 15)
    with pytest.raises(ConfigError, match="label"):
        sample_cfg(_model(), sch, 4, 3, 1.0)
    with pytest.raises(ConfigError, match="unconditional"):
        sample_cfg(_model(n_classes=0), sch, 4, 0, 1.0)
    with pytest.raises(ConfigError):
        make_conditional_model("default", 2, 10, 0)
