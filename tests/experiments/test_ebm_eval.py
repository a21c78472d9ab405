"""ebm-eval: the default (a known energy, regressor trained here) and the user's files, good and bad."""

import json

import pytest
import torch
from helpers import read_summary, read_table, run_quick

from trainlab.cli import main
from trainlab.nn.energy import EnergyRegressor


def test_quick_default_trains_evaluates_and_saves_a_loadable_checkpoint(tmp_path):
    run_dir = run_quick("ebm-eval", tmp_path)
    columns, rows = read_table(run_dir, "test")
    assert columns == ["points", "n", "mse", "mae", "baseline_mse", "r2", "energy_mean", "energy_std"]
    assert [r["points"] for r in rows] == ["image", "exact draw", "all"]
    overall = rows[-1]
    assert int(overall["n"]) == int(rows[0]["n"]) + int(rows[1]["n"])
    assert 0 < float(overall["mae"]) ** 2 <= float(overall["mse"])  # Jensen
    assert float(overall["r2"]) > 0.1  # the trained regressor beats predicting the mean energy
    assert "has not learnt" not in (run_dir / "text" / "verdict.md").read_text()
    assert read_summary(run_dir)["test_mse"] == pytest.approx(float(overall["mse"]))
    # the checkpoint is a plain state_dict in the study's layout, readable weights-only
    state = torch.load(run_dir / "checkpoints" / "regressor.pt", weights_only=True)
    assert list(state)[:2] == ["net.0.weight", "net.0.bias"]
    assert EnergyRegressor.from_state_dict(state).in_dim == 64
    assert set(torch.load(run_dir / "checkpoints" / "target.pt", weights_only=True)) == {
        "mean", "components", "variances", "noise_variance"}
    assert (run_dir / "figures" / "predicted_vs_true.png").is_file()


def test_user_weights_and_data_give_their_mse(tmp_path):
    torch.manual_seed(0)
    model = EnergyRegressor(12, (8, 4, 2))
    x = torch.randn(50, 12)
    energy = torch.randn(50, 1) * 3
    torch.save(model.state_dict(), tmp_path / "w.pt")
    torch.save({"x": x, "energy": energy}, tmp_path / "d.pt")
    run_dir = run_quick("ebm-eval", tmp_path, weights=tmp_path / "w.pt", data=tmp_path / "d.pt")
    _, rows = read_table(run_dir, "test")
    with torch.no_grad():
        expected = float(((model(x) - energy) ** 2).mean())
    assert [r["points"] for r in rows] == ["file", "all"]
    assert float(rows[-1]["mse"]) == pytest.approx(expected, rel=1e-5)
    assert not (run_dir / "checkpoints").exists()
    # random weights against random energies: no better than the mean, and the verdict says so
    assert float(rows[-1]["r2"]) <= 0.1
    verdict = (run_dir / "text" / "verdict.md").read_text()
    assert "has not learnt the energy" in verdict and "The given weights do not fit this test set" in verdict


def test_a_regressor_that_learnt_nothing_is_named_in_the_verdict(tmp_path):
    # at lr 1e-9 the weights stay where they started: the output is rescaled to the energies' spread but
    # carries no information about them, so R^2 <= 0, as on the seeds where the default's training fails
    run_dir = run_quick("ebm-eval", tmp_path, lr=1e-9, epochs=1)
    _, rows = read_table(run_dir, "test")
    r2 = float(rows[-1]["r2"])
    verdict = (run_dir / "text" / "verdict.md").read_text()
    assert r2 <= 0.1 and f"R^2 = {r2:.3g} <= 0.1" in verdict and "Its training failed (seed 0)" in verdict
    assert read_summary(run_dir)["status"] == "done"  # real numbers of a useless model, not a crash


def _cli_error(capsys, tmp_path, *items):
    with pytest.raises(SystemExit) as info:
        main(["run", "ebm-eval", *items, "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and len(err.splitlines()) == 1, err
    return err


def test_bad_files_end_in_one_line_and_exit_2(capsys, tmp_path):
    good = EnergyRegressor(12, (8, 4, 2)).state_dict()
    torch.save(good, tmp_path / "w.pt")
    torch.save({"x": torch.randn(5, 12), "energy": torch.randn(5, 1)}, tmp_path / "d.pt")
    torch.save(EnergyRegressor(12, (8, 4, 2)), tmp_path / "module.pt")  # a pickled model, not a state_dict
    torch.save({k: v for k, v in good.items() if k != "net.4.weight"}, tmp_path / "missing.pt")
    torch.save({"x": torch.randn(5, 13), "energy": torch.randn(5, 1)}, tmp_path / "wide.pt")
    torch.save({"x": torch.randn(5, 12)}, tmp_path / "nokey.pt")
    cases = [
        (["weights=" + str(tmp_path / "module.pt"), "data=" + str(tmp_path / "d.pt")], "pickled trainlab.nn.energy"),
        (["weights=" + str(tmp_path / "missing.pt"), "data=" + str(tmp_path / "d.pt")], "missing net.4.weight"),
        (["weights=" + str(tmp_path / "w.pt"), "data=" + str(tmp_path / "wide.pt")], "12 values but the data have 13"),
        (["weights=" + str(tmp_path / "w.pt"), "data=" + str(tmp_path / "nokey.pt")], "lacks key(s) energy"),
        (["weights=" + str(tmp_path / "w.pt")], "weights= needs data="),
        (["data=" + str(tmp_path / "d.pt")], "data= needs weights="),
    ]
    for items, fragment in cases:
        assert fragment in _cli_error(capsys, tmp_path, *items)


def test_non_finite_weights_are_refused_naming_the_file(capsys, tmp_path):
    torch.save({"x": torch.randn(5, 12), "energy": torch.randn(5, 1)}, tmp_path / "d.pt")
    for i, bad in enumerate((float("nan"), float("inf"), -float("inf"))):
        state = EnergyRegressor(12, (8, 4, 2)).state_dict()
        state["net.2.weight"][1, 3] = bad
        torch.save(state, tmp_path / f"w{i}.pt")
        err = _cli_error(capsys, tmp_path, f"weights={tmp_path / f'w{i}.pt'}", f"data={tmp_path / 'd.pt'}")
        assert f"weights file {tmp_path / f'w{i}.pt'} holds NaN or Inf values (in net.2.weight)" in err
    assert not list((tmp_path / "runs").glob("*/*/summary.json"))  # refused before any result


def test_a_diverged_regressor_says_diverged_and_its_checkpoint_is_refused(tmp_path):
    from trainlab.errors import DataError

    run_dir = run_quick("ebm-eval", tmp_path, lr=3e37, epochs=2)  # Adam's steps overflow the weights
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "diverged" and "diverged" in info["error"]
    assert read_summary(run_dir)["status"] == "diverged"
    with pytest.raises(DataError, match="regressor.pt holds NaN or Inf values"):
        run_quick("ebm-sample", tmp_path / "sample", from_run=run_dir)
