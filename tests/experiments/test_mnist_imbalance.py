import math

import pytest
import torch
from helpers import read_metrics, read_summary, read_table, run_quick

from trainlab.checkpoints import checkpoint_info, list_checkpoints, load_checkpoint
from trainlab.data import keep_classes, to_tensor
from trainlab.errors import ConfigError, DataError
from trainlab.execute import build_config
from trainlab.experiments._data import load_data
from trainlab.experiments.mnist_imbalance import checkpoint_name
from trainlab.experiments.registry import get_experiment
from trainlab.nn.mlp import MLP
from trainlab.train.imbalance import POSTHOC, scores
from trainlab.train.metrics import binary_metrics_stacked
from trainlab.train.stack import logits_many

VALUES = ["train_time_s", "train_acc", "val_acc", "test_acc", "f1_val", "f1_test", "ap_test", "balanced_acc_test",
          "mcc_test", "ap_val"]
COLUMNS = ["N", "n_rare_train", "n_rare_test", "strategy", "weight"] + [c for v in VALUES for c in (v, f"{v}_std")] \
    + ["n", "n_undefined"]
SETTINGS = 1 + 4 + 4 + 1 + 1 + 1 + 1  # none, loss_weight x 4 weights, resample x 4, focal, logit_adjust, 2 post-hoc


def test_quick_study_has_the_columns_and_counts_undefined_f1(tmp_path):
    run_dir = run_quick("mnist-imbalance", tmp_path)  # digits: 136 training '1's, 46 test '1's
    tables = {name: read_table(run_dir, name) for name in ("sparsed_test", "original_test")}
    for name, (columns, rows) in tables.items():
        assert columns == COLUMNS
        assert len(rows) == 5 * SETTINGS  # Ns [2, 5, 10, 25, 50]
        assert {r["strategy"] for r in rows} == {"none", "loss_weight", "resample", "focal", "logit_adjust",
                                                 "posthoc_adjust", "threshold"}
        for r in rows:
            assert r["n"] == "3" and 0 <= float(r["test_acc"]) <= 100 and 0 <= float(r["train_acc"]) <= 100
            f1 = float(r["f1_test"])  # "NaN" where every run is undefined
            assert math.isnan(f1) or 0 <= f1 <= 1
    # The original test set always holds '1's: F1 is always defined. The thinned one at N = 50 holds
    # 46 // 50 = 0: a model that predicts no '1' there has an undefined F1, never 0 or 1e-6.
    assert all(r["n_undefined"] == "0" for r in tables["original_test"][1])
    at_50 = [r for r in tables["sparsed_test"][1] if r["N"] == "50"]
    assert all(int(r["n_undefined"]) + 0 <= 3 for r in at_50) and any(r["f1_test"] == "NaN" for r in at_50)
    assert all(r["n_undefined"] == "0" for r in tables["sparsed_test"][1] if r["N"] in ("2", "5", "10"))
    # Strategies: at N = 2 (half the '1's kept) the tuned threshold and post-hoc adjustment do well.
    orig = {(r["N"], r["strategy"], r["weight"]): r for r in tables["original_test"][1]}
    assert float(orig[("2", "threshold", "-")]["f1_test"]) > 0.9
    assert float(orig[("2", "posthoc_adjust", "-")]["ap_test"]) == float(orig[("2", "none", "-")]["ap_test"])
    for figure in ("f1_vs_N", "ap_vs_N", "f1_vs_weight"):
        assert (run_dir / "figures" / f"{figure}.png").is_file()
    verdict = (run_dir / "text" / "verdict.md").read_text()
    assert "beats the baseline" in verdict and "undefined F1" in verdict

    # every trained model is a checkpoint that gives its run's test accuracy and F1 exactly
    trained = [r for r in read_metrics(run_dir) if r["test_set"] == "original" and r["strategy"] not in POSTHOC]
    assert len(trained) == 3 * 5 * (SETTINGS - 2) and len(list_checkpoints(run_dir)) == len(trained)
    cfg = build_config(get_experiment("mnist-imbalance"), ["device=cpu"], quick=True)
    data = load_data(cfg)
    images, labels = keep_classes(data.test_images, data.test_labels, cfg.classes)
    x_test, y_test = to_tensor(images, "cpu"), torch.as_tensor(labels).long()
    for r in trained:
        name = checkpoint_name(r["N"], r["strategy"], r["weight"], r["seed"])
        model = MLP(**checkpoint_info(run_dir, name)["architecture"])
        load_checkpoint(run_dir, name, model)
        measured = binary_metrics_stacked(y_test, scores(logits_many([model], x_test)))
        assert (measured["acc"][0], measured["f1"][0]) == (r["test_acc"], r["f1_test"]), name
    summary = read_summary(run_dir)
    assert summary["models"] == 5 * 3 * 11 and summary["diverged"] == 0
    assert 0 <= summary["median_f1_test_N50"] <= 1


def test_batched_and_one_at_a_time_give_the_same_table(tmp_path):
    small = dict(Ns=[5, 25], seeds=2, strategies=["none", "resample", "focal", "logit_adjust", "threshold"],
                 weights=["1", "n0/n1"])
    a = read_table(run_quick("mnist-imbalance", tmp_path / "a", **small), "original_test")[1]
    b = read_table(run_quick("mnist-imbalance", tmp_path / "b", stacked=False, **small), "original_test")[1]
    assert len(a) == len(b) == 2 * 6
    for ra, rb in zip(a, b, strict=True):
        assert (ra["N"], ra["strategy"], ra["weight"]) == (rb["N"], rb["strategy"], rb["weight"])
        # Same data, initial weights and batches: equal up to float rounding, which may flip one
        # borderline prediction (one test image of 91 moves a two-seed mean by 0.55 points).
        for key, tol in (("test_acc", 1.2), ("val_acc", 1.2), ("f1_test", 0.03), ("ap_test", 0.01)):
            assert float(ra[key]) == pytest.approx(float(rb[key]), abs=tol), key


@pytest.mark.parametrize("overrides,error", [({"weights": ["N/x"]}, ConfigError), ({"classes": [1, 1]}, ConfigError),
                                             ({"strategies": ["smote"]}, ConfigError),
                                             ({"Ns": [200]}, DataError)])  # 136 // 200 = 0 '1's left
def test_bad_settings_fail_with_one_line(tmp_path, overrides, error):
    with pytest.raises(error):
        run_quick("mnist-imbalance", tmp_path, **overrides)
