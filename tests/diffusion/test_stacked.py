"""Stacked DDPM training and sampling against the oracle: every model trained and sampled alone."""

from __future__ import annotations

import copy

import pytest
import torch

from trainlab.diffusion.ddpm import NoiseModel, StudyNoiseModel, clipped_x0_eps, sample, train_ddpm
from trainlab.diffusion.schedules import make_scheduler
from trainlab.diffusion.stacked import StackMember, sample_stack, train_ddpm_stack
from trainlab.errors import ConfigError

# different T, schedules, seeds and data sets (of different sizes) in one stack
PLAN = [("linear", 10, 0, 300), ("cosine", 25, 1, 260), ("sigmoid", 40, 2, 300), ("linear", 25, 3, 400)]


def data(seed: int, n: int, d: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(100 + seed)
    return torch.randn(n, d, generator=g) * 0.5 + torch.arange(d) * 0.3


def build(kind: str, T: int, seed: int, cls=NoiseModel, **kwargs):
    torch.manual_seed(seed)
    model = cls(2, T, **kwargs) if cls is StudyNoiseModel else cls(2, T, hidden=16, depth=1, **kwargs)
    return model, make_scheduler(kind, T, 1e-3, 0.05)


def losses(result):
    return torch.tensor([r["train_loss"] for r in result.history])


def assert_same_weights(a, b, **tol):
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, **tol)


# the old recipe (cosine decay only), and warm-up + cosine decay with the EMA's weights at the end
RECIPES = [{}, {"warmup_steps": 10, "ema_decay": 0.9}]


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_stacked_model_equals_its_solo_run_step_by_step(recipe):
    members, solos = [], []
    for kind, T, seed, n in PLAN:
        model, sch = build(kind, T, seed)
        members.append(StackMember(copy.deepcopy(model), sch, data(seed, n), torch.Generator().manual_seed(seed)))
        solos.append((model, sch, data(seed, n), torch.Generator().manual_seed(seed)))
    results = train_ddpm_stack(members, steps=40, batch_size=64, lr=1e-2, check_every=7, progress=False, **recipe)
    for member, result, (model, sch, X, gen) in zip(members, results, solos):
        alone = train_ddpm(model, sch, X, steps=40, batch_size=64, lr=1e-2, generator=gen, check_every=7,
                           progress=False, **recipe)
        assert result.status == alone.status == "done"
        # the loss of every step (each depends on every earlier update), then the weights
        torch.testing.assert_close(losses(result), losses(alone),
                                   rtol=1e-4, atol=1e-6)
        assert_same_weights(member.model, model, rtol=1e-4, atol=1e-5)
        # each generator is left where training alone leaves it (sampling goes on from there)
        assert torch.equal(torch.rand(3, generator=member.generator), torch.rand(3, generator=gen))
    assert results[0].stack_size == 4 and results[0].seconds == pytest.approx(results[0].stack_seconds / 4)


def test_conditional_models_with_label_dropout_equal_their_solo_runs():
    members, solos = [], []
    for kind, T, seed, n in PLAN[:3]:
        model, sch = build(kind, T, seed, cls=StudyNoiseModel, n_classes=3)
        X = data(seed, n)
        y = (X[:, 0] > 0).long() + (X[:, 1] > 0.3).long()
        members.append(StackMember(copy.deepcopy(model), sch, X, torch.Generator().manual_seed(seed), labels=y))
        solos.append((model, sch, X, y, torch.Generator().manual_seed(seed)))
    results = train_ddpm_stack(members, steps=25, batch_size=50, lr=5e-3, label_dropout=0.3, lr_decay=False,
                               progress=False)
    for member, result, (model, sch, X, y, gen) in zip(members, results, solos):
        alone = train_ddpm(model, sch, X, steps=25, batch_size=50, lr=5e-3, generator=gen, labels=y,
                           label_dropout=0.3, lr_decay=False, progress=False)
        torch.testing.assert_close(losses(result), losses(alone),
                                   rtol=1e-4, atol=1e-6)
        assert_same_weights(member.model, model, rtol=1e-4, atol=1e-5)


def poison(model: torch.nn.Module, X: torch.Tensor, how: str) -> torch.Tensor:
    """Make a member diverge: inputs that overflow, one NaN point, or weights that overflow."""
    if how == "weights":
        with torch.no_grad():
            next(model.parameters()).mul_(1e37)
        return X
    if how == "nan_point":
        X = X.clone()
        X[7] = float("nan")
        return X
    return X * 1e30


@pytest.mark.parametrize("recipe", RECIPES)
@pytest.mark.parametrize("how", ["overflow", "nan_point", "weights"])
def test_a_diverging_model_stops_as_it_would_alone_and_leaves_the_others_untouched(how, recipe):
    plan = PLAN[:3]
    members, solos = [], []
    for i, (kind, T, seed, n) in enumerate(plan):
        model, sch = build(kind, T, seed)
        X = poison(model, data(seed, n), how) if i == 1 else data(seed, n)  # model 1: NaN loss
        members.append(StackMember(copy.deepcopy(model), sch, X, torch.Generator().manual_seed(seed)))
        solos.append((model, sch, X, torch.Generator().manual_seed(seed)))
    results = train_ddpm_stack(members, steps=30, batch_size=64, lr=1e-2, check_every=10, progress=False, **recipe)
    for member, result, (model, sch, X, gen) in zip(members, results, solos):
        alone = train_ddpm(model, sch, X, steps=30, batch_size=64, lr=1e-2, generator=gen, check_every=10,
                           progress=False, **recipe)
        assert result.status == alone.status
        assert len(result.history) == len(alone.history)
        torch.testing.assert_close(losses(result), losses(alone),
                                   rtol=1e-4, atol=1e-6)
        assert_same_weights(member.model, model, rtol=1e-4, atol=1e-5, equal_nan=True)
        assert torch.equal(torch.rand(3, generator=member.generator), torch.rand(3, generator=gen))
    assert [r.status for r in results] == ["done", "diverged", "done"]


@pytest.mark.parametrize("clip", [False, True])
def test_stacked_sampling_equals_solo_sampling(clip):
    models, scheds = zip(*(build(kind, T, seed) for kind, T, seed, _ in PLAN))
    stacked = sample_stack(models, scheds, 300, generators=[torch.Generator().manual_seed(s) for *_, s, _ in PLAN],
                           clip_x0=clip, batch_size=128)
    for model, sch, (*_, seed, _), mine in zip(models, scheds, PLAN, stacked):
        eps_fn = clipped_x0_eps(model, sch) if clip else None
        alone = sample(model, sch, 300, generator=torch.Generator().manual_seed(seed), eps_fn=eps_fn, batch_size=128)
        assert mine.shape == (300, 2)
        torch.testing.assert_close(mine, alone, rtol=1e-4, atol=1e-5)


def test_models_of_different_shapes_or_batch_sizes_cannot_share_a_stack():
    small, sch = build("linear", 10, 0)
    torch.manual_seed(0)
    wide = NoiseModel(2, 10, hidden=32, depth=1)
    gen = torch.Generator().manual_seed(0)
    with pytest.raises(ConfigError, match="architecture"):
        train_ddpm_stack([StackMember(small, sch, data(0, 100), gen), StackMember(wide, sch, data(1, 100), gen)],
                         steps=2, batch_size=16, progress=False)
    with pytest.raises(ConfigError, match="batch_size"):
        other, _ = build("linear", 10, 1)
        train_ddpm_stack([StackMember(small, sch, data(0, 100), gen), StackMember(other, sch, data(1, 30), gen)],
                         steps=2, batch_size=64, progress=False)


def test_plan_stacks_groups_equal_keys_into_near_equal_stacks():
    from trainlab.diffusion.stacked import plan_stacks

    keys = [2] * 20 + [3] * 5 + [2]
    stacks = plan_stacks(keys, max_size=8)
    assert sorted(i for s in stacks for i in s) == list(range(26))
    assert all(len({keys[i] for i in s}) == 1 and len(s) <= 8 for s in stacks)
    assert sorted(len(s) for s in stacks) == [5, 7, 7, 7]
