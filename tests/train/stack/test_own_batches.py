"""Per-trial data in one stack against the oracle: every trial trained alone with nn.Module + torch.optim."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler

from trainlab.device import torch_generator
from trainlab.errors import ConfigError
from trainlab.train.loop import epoch_order, make_optimizer
from trainlab.train.stack import (
    PerTrialStack,
    TrialData,
    TrialSpec,
    init_trial,
    logits_many,
    train_alone,
    train_per_trial,
    trial_loss,
)

def pool(n=120, d=10, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen)
    y = (x[:, 0] + 0.5 * x[:, 1] > 1.0).long()  # ~25 % positives
    return x, y


def params_of(model):
    return [model.fc1.weight, model.fc1.bias, model.fc2.weight, model.fc2.bias]


ROWS_A = torch.arange(0, 70)
ROWS_B = torch.arange(40, 101)  # 61 rows: a different size, overlapping A


def group_trials(rows):
    """One group: four trials sharing the batches, each with another loss."""
    return [
        TrialData(rows),
        TrialData(rows, class_weights=(1.0, 7.5)),
        TrialData(rows, focal_gamma=2.0, output_bias=(-0.1, -2.3)),
        TrialData(rows, logit_offset=(-0.2, -1.7), class_weights=(2.0, 0.5)),
    ]


@pytest.mark.parametrize("activation,optimizer,lr", [("relu", "adam", 1e-2), ("sigmoid", "sgd", 0.5)])
def test_every_trial_matches_its_solo_run_step_by_step(activation, optimizer, lr):
    x, y = pool()
    spec = TrialSpec(hidden=3, activation=activation, optimizer=optimizer, lr=lr, batch_size=16)
    data = group_trials(ROWS_A) + group_trials(ROWS_B)
    stack = PerTrialStack([spec] * 8, data, 2, 10, 2, torch.device("cpu"))
    solos = []
    for d in data:
        model = init_trial(spec, d, 10, 2)
        solos.append((model, make_optimizer(optimizer, model.parameters(), lr), trial_loss(d)))
    gen = torch.Generator().manual_seed(1)
    for step in range(6):
        # Each group its own batch; the last steps are short (padding rows weigh 0).
        sizes = [16, 16] if step < 4 else [9, 13]
        idx = torch.zeros(2, 16, dtype=torch.long)
        mask = torch.zeros(2, 16)
        for g, rows in enumerate((ROWS_A, ROWS_B)):
            idx[g, : sizes[g]] = rows[torch.randint(len(rows), (sizes[g],), generator=gen)]
            mask[g, : sizes[g]] = 1.0
        losses = stack.train_step(x[idx], y[idx], mask)
        for i, (model, opt, loss_fn) in enumerate(solos):
            real = idx[i // 4, : sizes[i // 4]]
            loss = loss_fn(model(x[real]), y[real])
            opt.zero_grad()
            loss.backward()
            opt.step()
            torch.testing.assert_close(losses[i], loss.detach(), rtol=1e-5, atol=1e-6, msg=f"trial {i} step {step}")
        for i, (mine, (model, _, _)) in enumerate(zip(stack.to_models(), solos)):
            for p, q in zip(params_of(mine), params_of(model)):
                torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5, msg=f"trial {i} step {step}")


def test_train_per_trial_equals_each_trial_trained_alone(monkeypatch):
    import trainlab.workers as workers_module
    from trainlab.device import CpuPlan

    x, y = pool()
    weights_a = torch.where(y[ROWS_A] == 1, 5.0, 1.0)
    spec = TrialSpec(hidden=4, activation="relu", optimizer="adam", lr=1e-2, batch_size=16, seed=3)
    specs, data = [], []
    for rows in (ROWS_A, ROWS_B):  # 70 and 61 rows: 5 and 4 steps per epoch, so two stacks
        for d in group_trials(rows):
            specs.append(spec)
            data.append(d)
    # Resampled trials draw their own batches: a group each.
    specs += [spec, TrialSpec(hidden=4, activation="relu", optimizer="adam", lr=1e-2, batch_size=16, seed=4)]
    data += [TrialData(ROWS_A, sample_weights=weights_a, class_weights=(1.0, 2.0)),
             TrialData(ROWS_A, sample_weights=weights_a)]
    results = train_per_trial(specs, data, x, y, epochs=3, n_classes=2, progress=False)
    assert [r.spec for r in results] == specs
    for i, (s, d, result) in enumerate(zip(specs, data, results)):
        alone = train_alone(s, x, y, data=d, epochs=3, n_classes=2)
        assert result.status == alone.status == "done"
        for p, q in zip(params_of(result.model), params_of(alone.model)):
            torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-4, msg=f"trial {i}")
        np.testing.assert_allclose([h["train_loss"] for h in result.history],
                                   [h["train_loss"] for h in alone.history], rtol=1e-4)
    # Two of its three stacks at a time (threads) give the very same numbers.
    monkeypatch.setattr(workers_module, "cpu_plan", lambda *a, **k: CpuPlan(workers=2, threads=1))
    parallel = train_per_trial(specs, data, x, y, epochs=3, n_classes=2, progress=False)
    for a, b in zip(results, parallel, strict=True):
        for p, q in zip(params_of(a.model), params_of(b.model)):
            assert torch.equal(p, q)
    # Stacks: each group of four (70 and 61 rows: 5 and 4 steps per epoch) and the two resampled
    # trials, one group of one each (their batches differ) in one stack.
    assert [r.stack_size for r in results] == [4] * 8 + [2, 2]
    # Trials with the same batches but another loss end elsewhere, and resampling changes the model.
    assert not torch.allclose(results[0].model.fc1.weight, results[1].model.fc1.weight)
    assert not torch.allclose(results[8].model.fc1.weight, results[9].model.fc1.weight)


def test_train_per_trial_draws_nothing_from_torchs_global_generator():
    # Stacks run on worker threads, where another thread may hold the global generator seeded
    # to build a model (device.global_seed); see the shared-batches test of the same name.
    x, y = pool()
    spec = TrialSpec(hidden=3, activation="relu", optimizer="sgd", lr=0.1, batch_size=16)
    before = torch.get_rng_state()
    train_per_trial([spec, spec], [TrialData(ROWS_A), TrialData(ROWS_B)], x, y, epochs=1, n_classes=2, progress=False)
    assert torch.equal(torch.get_rng_state(), before)


def test_a_diverging_trial_is_marked_and_leaves_the_others_untouched():
    x, y = pool()
    good = TrialSpec(hidden=3, activation="relu", optimizer="sgd", lr=0.1, batch_size=16)
    data = [TrialData(ROWS_A), TrialData(ROWS_A, class_weights=(1.0, 3.0))]
    alone = train_per_trial([good, good], data, x, y, epochs=3, n_classes=2, progress=False)
    # An infinite logit offset makes this trial's loss NaN from the first step.
    bad = TrialData(ROWS_A, logit_offset=(0.0, float("inf")))
    with_bad = train_per_trial([good, good, good], [*data, bad], x, y, epochs=3, n_classes=2, progress=False)
    assert with_bad[2].status == "diverged" and with_bad[2].stack_size == 3 and len(with_bad[2].history) == 1
    assert all(torch.isfinite(p).all() for p in params_of(with_bad[2].model))  # frozen at zero
    for a, b in zip(with_bad[:2], alone):
        assert a.status == "done"
        for p, q in zip(params_of(a.model), params_of(b.model)):
            torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("optimizer,lr", [("adam", 1e-2), ("sgd", 0.1)])
def test_a_trial_on_non_finite_rows_never_reaches_the_trials_beside_it(optimizer, lr):
    x, y = pool()
    x[0] = float("nan")  # a row only the first two trials train on
    spec = TrialSpec(hidden=3, activation="relu", optimizer=optimizer, lr=lr, batch_size=16)
    # 30 and 21 rows: two steps each, so one stack of two groups, the second padded in its last step.
    data = [TrialData(rows, class_weights=weights) for rows in (torch.arange(0, 30), torch.arange(40, 61))
            for weights in (None, (1.0, 3.0))]
    results = train_per_trial([spec] * 4, data, x, y, epochs=3, n_classes=2, progress=False)
    assert [r.status for r in results] == ["diverged", "diverged", "done", "done"]
    assert results[2].stack_size == 4
    for d, result in zip(data[2:], results[2:]):
        alone = train_alone(spec, x, y, data=d, epochs=3, n_classes=2)
        assert alone.status == "done"
        for p, q in zip(params_of(result.model), params_of(alone.model)):
            torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose([h["train_loss"] for h in result.history],
                                   [h["train_loss"] for h in alone.history], rtol=1e-4)


def test_logits_many_keeps_a_non_finite_model_to_itself():
    x, y = pool()
    spec = TrialSpec(hidden=3, activation="tanh")
    models = [init_trial(spec, TrialData(ROWS_A), 10, 2) for _ in range(3)]
    clean = logits_many(models, x)
    with torch.no_grad():
        models[1].fc1.weight[0, 0] = float("nan")
        models[1].fc2.bias[1] = float("inf")
    poisoned = logits_many(models, x)
    assert torch.equal(poisoned[[0, 2]], clean[[0, 2]]) and not torch.isfinite(poisoned[1]).all()


def test_epoch_order_draws_what_weighted_random_sampler_draws():
    labels = torch.tensor([0] * 90 + [1] * 10)
    weights = torch.where(labels == 1, 9.0, 1.0)
    loader = DataLoader(TensorDataset(torch.arange(100)), batch_size=100,
                        sampler=WeightedRandomSampler(weights, 100, replacement=True, generator=torch_generator(7)))
    gen = torch_generator(7)
    for _ in range(3):  # three epochs: same draws, epoch after epoch
        (theirs,) = next(iter(loader))
        assert epoch_order(100, gen, weights).tolist() == theirs.tolist()
    # Weighted draws balance the classes: about half the draws are positives (9 * 10 vs 90).
    draws = torch.cat([epoch_order(100, gen, weights) for _ in range(50)])
    assert 0.4 < labels[draws].float().mean().item() < 0.6
    assert sorted(epoch_order(100, gen).tolist()) == list(range(100))  # no weights: a permutation


def test_logits_many_equals_each_models_forward():
    x, _ = pool()
    specs = [TrialSpec(hidden=5, activation=a, seed=s) for s, a in enumerate(["relu", "sigmoid", "relu", "tanh"])]
    models = [init_trial(s, TrialData(ROWS_A), 10, 3) for s in specs]
    out = logits_many(models, x, batch_size=50)
    assert out.shape == (4, 120, 3)
    for model, logits in zip(models, out):
        torch.testing.assert_close(logits, model(x), rtol=1e-5, atol=1e-6)


def test_trial_data_checks():
    with pytest.raises(ConfigError):
        TrialData(torch.arange(5), sample_weights=torch.ones(4))
    with pytest.raises(ConfigError):
        TrialData(torch.arange(5), focal_gamma=2.0, logit_offset=(0.0, -1.0))
    with pytest.raises(ConfigError):
        TrialData(torch.arange(5), class_weights=(1.0, 0.0))
    with pytest.raises(ConfigError, match="finite"):  # torch.multinomial would fail mid-training
        TrialData(torch.arange(3), sample_weights=torch.tensor([1.0, float("inf"), 1.0]))
    with pytest.raises(ConfigError):
        train_per_trial([TrialSpec(hidden=2)], [], *pool(), epochs=1)
