"""Resuming a stopped run (``--resume``): the snapshot store, and a resumed run against an uninterrupted one."""

import json
from pathlib import Path

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


def test_a_finished_run_keeps_no_snapshots_and_a_stopped_one_keeps_them(tmp_path, monkeypatch):
    from trainlab.processes import Interrupted
    from trainlab.resume import STOP_AFTER

    done = run_quick("mnist-binary", tmp_path, checkpoint_every=0)
    assert not (done / STATE_DIR).exists() and (done / "checkpoints").is_dir()
    monkeypatch.setenv(STOP_AFTER, "2")
    with pytest.raises(Interrupted) as stop:
        run_quick("mnist-binary", tmp_path, checkpoint_every=0)
    assert (stop.value.folder / STATE_DIR / MANIFEST).is_file()


def test_cli_resume_continues_the_folder_and_refuses_a_changed_config(tmp_path, monkeypatch, capsys):
    from helpers import cli
    from trainlab.resume import STOP_AFTER

    args = ["mnist-binary", "--quick", "--device", "cpu", "checkpoint_every=0"]
    assert cli(["run", *args, "--out", str(tmp_path / "whole")]) == 0
    whole = Path(capsys.readouterr().out.splitlines()[-1])
    monkeypatch.setenv(STOP_AFTER, "3")
    assert cli(["run", *args, "--out", str(tmp_path / "stopped")]) == 130
    folder = Path(capsys.readouterr().err.strip().splitlines()[-1].removeprefix("interrupted: "))
    monkeypatch.delenv(STOP_AFTER)
    assert cli(["run", "--resume", str(folder), "lr=0.1"]) == 2
    assert "which has lr=0.01, not 0.1" in capsys.readouterr().err
    assert cli(["run", "mnist-grid", "--resume", str(folder)]) == 2
    assert "is a run of mnist-binary, not mnist-grid" in capsys.readouterr().err
    assert cli(["run", "--resume", str(folder), "checkpoint_every=0"]) == 0  # a repeated value is fine
    assert Path(capsys.readouterr().out.splitlines()[-1]) == folder
    assert comparable_results(folder) == comparable_results(whole)
    assert cli(["run", "--resume", str(folder)]) == 2
    assert "already finished (done)" in capsys.readouterr().err


def test_api_resume_returns_the_same_folder(tmp_path, monkeypatch):
    import trainlab
    from trainlab.processes import Interrupted
    from trainlab.resume import STOP_AFTER

    monkeypatch.setenv(STOP_AFTER, "2")
    with pytest.raises(Interrupted) as stop:
        trainlab.run("mnist-binary", quick=True, device="cpu", out=tmp_path, checkpoint_every=0)
    monkeypatch.delenv(STOP_AFTER)
    with pytest.raises(ConfigError, match="which has epochs=5, not 6"):
        trainlab.run(resume=stop.value.folder, epochs=6)
    run = trainlab.run(resume=stop.value.folder)
    assert run.path == stop.value.folder and run.status == "done" and run.info["resumed"] == 1


@pytest.mark.slow
def test_a_run_killed_with_sigkill_resumes_to_the_uninterrupted_tables(tmp_path):
    # A real kill at an arbitrary point after the third snapshot (mid-epoch, mid-save or between).
    import os
    import signal
    import subprocess
    import sys
    import time

    args = ["run", "mnist-binary", "--quick", "--device", "cpu", "checkpoint_every=0", "epochs=40",
            "train_limit=400", "batch_sizes=[2,16]"]
    command = [sys.executable, "-m", "trainlab", *args]
    child = subprocess.Popen([*command, "--out", str(tmp_path / "killed")], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    manifests = tmp_path / "killed" / "mnist-binary"
    while time.monotonic() < deadline and child.poll() is None:
        found = list(manifests.glob(f"*/{STATE_DIR}/{MANIFEST}"))
        if found and json.loads(found[0].read_text() or "{}").get("count", 0) >= 3:
            break
        time.sleep(0.01)
    assert child.poll() is None, "the run ended before it could be killed"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    (folder,) = manifests.iterdir()
    resumed = subprocess.run([sys.executable, "-m", "trainlab", "run", "--resume", str(folder)],
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    whole = subprocess.run([*command, "--out", str(tmp_path / "whole")], capture_output=True, text=True)
    assert comparable_results(folder) == comparable_results(Path(whole.stdout.splitlines()[-1]))
    assert json.loads((folder / "run.json").read_text())["resumed"] == 1


def test_the_readme_lists_exactly_the_resumable_experiments():
    import dataclasses
    import re

    from trainlab.experiments.registry import all_experiments

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    listed = re.search(r"<!-- resumable:start -->(.*?)<!-- resumable:end -->", text, re.S).group(1)
    assert re.findall(r"`([a-z0-9-]+)`", listed) == sorted(
        name for name, exp in all_experiments().items()
        if "checkpoint_every" in {f.name for f in dataclasses.fields(exp.config_cls)})


def test_runs_lists_the_resume_command_of_a_stopped_run(tmp_path, monkeypatch):
    import trainlab
    from trainlab.processes import Interrupted
    from trainlab.resume import STOP_AFTER

    monkeypatch.setenv(STOP_AFTER, "2")
    with pytest.raises(Interrupted) as stop:
        run_quick("mnist-binary", tmp_path, checkpoint_every=0)
    (row,) = trainlab.list_runs(tmp_path).to_dict("records")
    assert row["status"] == "interrupted" and row["note"] == f"resume: trainlab run --resume {stop.value.folder}"


def test_the_replay_ends_at_the_job_saved_last_even_when_another_job_saves_first(tmp_path):
    # Jobs in worker threads: on resume, job "b" (not the one saved last) may continue and save
    # before "a" (saved last) loads; the replay must still end when "a" loads.
    store = RunSnapshots(tmp_path, every_s=0)
    store.save("b", pack(step=1))
    store.save("a", pack(step=1))
    caught_up = []
    again = RunSnapshots(tmp_path, every_s=0, on_caught_up=lambda: caught_up.append(True))
    again.load("b")
    again.save("b", pack(step=2))
    assert not caught_up
    again.load("a")
    assert caught_up == [True]
