"""DDPM trainers that stop after a snapshot and continue from it end as an uninterrupted training.

The slots are a run folder's (:class:`trainlab.resume.RunSnapshots`, a snapshot at every
boundary); ``TRAINLAB_STOP_AFTER_SNAPSHOTS`` stops the training after its k-th save as Ctrl-C
would, and a fresh model, optimizer and generator continue from the folder.
"""

from __future__ import annotations

import copy

import pytest
import torch

from trainlab.diffusion.ddpm import NoiseModel, train_ddpm
from trainlab.diffusion.schedules import make_scheduler
from trainlab.diffusion.stacked import StackMember, train_ddpm_stack
from trainlab.resume import STOP_AFTER, RunSnapshots

STEPS, CHECK = 50, 10  # boundaries after steps 10, 20, 30, 40, then the finished snapshot


def points(seed: int, n: int = 200) -> torch.Tensor:
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(100 + seed)) * 0.5


def init(T: int, seed: int) -> NoiseModel:
    torch.manual_seed(seed)
    return NoiseModel(2, T, hidden=16, depth=1)


RECIPE = {"warmup_steps": 15, "ema_decay": 0.9}  # warm-up across a boundary; the EMA must resume too


def train_solo(slot, model: NoiseModel, gen: torch.Generator, labels=None):
    return train_ddpm(model, make_scheduler("linear", model.T), points(0), steps=STEPS, batch_size=64, lr=1e-2,
                      generator=gen, check_every=CHECK, progress=False, labels=labels, snapshot=slot, **RECIPE)


def stopped_after(k: int, folder, monkeypatch, train, *fresh):
    """Train with snapshots in ``folder`` until the k-th save stops it; then train ``fresh`` copies to the end."""
    monkeypatch.setenv(STOP_AFTER, str(k))
    with pytest.raises(KeyboardInterrupt):
        train(RunSnapshots(folder, every_s=0).slot("job"), *copy.deepcopy(fresh))
    monkeypatch.delenv(STOP_AFTER)
    return train(RunSnapshots(folder, every_s=0).slot("job"), *fresh)


def assert_same_state(a: torch.nn.Module, b: torch.nn.Module) -> None:
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q) or (p.isnan().all() and q.isnan().all()), name


@pytest.mark.parametrize("stop_after", [1, 3, 5])  # inside, at the last boundary, after the finished save
def test_train_ddpm_stopped_and_resumed_equals_an_uninterrupted_training(tmp_path, monkeypatch, stop_after):
    whole_model, whole_gen = init(20, 0), torch.Generator().manual_seed(7)
    whole = train_solo(None, whole_model, whole_gen)
    model, gen = init(20, 0), torch.Generator().manual_seed(7)
    resumed = stopped_after(stop_after, tmp_path, monkeypatch, train_solo, model, gen)
    assert_same_state(model, whole_model)
    assert resumed.history == whole.history and resumed.status == whole.status == "done"
    # the generator goes on where training left it (sampling draws from it next)
    assert torch.equal(torch.rand(3, generator=gen), torch.rand(3, generator=whole_gen))
    assert not model.training


def test_train_ddpm_resumes_label_dropout_and_a_constant_lr(tmp_path, monkeypatch):
    labels = (points(0)[:, 0] > 0).long()

    def train(slot, model, gen):
        return train_ddpm(model, make_scheduler("cosine", 20), points(0), steps=STEPS, batch_size=48, lr=1e-2,
                          generator=gen, check_every=CHECK, progress=False, labels=labels, label_dropout=0.3,
                          lr_decay=False, snapshot=slot)

    def conditional():
        torch.manual_seed(1)
        return NoiseModel(2, 20, hidden=16, depth=1, n_classes=2)

    whole_model = conditional()
    whole = train(None, whole_model, torch.Generator().manual_seed(3))
    model = conditional()
    resumed = stopped_after(2, tmp_path, monkeypatch, train, model, torch.Generator().manual_seed(3))
    assert_same_state(model, whole_model)
    assert resumed.history == whole.history


def test_a_finished_snapshot_returns_the_trained_model_without_training(tmp_path):
    trained = init(20, 0)
    result = train_solo(RunSnapshots(tmp_path, every_s=3600).slot("job"), trained, torch.Generator().manual_seed(7))
    files = sorted(p.name for p in (tmp_path / "state").iterdir())
    assert files == ["job-1.json", "job-1.pt", "resume.json"]  # not due before the end: only the finished one
    fresh = init(20, 5)  # other weights: all must come from the snapshot
    again = train_solo(RunSnapshots(tmp_path, every_s=3600).slot("job"), fresh, torch.Generator().manual_seed(0))
    assert_same_state(fresh, trained)
    assert again.history == result.history and again.seconds == result.seconds


def stack_members(poisoned: int | None = None) -> list[StackMember]:
    members = []
    for k, (kind, T) in enumerate([("linear", 10), ("cosine", 25), ("sigmoid", 40)]):
        X = points(k, n=200 + 40 * k)
        if k == poisoned:
            X = X * 1e30  # its loss overflows: it stops at the first check, the others go on
        members.append(StackMember(init(T, k), make_scheduler(kind, T), X, torch.Generator().manual_seed(k)))
    return members


def train_stack(slot, members):
    return train_ddpm_stack(members, steps=STEPS, batch_size=64, lr=1e-2, check_every=CHECK, progress=False,
                            snapshot=slot, **RECIPE)


@pytest.mark.parametrize("poisoned", [None, 1])
@pytest.mark.parametrize("stop_after", [1, 4, 5])
def test_a_stack_stopped_and_resumed_equals_an_uninterrupted_stack(tmp_path, monkeypatch, stop_after, poisoned):
    whole_members = stack_members(poisoned)
    whole = train_stack(None, whole_members)
    members = stack_members(poisoned)
    resumed = stopped_after(stop_after, tmp_path, monkeypatch, train_stack, members)
    assert [r.status for r in resumed] == [r.status for r in whole]
    assert [r.status for r in whole] == (["done"] * 3 if poisoned is None else ["done", "diverged", "done"])
    for mine, theirs, result, expected in zip(members, whole_members, resumed, whole):
        assert_same_state(mine.model, theirs.model)
        assert result.history == expected.history
        assert torch.equal(torch.rand(3, generator=mine.generator), torch.rand(3, generator=theirs.generator))
