"""DDPM sampling against an analytic target, a short training run, prior determinism, divergence."""

import math

import pytest
import torch
from torch import nn

from trainlab.diffusion.ddpm import NoiseModel, StudyNoiseModel, clipped_x0_eps, make_noise_model, sample, train_ddpm
from trainlab.diffusion.schedules import make_scheduler
from trainlab.errors import ConfigError

MU, SD = 0.6, 0.3


class GaussianOracle(nn.Module):
    """The exact E[noise | x_t] for data ~ N(MU, SD^2) per dimension: linear in x_t."""

    def __init__(self, scheduler, n_dim=2):
        super().__init__()
        self.n_dim, self.T, self.n_classes = n_dim, scheduler.T, 0
        self.abar = scheduler.alphas_cumprod
        self.anchor = nn.Parameter(torch.zeros(()))  # gives the sampler a device

    def forward(self, x, t, y=None):
        ab = self.abar[t].unsqueeze(1)
        return (1 - ab).sqrt() * (x - ab.sqrt() * MU) / (ab * SD**2 + 1 - ab)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_sampler_with_the_exact_noise_predictor_recovers_the_gaussian(kind):
    sch = make_scheduler(kind, 200, 1e-4, 0.02) if kind == "linear" else make_scheduler(kind, 200)
    g = torch.Generator().manual_seed(0)
    x = sample(GaussianOracle(sch), sch, 20000, generator=g)
    assert x.shape == (20000, 2)
    torch.testing.assert_close(x.mean(0), torch.full((2,), MU), atol=0.015, rtol=0)
    torch.testing.assert_close(x.std(0), torch.full((2,), SD), atol=0.015, rtol=0)


def test_short_training_matches_a_gaussian_target():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    X = MU + SD * torch.randn(4000, 1, generator=g)
    sch = make_scheduler("linear", 50, 1e-3, 0.05)
    model = StudyNoiseModel(1, 50)
    out = train_ddpm(model, sch, X, steps=800, batch_size=256, lr=1e-2, generator=g, progress=False)
    assert out.status == "done" and [r["step"] for r in out.history] == list(range(1, 801))
    assert out.final_loss(50) < sum(r["train_loss"] for r in out.history[:50]) / 50
    x = sample(model, sch, 4000, generator=g)
    assert abs(x.mean().item() - MU) < 0.08
    assert abs(x.std().item() - SD) < 0.08


def test_same_prior_gives_identical_samples_and_intermediates():
    sch = make_scheduler("linear", 20)
    torch.manual_seed(1)
    model = NoiseModel(2, 20, hidden=16, depth=1)
    prior = torch.randn(50, 2)
    a = sample(model, sch, 50, prior=prior, generator=torch.Generator().manual_seed(1))
    b, steps = sample(model, sch, 50, prior=prior.clone(), generator=torch.Generator().manual_seed(2),
                      return_intermediate=True)
    assert torch.equal(a, b)  # bit for bit, whatever the generator
    assert len(steps) == 21 and torch.equal(steps[0], prior) and torch.equal(steps[-1], b)
    # chunking changes only float rounding (matmul blocking), not the result
    chunked = sample(model, sch, 50, prior=prior, batch_size=7)
    torch.testing.assert_close(chunked, a, rtol=1e-5, atol=1e-5)
    # without a prior the generator decides, and different seeds differ
    c = sample(model, sch, 50, generator=torch.Generator().manual_seed(3))
    d = sample(model, sch, 50, generator=torch.Generator().manual_seed(3))
    e = sample(model, sch, 50, generator=torch.Generator().manual_seed(4))
    assert torch.equal(c, d) and not torch.equal(c, e)
    with pytest.raises(ConfigError, match="prior"):
        sample(model, sch, 49, prior=prior)


def test_study_model_shapes_and_width():
    m = StudyNoiseModel(3, 10, n_classes=2)
    assert m.net[0].in_features == 3 + 3 + 4 and m.net[0].out_features == 4 * 3 + 2 * 4
    out = m(torch.zeros(5, 3), torch.arange(5), torch.tensor([0, 1, 2, 0, 1]))
    assert out.shape == (5, 3)
    # labels None means the unconditional class
    torch.testing.assert_close(m(torch.zeros(2, 3), torch.ones(2, dtype=torch.long)),
                               m(torch.zeros(2, 3), torch.ones(2, dtype=torch.long), torch.tensor([2, 2])))
    with pytest.raises(ConfigError):
        make_noise_model("unet", 2, 10)


def test_non_finite_loss_stops_with_status_diverged():
    sch = make_scheduler("linear", 10)
    X = torch.randn(256, 2)
    X[5] = math.nan
    out = train_ddpm(NoiseModel(2, 10, hidden=8, depth=1), sch, X, steps=300, batch_size=256,
                     generator=torch.Generator().manual_seed(0), progress=False, check_every=50)
    assert out.status == "diverged" and out.history == []


def test_labels_need_a_conditional_model():
    with pytest.raises(ConfigError, match="n_classes"):
        train_ddpm(NoiseModel(2, 10, hidden=8, depth=1), make_scheduler("linear", 10), torch.randn(8, 2),
                   steps=1, labels=torch.zeros(8, dtype=torch.long), progress=False)


def test_on_step_sees_every_step_once_in_order():
    torch.manual_seed(0)
    model = StudyNoiseModel(1, 10)
    seen = []
    train_ddpm(model, make_scheduler("linear", 10), torch.randn(64, 1), steps=7, batch_size=16,
               generator=torch.Generator().manual_seed(0), progress=False, on_step=seen.append)
    assert seen == list(range(1, 8))


def test_clipped_sampler_keeps_implied_x0_in_range():
    sch = make_scheduler("cosine", 20)
    wild = torch.nn.Linear(2, 2)  # any network; wrap it the way sample() calls it

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = wild

        def forward(self, x, t, y=None):
            return 5 * self.lin(x)

    model = Model()
    eps_fn = clipped_x0_eps(model, sch)
    x = torch.randn(64, 2) * 3
    t = torch.randint(0, 20, (64,))
    eps = eps_fn(x, t)
    a, b = sch.sqrt_alphas_cumprod[t][:, None], sch.sqrt_one_minus_alphas_cumprod[t][:, None]
    x0 = (x - b * eps) / a
    assert x0.abs().max() <= 1 + 1e-4
    # where the raw prediction already gives x0 in range, nothing changes
    raw = model(x, t)
    inside = ((x - b * raw) / a).abs().amax(1) < 1
    torch.testing.assert_close(eps[inside], raw[inside], rtol=1e-4, atol=1e-4)
