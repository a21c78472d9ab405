"""The toy-set protocol: models fitted as stacks side by side score as they do one at a time."""

import dataclasses
import pytest
import torch

from trainlab import workers
from trainlab.data.toy import make_toy
from trainlab.device import CpuPlan
from trainlab.diffusion import protocol
from trainlab.diffusion.protocol import FitSpec, Protocol, fit_and_score_all, split_points
from trainlab.diffusion.schedules import make_scheduler
from trainlab.diffusion.stacked import MAX_STACK

TINY = Protocol(hidden=16, train_steps=30, batch_size=64, n_samples=300, emd_k=2, emd_n=100, ratio_n=100)


def specs() -> list[FitSpec]:
    out = []
    for name in ("moons", "circles"):
        train, held = split_points(make_toy(name, n=600)[0], heldout=300, seed=0, device=torch.device("cpu"))
        out += [FitSpec(make_scheduler("linear", T), train, held, seed=T) for T in (5, 10)]
    return out


def test_split_points_is_seeded_and_disjoint():
    X = make_toy("moons", n=100)[0]
    train, held = split_points(X, heldout=30, seed=1, device=torch.device("cpu"))
    again, _ = split_points(X, heldout=30, seed=1, device=torch.device("cpu"))
    assert train.shape == (70, 2) and held.shape == (30, 2) and torch.equal(train, again)
    assert not set(map(tuple, train.tolist())) & set(map(tuple, held.tolist()))


@pytest.mark.parametrize("n_workers", [1, 2])
def test_stacks_on_any_number_of_workers_score_as_one_model_at_a_time(monkeypatch, n_workers):
    monkeypatch.setattr(workers, "cpu_plan", lambda *a, **k: CpuPlan(workers=n_workers, threads=1))
    stacked = fit_and_score_all(specs(), TINY, stacked=True)
    alone = fit_and_score_all(specs(), TINY, stacked=False)
    for (row_s, points_s, _), (row_a, points_a, _) in zip(stacked, alone, strict=True):
        assert row_s["status"] == row_a["status"] == "done"
        assert points_s.shape == points_a.shape == (300, 2)
        for key in ("emd_ratio", "nll", "final_loss"):
            assert row_s[key] == pytest.approx(row_a[key], rel=1e-3), key


def test_a_split_spread_over_several_stacks_draws_its_emd_floor_once(monkeypatch):
    monkeypatch.setattr(workers, "cpu_plan", lambda *a, **k: CpuPlan(workers=2, threads=1))
    drawn, real_floor = [], protocol.emd_floor

    def counted(*args, **kwargs):
        drawn.append(real_floor(*args, **kwargs))
        return drawn[-1]

    monkeypatch.setattr(protocol, "emd_floor", counted)
    train, held = split_points(make_toy("moons", n=600)[0], heldout=300, seed=0, device=torch.device("cpu"))
    one_split = [FitSpec(make_scheduler("linear", 5 + T), train, held, seed=T) for T in range(MAX_STACK + 1)]
    rows = [fit.row for fit in fit_and_score_all(one_split, dataclasses.replace(TINY, train_steps=2))]
    assert len(drawn) == 1  # two stacks, one split: one floor
    assert {row["emd_floor"] for row in rows} == {drawn[0].floor}
