"""ebm-sample: MALA and ULA on the regressor and on the true energy, against exact draws."""

import math

import pytest
from helpers import read_summary, read_table, run_quick

SAMPLING_COLUMNS = ["energy", "method", "chains", "burn_in_s", "total_s", "accept_rate", "ess_bulk", "ess_tail",
                    "rhat", "ess_per_s", "tau", "outside_data_range"]


def test_quick_run_has_the_issue_columns_and_sane_values(tmp_path):
    run_dir = run_quick("ebm-sample", tmp_path, burn_in=60, n_samples=60, tsne_points=30)
    columns, rows = read_table(run_dir, "sampling")
    assert columns == SAMPLING_COLUMNS
    assert [(r["energy"], r["method"]) for r in rows] == [("regressor", "mala"), ("regressor", "ula"),
                                                          ("true", "mala"), ("true", "ula")]
    for r in rows:
        assert int(r["chains"]) == 8
        assert 0 < float(r["burn_in_s"]) < float(r["total_s"])
        assert 0 < float(r["ess_bulk"]) and float(r["ess_per_s"]) == pytest.approx(
            float(r["ess_bulk"]) / float(r["total_s"]), rel=1e-3)
        assert float(r["rhat"]) >= 0.99
        rate = float(r["accept_rate"])
        assert (rate == 1.0) if r["method"] == "ula" else (0 < rate < 1)
    _, exact = read_table(run_dir, "exact")
    for r in exact:
        # a finite-sample floor and a positive distance; a Gaussian's mean energy is d/2 + log Z
        assert float(r["sw_exact_vs_exact"]) > 0 and float(r["sw_ratio"]) > 0
        assert math.isfinite(float(r["true_energy_mean"]))
    true_mala = next(r for r in exact if (r["energy"], r["method"]) == ("true", "mala"))
    assert float(true_mala["sw_ratio"]) < 5  # on the true energy MALA's samples are near exact draws
    summary = read_summary(run_dir)
    assert summary["mala_ula_time_ratio"] > 0
    for name in ("energy_traces", "tsne_2d", "tsne_3d"):
        assert (run_dir / "figures" / f"{name}.png").is_file()
    _, diag = read_table(run_dir, "diagnostics")
    assert {r["quantity"] for r in diag} == {"energy", "pc1", "pc2"}


def test_from_run_samples_a_saved_regressor(tmp_path):
    eval_dir = run_quick("ebm-eval", tmp_path / "eval")
    run_dir = run_quick("ebm-sample", tmp_path / "sample", from_run=eval_dir, methods=["mala"], true_energy=False,
                        burn_in=20, n_samples=20, tsne_points=0, chains=4)
    _, rows = read_table(run_dir, "sampling")
    assert [(r["energy"], r["method"]) for r in rows] == [("regressor", "mala")]
    _, exact = read_table(run_dir, "exact")  # the saved true energy still gives exact draws
    assert len(exact) == 1


def test_a_regressor_trained_here_is_saved_and_reused_by_from_run(tmp_path):
    import torch

    from trainlab.experiments._ebm import load_run

    first = run_quick("ebm-sample", tmp_path / "first", methods=["mala"], true_energy=False, burn_in=20,
                      n_samples=20, tsne_points=0, chains=4)
    regressor, target = load_run(str(first), torch.device("cpu"))  # weights-only, checked before building
    assert target is not None  # the quick energy is a known Gaussian: saved beside the regressor
    assert all(torch.isfinite(p).all() for p in regressor.parameters())
    again = run_quick("ebm-sample", tmp_path / "again", from_run=first, methods=["mala"], true_energy=False,
                      burn_in=20, n_samples=20, tsne_points=0, chains=4)
    _, rows = read_table(again, "sampling")
    assert [(r["energy"], r["method"]) for r in rows] == [("regressor", "mala")]
    assert first.name in (again / "report.md").read_text()  # the report names where its energy came from


def test_an_ebm_eval_run_with_the_same_energy_settings_is_reused_not_trained_again(tmp_path):
    from helpers import comparable_results

    small = dict(methods=["mala"], burn_in=20, n_samples=20, tsne_points=0, chains=4, sw_points=100)
    other = run_quick("ebm-eval", tmp_path, epochs=9)  # another energy setting: never reused
    eval_dir = run_quick("ebm-eval", tmp_path)  # the quick energy settings are ebm-sample's
    reused = run_quick("ebm-sample", tmp_path, **small)
    report = (reused / "report.md").read_text()
    assert f"reused from the ebm-eval run {eval_dir.name}" in report and other.name not in report
    assert not (reused / "checkpoints").exists()  # nothing trained, nothing saved
    # the oracle: training the regressor here gives the same weights, so the same chains and tables
    trained = run_quick("ebm-sample", tmp_path, reuse_eval=False, **small)
    assert (trained / "checkpoints" / "regressor.pt").is_file() and "reused" not in (trained / "report.md").read_text()
    assert comparable_results(reused)["tables"] == comparable_results(trained)["tables"]
    # other energy settings: no ebm-eval run fits (the epochs=9 one differs in seed), so it trains
    fresh = run_quick("ebm-sample", tmp_path, seed=1, epochs=9, **small)
    assert (fresh / "checkpoints" / "regressor.pt").is_file() and "reused" not in (fresh / "report.md").read_text()


def test_the_verdict_warns_when_the_sampled_regressor_learnt_nothing(tmp_path):
    # the regressor's test R^2 is in the setup text (computed against the same test set ebm-eval uses), and a
    # regressor that learnt nothing (lr 1e-9: its weights stay where they started) is named in the verdict,
    # whether trained here or reused from the ebm-eval run that trained it
    small = dict(methods=["mala"], burn_in=10, n_samples=10, tsne_points=0, chains=4, sw_points=100)
    good = run_quick("ebm-sample", tmp_path / "good", **small)
    assert "The regressor's test R^2: " in (good / "text" / "setup.md").read_text()
    assert "has not learnt" not in (good / "text" / "verdict.md").read_text()
    bad = run_quick("ebm-sample", tmp_path / "bad", lr=1e-9, epochs=1, **small)
    verdict = (bad / "text" / "verdict.md").read_text()
    assert "**The regressor has not learnt the energy**" in verdict and "Its training failed (seed 0)" in verdict
    eval_dir = run_quick("ebm-eval", tmp_path / "eval", lr=1e-9, epochs=1)
    r2 = read_summary(eval_dir)["r2"]
    from_eval = run_quick("ebm-sample", tmp_path / "from", from_run=eval_dir, **small)
    verdict = (from_eval / "text" / "verdict.md").read_text()
    assert f"(R^2 = {r2:.3g} <= 0.1)" in verdict and f"The ebm-eval run {eval_dir.name} trained it" in verdict
