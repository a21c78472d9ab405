"""The tune's test numbers: shown once, from the best trial's own run or from its refit on training +
validation images (``--refit``); the trials themselves are never chosen on them. mnist-binary on digits."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("optuna")

import trainlab  # noqa: E402
from helpers import cli  # noqa: E402

FIXED = {"batch_sizes": [64], "epochs": 2, "device": "cpu", "classes": [1, 7]}


def test_without_refit_the_report_shows_the_best_trials_own_test_numbers(tmp_path):
    result = trainlab.tune("mnist-binary", {"lr": "loguniform(1e-3,1e-1)"}, trials=2, metric="val_acc", quick=True,
                           out=tmp_path, **FIXED)
    best = result.best
    summary = result.summary
    assert summary["test_from"] == "best trial" and result.refit is None
    assert summary["test_acc"] == best.summary["test_acc"]  # oracle: the best trial's own summary.json
    assert (result.path / summary["test_folder"]).resolve() == best.path.resolve()
    assert "test_acc" not in result.trials.columns  # the table the best is chosen from has no test numbers
    assert "The best trial's own run" in (result.path / "report.md").read_text()


def test_refit_retrains_the_best_settings_on_training_and_validation_images(tmp_path):
    result = trainlab.tune("mnist-binary", {"lr": "loguniform(1e-3,1e-1)"}, trials=2, metric="val_acc", quick=True,
                           refit=True, out=tmp_path, **FIXED)
    refit, best = result.refit, result.best
    assert refit is not None and refit.path.parent.parent == result.path / "refit"
    assert refit.status == "done" and refit.config.train_on_val and not best.config.train_on_val
    changed = {k for k, v in vars(refit.config).items() if vars(best.config)[k] != v}
    assert changed == {"train_on_val"}  # the chosen settings, nothing else changed
    assert result.summary["test_from"] == "refit" and result.summary["test_acc"] == refit.summary["test_acc"]
    # Its training split is the trial's training + validation images (the reports' data lines count them).
    (n_train, n_val), (refit_train, refit_val) = split_counts(best), split_counts(refit)
    assert (refit_train, refit_val) == (n_train + n_val, n_val)
    assert "retrained on the training and validation images" in (result.path / "report.md").read_text()


def test_refit_is_refused_before_anything_runs_where_the_recipe_holds_out_no_validation_split(tmp_path, capsys):
    code = cli(["tune", "adam-bump", "alpha=uniform(0.1,0.5)", "--metric", "final_loss", "--mode", "min", "--refit",
                "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "adam-bump holds out no validation split" in err[0] and "drop --refit" in err[0]
    assert not tmp_path.joinpath("adam-bump-tune").exists()


def split_counts(run) -> tuple[int, int]:
    text = (run.path / "report.md").read_text()
    found = re.search(r"(\d+) train, (\d+) validation", text)
    return int(found.group(1)), int(found.group(2))
