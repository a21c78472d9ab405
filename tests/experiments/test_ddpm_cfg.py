"""Smoke tests: ddpm-cfg in quick mode (table columns, sane values) and with a prior file (deterministic)."""

import numpy as np
import pytest

import torch
from helpers import assert_same_table, load_noise_model, read_table, run_quick

from trainlab.checkpoints import list_checkpoints
from trainlab.device import torch_generator
from trainlab.diffusion.guidance import sample_cfg
from trainlab.execute import build_config
from trainlab.experiments.registry import get_experiment


def test_quick_run_writes_the_cfg_table(tmp_path):
    run_dir = run_quick("ddpm-cfg", tmp_path)
    columns, rows = read_table(run_dir, "cfg")
    for col in ("dataset", "guidance_scale", "label", "on_target", "emd_to_class", "emd_floor"):
        assert col in columns
    assert {(float(r["guidance_scale"]), int(r["label"])) for r in rows} == {(0, 0), (0, 1), (2, 0), (2, 1)}
    for r in rows:
        assert 0 <= float(r["on_target"]) <= 100
        assert 0 <= float(r["emd_to_class"]) < 2 and 0 < float(r["emd_floor"]) < 0.5
    # even a briefly trained model puts most samples on the requested moon
    assert np.mean([float(r["on_target"]) for r in rows]) > 60
    assert (run_dir / "figures" / "samples_moons.png").is_file()
    assert (run_dir / "samples" / "moons_w2.npy").is_file()

    # the checkpoint is the model the table came from: it draws the run's samples again, bit for bit
    assert list_checkpoints(run_dir) == ["moons"]
    cfg = build_config(get_experiment("ddpm-cfg"), ["device=cpu"], quick=True)
    model, scheduler, _ = load_noise_model(run_dir, "moons")
    labels = torch.arange(2).repeat_interleave(cfg.n_samples)
    for w in cfg.guidance_scales:
        again = sample_cfg(model, scheduler, len(labels), labels, w, generator=torch_generator(cfg.seed + 1))
        np.testing.assert_array_equal(again.numpy(), np.load(run_dir / "samples" / f"moons_w{w:g}.npy"))


def test_prior_file_makes_samples_reproducible(tmp_path):
    prior = np.random.default_rng(0).normal(size=(150, 2)).astype(np.float32)
    np.save(tmp_path / "prior.npy", prior)
    a = run_quick("ddpm-cfg", tmp_path / "a", prior_file=tmp_path / "prior.npy", guidance_scales=[1.0], seed=3)
    sa = np.load(a / "samples" / "moons_w1.npy")
    assert sa.shape == (300, 2) and np.isfinite(sa).all()
    # re-running is exact: same prior, same trained model, and no noise after x_T
    c = run_quick("ddpm-cfg", tmp_path / "c", prior_file=tmp_path / "prior.npy", guidance_scales=[1.0], seed=3)
    np.testing.assert_array_equal(sa, np.load(c / "samples" / "moons_w1.npy"))


def test_prior_of_the_wrong_size_is_a_config_error(tmp_path):
    from trainlab.errors import ConfigError

    np.save(tmp_path / "prior.npy", np.zeros((7, 2), dtype=np.float32))
    with pytest.raises(ConfigError, match="n_samples"):
        run_quick("ddpm-cfg", tmp_path, prior_file=tmp_path / "prior.npy")


def test_stacked_and_one_at_a_time_give_the_same_table(tmp_path):
    kwargs = dict(datasets=["moons", "circles"], guidance_scales=[1.0], train_steps=60)
    _, stacked = read_table(run_quick("ddpm-cfg", tmp_path, **kwargs), "cfg")
    _, alone = read_table(run_quick("ddpm-cfg", tmp_path, stacked=False, **kwargs), "cfg")
    assert {r["dataset"] for r in stacked} == {"moons", "circles"}
    assert_same_table(stacked, alone)
