"""Smoke test of ddpm-schedules in quick mode and its plan of models."""

import math

import pytest
import torch
from helpers import load_noise_model, outputs_when_saved, read_summary, read_table, run_quick

from trainlab.checkpoints import list_checkpoints
from trainlab.errors import ConfigError
from trainlab.experiments.ddpm_schedules import Config, plan


def test_ddpm_schedules_quick(tmp_path, monkeypatch):
    probe = (torch.linspace(-1, 1, 40).view(20, 2), torch.arange(20) % 10)
    trained = outputs_when_saved(monkeypatch, "ddpm_schedules", lambda model: model(*probe))
    run_dir = run_quick("ddpm-schedules", tmp_path)
    columns, rows = read_table(run_dir, "schedules")
    for col in ("dataset", "schedule", "beta_low", "beta_high", "T", "nll", "nll_study", "emd_mean", "emd_std"):
        assert col in columns
    got = {(r["schedule"], int(r["T"])) for r in rows}
    # linear, cosine, sigmoid at both T, and the extra linear pair only at linear_Ts=40
    assert got == {("linear 0.001-0.02", 10), ("cosine", 10), ("sigmoid 0.001-0.02", 10),
                   ("linear 0.001-0.02", 40), ("cosine", 40), ("sigmoid 0.001-0.02", 40),
                   ("linear 0.0001-0.02", 40)}
    for r in rows:
        assert r["status"] == "done"
        assert math.isfinite(float(r["nll"])) and float(r["emd_mean"]) > 0
        assert 0 < float(r["abar_T"]) < 1
    # cosine destroys the signal by the last step, the study's linear betas do not
    by = {(r["schedule"], int(r["T"])): float(r["abar_T"]) for r in rows}
    assert by[("cosine", 40)] < 1e-3 < by[("linear 0.001-0.02", 40)]
    assert (run_dir / "figures" / "nll_vs_T_moons.png").exists()
    assert set(read_summary(run_dir)) == {"nll_linear_moons", "nll_cosine_moons", "nll_sigmoid_moons"}

    # every model is a checkpoint: the trained network with its schedule (the table's abar_T)
    names = {f"moons_{r['schedule'].replace(' ', '_')}_T{r['T']}": r for r in rows}
    assert list_checkpoints(run_dir) == sorted(trained) == sorted(names)
    assert "moons_linear_0.0001-0.02_T40" in names
    for name, r in names.items():
        model, scheduler, _ = load_noise_model(run_dir, name)
        assert torch.equal(model(*probe), trained[name])
        assert float(scheduler.alphas_cumprod[-1]) == float(r["abar_T"])


def test_plan_has_no_repeats_and_config_checks_pairs():
    cfg = Config(Ts=[50, 100], beta_lows=[1e-3, 1e-4], beta_highs=[0.02, 0.02], linear_Ts=[100])
    items = plan(cfg)
    keys = [(label, T) for label, _, _, _, T in items]
    assert len(keys) == len(set(keys)) == 3 * 2 + 1  # linear 0.001-0.02 at T=100 is not trained twice
    with pytest.raises(ConfigError):
        Config(beta_lows=[1e-3], beta_highs=[0.02, 0.05])
    with pytest.raises(ConfigError):
        Config(schedules=["linear", "quadratic"])
