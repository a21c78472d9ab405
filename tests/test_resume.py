"""Resuming a stopped run (``--resume``): the snapshot store, and a resumed run against an uninterrupted one."""

import json

import numpy as np
import pytest
import torch

from helpers import comparable_results, run_quick, stop_and_resume
from trainlab.errors import ConfigError
from trainlab.execute import resume_config
from trainlab.resume import RunSnapshots, STATE_DIR, MANIFEST
from trainlab.train.snapshots import pack, restore_rng, rng_states, unpack


def test_pack_and_unpack_round_trip_nested_state_with_its_types():
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    snap = pack(opt=opt.state_dict(), history=[{"epoch": 1, "loss": 0.5}], array=np.arange(4.0), step=7)
    json.dumps(snap.info)  # the JSON half is plain JSON
    back = unpack(snap)
    assert back["step"] == 7 and back["history"] == [{"epoch": 1, "loss": 0.5}]
    assert np.array_equal(back["array"], np.arange(4.0))
    assert set(back["opt"]["state"]) == {0, 1}  # parameter indices stay ints
    fresh = torch.optim.Adam(torch.nn.Linear(3, 2).parameters(), lr=0.1)
    fresh.load_state_dict(back["opt"])
    assert torch.equal(fresh.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])


def test_restored_rng_draws_what_the_saved_one_would():
    gen, npgen = torch.Generator().manual_seed(3), np.random.default_rng(5)
    state = unpack(pack(rng=rng_states(gen, npgen)))["rng"]
    expected = (torch.rand(3, generator=gen), npgen.random(2), torch.rand(2), np.random.rand(2))
    restore_rng(state, gen, npgen)
    again = (torch.rand(3, generator=gen), npgen.random(2), torch.rand(2), np.random.rand(2))
    for a, b in zip(expected, again):
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_store_keeps_the_last_snapshot_of_each_job_and_commits_with_the_manifest(tmp_path):
    store = RunSnapshots(tmp_path, every_s=0)
    store.save("a", pack(step=1, w=torch.ones(2)))
    store.save("a", pack(step=2, w=torch.full((2,), 2.0)))
    store.save("b", pack(finished=True, step=9))
    files = sorted(p.name for p in (tmp_path / STATE_DIR).iterdir())
    assert files == ["a-2.json", "a-2.pt", "b-3.json", "b-3.pt", MANIFEST]
    again = RunSnapshots(tmp_path, every_s=0)
    assert unpack(again.load("a"))["step"] == 2 and torch.equal(unpack(again.load("a"))["w"], torch.full((2,), 2.0))
    assert again.load("b").finished and again.load("c") is None


@pytest.mark.parametrize("stop_after", [1, 3, 6])
def test_a_stopped_and_resumed_run_ends_as_an_uninterrupted_one(tmp_path, monkeypatch, stop_after):
    # mnist-binary's quick profile: 4 batch sizes x 5 epochs, a snapshot at every epoch boundary
    # (4 per job, then its finished one): stops inside the first job, at its end, inside the second.
    whole = run_quick("mnist-binary", tmp_path / "whole", checkpoint_every=0)
    resumed = stop_and_resume("mnist-binary", tmp_path / "resumed", stop_after, monkeypatch)
    assert comparable_results(resumed) == comparable_results(whole)
    info = json.loads((resumed / "run.json").read_text())
    assert info["status"] == "done" and info["resumed"] == 1


def test_resume_refuses_a_finished_run_and_a_changed_config(tmp_path, monkeypatch):
    done = run_quick("mnist-binary", tmp_path, checkpoint_every=0)
    with pytest.raises(ConfigError, match="already finished"):
        resume_config(done)
    folder = None
    from trainlab.processes import Interrupted
    from trainlab.resume import STOP_AFTER

    monkeypatch.setenv(STOP_AFTER, "2")
    with pytest.raises(Interrupted) as stop:
        run_quick("mnist-binary", tmp_path, checkpoint_every=0)
    folder = stop.value.folder
    with pytest.raises(ConfigError, match="recorded config, which has lr=0.01, not 0.1"):
        resume_config(folder, ["lr=0.1"])
    exp, cfg = resume_config(folder, ["lr=0.01"])  # repeating a recorded value is fine
    assert cfg.lr == 0.01
