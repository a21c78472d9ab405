"""Smoke test of ddpm-steps in quick mode: the study's columns, saved samples, sane metric values."""

import math

import numpy as np
import pytest
import torch
from helpers import (assert_same_table, load_noise_model, outputs_when_saved, read_metrics, read_summary, read_table,
                     run_quick)

from trainlab.checkpoints import list_checkpoints
from trainlab.errors import ConfigError

# noise predictions at every step of the shortest chain: what sampling asks of a model
PROBE = (torch.linspace(-1, 1, 40).view(20, 2), torch.arange(20) % 10)


def test_ddpm_steps_quick(tmp_path, monkeypatch):
    trained = outputs_when_saved(monkeypatch, "ddpm_steps", lambda model: model(*PROBE))
    run_dir = run_quick("ddpm-steps", tmp_path)
    columns, rows = read_table(run_dir, "steps")
    for col in ("dataset", "T", "nll", "nll_study", "emd_mean", "emd_std", "train_time_s", "sample_time_s"):
        assert col in columns
    assert [(r["dataset"], int(r["T"])) for r in rows] == [("moons", 10), ("moons", 50)]
    for r in rows:
        assert r["status"] == "done"
        assert float(r["emd_mean"]) > 0 and float(r["emd_std"]) >= 0
        assert float(r["emd_ratio"]) > 0.5  # a 120-step model is no better than fresh real data
        assert math.isfinite(float(r["nll"])) and math.isfinite(float(r["nll_study"]))
        assert float(r["train_time_s"]) > 0 and float(r["sample_time_s"]) > 0
        samples = np.load(run_dir / "samples" / f"moons_T{r['T']}.npy", allow_pickle=False)
        assert samples.shape == (600, 2) and np.isfinite(samples).all()
        # samples live in the data's [-1, 1] scale: most of them land inside it
        assert (np.abs(samples) <= 1.5).mean() > 0.9
    # the models of one data set share its real-vs-real EMD floor (drawn once per split)
    floors = {r["emd_floor"] for r in read_metrics(run_dir)}
    assert len(floors) == 1 and floors.pop() > 0
    summary = read_summary(run_dir)
    assert summary["emd_ratio_moons"] == pytest.approx(float(rows[1]["emd_ratio"]))
    assert (run_dir / "figures" / "samples.png").exists()

    # every model is a checkpoint: the trained network with its schedule (the table's abar_T)
    assert list_checkpoints(run_dir) == sorted(trained) == ["moons_T10", "moons_T50"]
    for r in rows:
        model, scheduler, _ = load_noise_model(run_dir, f"moons_T{r['T']}")
        assert torch.equal(model(*PROBE), trained[f"moons_T{r['T']}"])
        assert float(scheduler.alphas_cumprod[-1]) == float(r["abar_T"])


def test_ddpm_steps_rejects_unknown_dataset(tmp_path):
    with pytest.raises(ConfigError):
        run_quick("ddpm-steps", tmp_path, datasets=["swissroll"])


def test_ddpm_steps_learns_the_users_own_points(tmp_path):
    # the study's extra dataset was such a file: any (N, ...) array, named after the file
    ring = np.random.default_rng(0).normal(size=(1400, 2))
    ring /= np.linalg.norm(ring, axis=1, keepdims=True)
    np.save(tmp_path / "ring.npy", 3.0 * ring + 5.0)  # scaled to [-1, 1] on loading
    run_dir = run_quick("ddpm-steps", tmp_path, data_file=str(tmp_path / "ring.npy"), Ts=[20])
    _, rows = read_table(run_dir, "steps")
    assert [(r["dataset"], int(r["T"]), r["status"]) for r in rows] == [("ring", 20, "done")]
    assert (run_dir / "samples" / "ring_T20.npy").exists()
    assert "emd_ratio_ring" in read_summary(run_dir)


def test_ddpm_steps_refuses_a_data_file_smaller_than_the_heldout_split(tmp_path):
    np.save(tmp_path / "few.npy", np.zeros((50, 2)))
    with pytest.raises(ConfigError, match="data_file has 50 points"):
        run_quick("ddpm-steps", tmp_path, data_file=str(tmp_path / "few.npy"))


def test_stacked_and_one_at_a_time_give_the_same_table(tmp_path):
    # two data dimensions (two stacks), two T each; timings differ, everything else agrees
    kwargs = dict(datasets=["moons", "helix"], Ts=[10, 30], train_steps=40)
    _, stacked = read_table(run_quick("ddpm-steps", tmp_path, **kwargs), "steps")
    _, alone = read_table(run_quick("ddpm-steps", tmp_path, stacked=False, **kwargs), "steps")
    assert [(r["dataset"], r["T"]) for r in stacked] == [("moons", "10"), ("moons", "30"), ("helix", "10"),
                                                         ("helix", "30")]
    assert_same_table(stacked, alone, skip=("train_time_s", "sample_time_s"))
