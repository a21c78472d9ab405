"""Trials on shared batches (StackedMLP, train_trials) against the oracle: each trial trained alone with nn.Module + torch.optim."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from trainlab.data import load_images, to_tensor
from trainlab.device import torch_generator
from trainlab.errors import ConfigError
from trainlab.nn.mlp import MLP
from trainlab.train.stack import StackedMLP, TrialSpec, train_stack, train_trials
from trainlab.train.stack import trial_flops as training_flops
from trainlab.train.loop import batch_indices, evaluate, fit, make_optimizer

MIXED = [
    TrialSpec(hidden=3, activation="sigmoid", optimizer="sgd", lr=0.5, batch_size=16),
    TrialSpec(hidden=7, activation="relu", optimizer="adam", lr=1e-2, batch_size=16),
    TrialSpec(hidden=5, activation="tanh", optimizer="adam", lr=3e-3, batch_size=16),
    TrialSpec(hidden=8, activation="relu", optimizer="sgd", lr=0.1, batch_size=16),
    TrialSpec(hidden=4, activation="sigmoid", optimizer="adam", lr=1e-3, batch_size=16),
    TrialSpec(hidden=2, activation="identity", optimizer="sgd", lr=0.05, batch_size=16),
]


def toy(n=100, d=12, classes=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen)
    y = (x[:, :classes].argmax(1) + (x[:, -1] > 1).long()) % classes
    return x, y


def solo(spec, in_dim, classes):
    torch.manual_seed(spec.seed)
    model = MLP(in_dim, spec.hidden, classes, spec.activation)
    return model, make_optimizer(spec.optimizer, model.parameters(), spec.lr)


def params_of(model):
    return [model.fc1.weight, model.fc1.bias, model.fc2.weight, model.fc2.bias]


def test_every_trial_matches_its_solo_run_step_by_step():
    x, y = toy()
    stack = StackedMLP(MIXED, 12, 4, torch.device("cpu"))
    solos = [solo(s, 12, 4) for s in MIXED]
    loss_fn = nn.CrossEntropyLoss()
    batches = list(batch_indices(100, 16, torch_generator(0), torch.device("cpu")))
    for step, idx in enumerate(batches):
        losses = stack.train_step(x[idx], y[idx])
        for k, i in enumerate(stack.order):
            model, opt = solos[i]
            loss = loss_fn(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            torch.testing.assert_close(losses[k], loss.detach(), rtol=1e-5, atol=1e-6)
        for model, (mine, _) in zip(stack.to_models(), (solos[i] for i in stack.order), strict=True):
            for p, q in zip(params_of(model), params_of(mine), strict=True):
                torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5, msg=f"step {step}")
    # Off-block weights of the output layer never move away from exactly zero.
    off_block = torch.ones_like(stack.params[2], dtype=torch.bool)
    for k, rows in enumerate(stack.slices):
        off_block[k * 4 : (k + 1) * 4, rows] = False
    assert torch.all(stack.params[2][off_block] == 0)


def test_train_stack_equals_fit_alone_and_reports_in_spec_order():
    x, y = toy(n=90)
    results = train_stack(MIXED, x, y, epochs=3, n_classes=4, evals={"train": (x, y)}, progress=False)
    assert [r.spec for r in results] == MIXED
    for spec, result in zip(MIXED, results, strict=True):
        model, opt = solo(spec, 12, 4)
        history = fit(model, x, y, optimizer=opt, loss_fn=nn.CrossEntropyLoss(), epochs=3,
                      batch_size=spec.batch_size, generator=torch_generator(spec.seed), progress=False)
        for p, q in zip(params_of(result.model), params_of(model), strict=True):
            torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-4)
        assert result.status == "done" and len(result.history) == 3
        np.testing.assert_allclose([r["train_loss"] for r in result.history],
                                   [r["train_loss"] for r in history.history], rtol=1e-4)
        assert result.metrics["train_acc"] == pytest.approx(evaluate(model, x, y)["acc"], abs=1.2)
    assert sum(r.seconds for r in results) == pytest.approx(results[0].stack_seconds)


def test_a_diverging_trial_is_marked_and_leaves_the_others_untouched():
    x, y = toy()
    healthy = MIXED[:3]
    exploding = TrialSpec(hidden=6, activation="relu", optimizer="sgd", lr=1e30, batch_size=16)
    with_bad = train_stack([*healthy, exploding], x, y, epochs=3, n_classes=4, progress=False,
                           evals={"train": (x, y)})
    alone = train_stack(healthy, x, y, epochs=3, n_classes=4, progress=False, evals={"train": (x, y)})
    assert with_bad[-1].status == "diverged" and np.isnan(with_bad[-1].metrics["train_acc"])
    for a, b in zip(with_bad[:3], alone, strict=True):
        assert a.status == "done"
        for p, q in zip(params_of(a.model), params_of(b.model), strict=True):
            torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
            assert torch.isfinite(p).all()


@pytest.mark.parametrize("bad", [
    TrialSpec(hidden=6, activation="relu", optimizer="adam", lr=3e37, batch_size=16),  # the largest Adam takes
    TrialSpec(hidden=6, activation="identity", optimizer="adam", lr=1e30, batch_size=16),
    TrialSpec(hidden=6, activation="relu", optimizer="sgd", lr=3e38, batch_size=16),
])
@pytest.mark.parametrize("where", [0, 2])
def test_a_diverging_trial_never_changes_its_neighbours_solo_numbers(bad, where):
    x, y = toy()
    healthy = [MIXED[1], MIXED[0], MIXED[2], MIXED[4]]  # Adam and SGD trials with lrs below and above bad's
    specs = healthy[:where] + [bad] + healthy[where:]
    results = train_trials(specs, x, y, epochs=3, n_classes=4, evals={"train": (x, y)}, eval_every_epoch=True,
                           progress=False)
    assert results[where].status == "diverged" and np.isnan(results[where].metrics["train_acc"])
    assert results[where].stack_size == len(specs)
    for spec, result in zip(specs, results, strict=True):
        if spec is bad:
            continue
        alone = train_trials([spec], x, y, epochs=3, n_classes=4, evals={"train": (x, y)}, eval_every_epoch=True,
                             stacked=False, progress=False)[0]
        assert result.status == alone.status == "done"
        for p, q in zip(params_of(result.model), params_of(alone.model), strict=True):
            torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-4)
        for a, b in zip(result.history, alone.history, strict=True):
            assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
            assert a["train_acc"] == pytest.approx(b["train_acc"], abs=1.01)  # one sample of 100 may flip


def test_non_finite_hidden_units_stay_in_their_trial_and_mark_it():
    x, y = toy()
    stack = StackedMLP(MIXED, 12, 4, torch.device("cpu"))
    clean = stack.logits(x)
    k = 1  # its loss can stay finite (the stack zeroes its NaN units), so its weights are checked too
    with torch.no_grad():
        stack.params[0][stack.slices[k].start] = float("inf")
        stack.params[1][stack.slices[k].start + 1] = float("nan")
    poisoned = stack.logits(x)
    others = [i for i in range(len(MIXED)) if i != k]
    assert torch.equal(poisoned[:, others], clean[:, others])
    assert stack.finite() == [i != k for i in range(len(MIXED))]
    before = [p.clone() for p in stack.params]
    stack.train_step(x[:16], y[:16])
    healthy = StackedMLP(MIXED, 12, 4, torch.device("cpu"))
    healthy.train_step(x[:16], y[:16])
    for i in others:
        rows, out = stack.slices[i], slice(i * 4, (i + 1) * 4)
        torch.testing.assert_close(stack.params[0][rows], healthy.params[0][rows], rtol=0, atol=0)
        torch.testing.assert_close(stack.params[2][out], healthy.params[2][out], rtol=0, atol=0)
    assert not torch.equal(before[0][stack.slices[0]], stack.params[0][stack.slices[0]])  # it did train


def test_batched_and_solo_accuracy_agree_across_seeds():
    data = load_images("digits")
    x_all = to_tensor(data.train_images, torch.device("cpu"))
    y_all = torch.as_tensor(data.train_labels)
    x_test, y_test = to_tensor(data.test_images, torch.device("cpu")), torch.as_tensor(data.test_labels)
    specs = [TrialSpec(hidden=h, activation=a, optimizer=o, lr=lr, batch_size=32, seed=s)
             for s in range(3) for h, a, o, lr in [(16, "relu", "adam", 1e-2), (32, "sigmoid", "sgd", 0.5)]]
    batched = train_trials(specs, x_all, y_all, epochs=4, evals={"test": (x_test, y_test)}, progress=False)
    diffs = []
    for spec, result in zip(specs, batched, strict=True):
        model, opt = solo(spec, 64, 10)
        fit(model, x_all, y_all, optimizer=opt, loss_fn=nn.CrossEntropyLoss(), epochs=4,
            batch_size=32, generator=torch_generator(spec.seed), progress=False)
        solo_acc = evaluate(model, x_test, y_test)["acc"]
        assert result.metrics["test_acc"] > 70  # they learned something (chance is 10)
        diffs.append(result.metrics["test_acc"] - solo_acc)
    # Same init and batches: agreement far inside the seed-to-seed spread (one test image = 0.22 pp).
    assert max(abs(d) for d in diffs) <= 0.5


def test_training_flops_closed_form():
    specs = [TrialSpec(hidden=4), TrialSpec(hidden=10)]
    assert training_flops(specs, 784, 10, 1) == 4 * 784 * 14 + 6 * 14 * 10


@pytest.mark.parametrize("kwargs", [{"hidden": 0}, {"hidden": 4, "activation": "gelu"},
                                    {"hidden": 4, "optimizer": "rmsprop"}, {"hidden": 4, "lr": -1.0}])
def test_bad_specs_raise_config_error(kwargs):
    with pytest.raises(ConfigError):
        TrialSpec(**kwargs)


def test_one_stack_needs_one_batch_size():
    x, y = toy()
    with pytest.raises(ConfigError):
        train_stack([TrialSpec(hidden=2, batch_size=8), TrialSpec(hidden=2, batch_size=16)], x, y, epochs=1)


def test_eval_every_epoch_and_the_one_at_a_time_path_record_the_same_history():
    x, y = toy()
    spec = [TrialSpec(hidden=5, activation="relu", optimizer="adam", lr=1e-2, batch_size=16)]
    stacked = train_trials(spec, x, y, epochs=2, n_classes=4, evals={"train": (x, y)}, eval_every_epoch=True,
                           progress=False)[0]
    alone = train_trials(spec, x, y, epochs=2, n_classes=4, evals={"train": (x, y)}, eval_every_epoch=True,
                         stacked=False, progress=False)[0]
    assert [r["epoch"] for r in stacked.history] == [1, 2]
    for a, b in zip(stacked.history, alone.history, strict=True):
        assert a["train_acc"] == pytest.approx(b["train_acc"], abs=1.01)  # one sample of 100 may flip
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)


def test_stacks_on_parallel_workers_give_the_sequential_results_bit_for_bit(monkeypatch):
    import trainlab.workers as workers_module
    from trainlab.device import CpuPlan

    x, y = toy()
    specs = [TrialSpec(hidden=4, batch_size=16), TrialSpec(hidden=6, activation="tanh", batch_size=32),
             TrialSpec(hidden=3, optimizer="sgd", lr=0.1, batch_size=16, seed=1)]
    runs = {}
    for workers in (1, 2):
        monkeypatch.setattr(workers_module, "cpu_plan", lambda *a, workers=workers, **k: CpuPlan(workers=workers, threads=1))
        runs[workers] = train_trials(specs, x, y, epochs=2, n_classes=4, evals={"train": (x, y)}, progress=False)
    for a, b in zip(runs[1], runs[2]):
        assert a.spec == b.spec and a.metrics == b.metrics
        for p, q in zip(params_of(a.model), params_of(b.model)):
            assert torch.equal(p, q)


@pytest.mark.parametrize("stacked", [True, False])
def test_train_trials_draws_nothing_from_torchs_global_generator(stacked):
    # The workers' rule: stacks on worker threads must not draw from the global generator, which
    # another thread may be holding seeded to build a model (device.global_seed). Turning a trained
    # stack into models once did (nn.Linear's initialisers), and a parallel run then differed from
    # the sequential one about once in fifteen.
    x, y = toy()
    before = torch.get_rng_state()
    train_trials(MIXED[:3], x, y, epochs=1, n_classes=4, evals={"train": (x, y)}, stacked=stacked, progress=False)
    assert torch.equal(torch.get_rng_state(), before)


@pytest.mark.parametrize("stacked", [True, False])
def test_trials_a_watcher_stops_end_pruned_and_the_others_equal_their_solo_runs(stacked):
    x, y = toy()
    specs = [MIXED[1], MIXED[2], MIXED[4], MIXED[0]]
    seen: list[tuple[int, list[int]]] = []

    def watch(epoch, records):
        seen.append((epoch, sorted(records)))
        assert all("train_acc" in r and r["epoch"] == epoch for r in records.values())
        return [i for i in records if i in (1, 3) and epoch == 2]  # give up on trials 1 and 3 after epoch 2

    results = train_trials(specs, x, y, epochs=4, n_classes=4, evals={"train": (x, y)}, eval_every_epoch=True,
                           stacked=stacked, progress=False, on_epoch=watch)
    assert [r.status for r in results] == ["done", "pruned", "done", "pruned"]
    assert [len(r.history) for r in results] == [4, 2, 4, 2]
    assert all(np.isnan(results[i].metrics["train_acc"]) for i in (1, 3))
    if stacked:  # one stack: every epoch reports the trials still training
        assert seen == [(1, [0, 1, 2, 3]), (2, [0, 1, 2, 3]), (3, [0, 2]), (4, [0, 2])]
    for i in (0, 2):  # oracle: the survivors trained alone with no watcher at all
        alone = train_trials([specs[i]], x, y, epochs=4, n_classes=4, evals={"train": (x, y)}, eval_every_epoch=True,
                             stacked=False, progress=False)[0]
        for p, q in zip(params_of(results[i].model), params_of(alone.model), strict=True):
            torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-4)
        for a, b in zip(results[i].history, alone.history, strict=True):
            assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
    for i in (1, 3):  # a pruned trial's first epochs are its solo run's
        alone = train_trials([specs[i]], x, y, epochs=2, n_classes=4, progress=False, stacked=False)[0]
        assert [r["train_loss"] for r in results[i].history] == pytest.approx([r["train_loss"] for r in alone.history],
                                                                                rel=1e-4)
