import json
import math

import pytest
from helpers import read_summary, read_table, run_quick

from trainlab.checkpoints import checkpoint_info, list_checkpoints, load_checkpoint
from trainlab.errors import ConfigError
from trainlab.execute import build_config
from trainlab.files import read_jsonl
from trainlab.experiments._data import load_splits
from trainlab.experiments.mnist_grid import checkpoint_name
from trainlab.experiments.registry import get_experiment
from trainlab.nn.mlp import MLP
from trainlab.train.loop import evaluate
from trainlab.train.stack import TrialSpec

COLUMNS = ["activation", "batch_size", "optimizer", "lr", "hidden", "train_time_s", "train_acc", "val_acc",
           "test_acc", "epochs", "status"]


def test_quick_grid_has_the_seeds_columns_and_marks(tmp_path):
    run_dir = run_quick("mnist-grid", tmp_path)
    columns, rows = read_table(run_dir, "grid")
    assert columns == COLUMNS
    assert len(rows) == 2 * 2 * 2 * 2  # activations x batch sizes x optimizers x widths of the quick grid
    assert {(r["optimizer"], float(r["lr"])) for r in rows} == {("adam", 1e-3), ("sgd", 1e-2)}
    for row in rows:
        assert row["status"] == "done"
        for split in ("train", "val", "test"):
            assert 0 <= float(row[f"{split}_acc"]) <= 100
        assert float(row["train_time_s"]) > 0
    # Adam at batch 64 with 32 relu units learns the 8x8 digits in two epochs; chance is 10 %.
    best = max(float(r["test_acc"]) for r in rows if r["optimizer"] == "adam" and r["batch_size"] == "64")
    assert best > 60
    md = (run_dir / "tables" / "grid.md").read_text()
    assert md.count("best adam") == 2 and md.count("worst sgd") == 2  # one per activation
    assert (run_dir / "figures" / "test_acc_vs_hidden.png").is_file()
    assert math.isfinite(read_summary(run_dir)["test_acc"])
    # Validation accuracy after every epoch (a tune's pruning reports), ending at the row's value;
    # the summary's val_acc (a tune's objective) is the best row's.
    for record in read_jsonl(run_dir / "metrics.jsonl"):
        assert [h["epoch"] for h in record["history"]] == list(range(1, 21)) == list(range(1, record["epochs"] + 1))
        assert record["history"][-1]["val_acc"] == record["val_acc"]
    assert read_summary(run_dir)["val_acc"] == max(float(r["val_acc"]) for r in rows)

    # every trial is a checkpoint that gives its row's accuracies exactly (trained in a stack)
    assert len(list_checkpoints(run_dir)) == len(rows)
    _, split = load_splits(build_config(get_experiment("mnist-grid"), ["device=cpu"], quick=True), "cpu")
    for row in rows:
        name = checkpoint_name(TrialSpec(hidden=int(row["hidden"]), activation=row["activation"],
                                         optimizer=row["optimizer"], lr=float(row["lr"]),
                                         batch_size=int(row["batch_size"]), seed=0))
        model = MLP(**checkpoint_info(run_dir, name)["architecture"])
        load_checkpoint(run_dir, name, model)
        assert {s: evaluate(model, *split[s])["acc"] for s in split} == {s: float(row[f"{s}_acc"]) for s in split}


def test_batched_and_one_at_a_time_give_the_same_grid(tmp_path):
    small = dict(activations=["relu"], batch_sizes=[64], hiddens=[8, 16])
    a = read_table(run_quick("mnist-grid", tmp_path / "a", **small), "grid")[1]
    b = read_table(run_quick("mnist-grid", tmp_path / "b", stacked=False, **small), "grid")[1]
    for ra, rb in zip(a, b, strict=True):
        assert [ra[k] for k in ("optimizer", "hidden")] == [rb[k] for k in ("optimizer", "hidden")]
        for split in ("train", "val", "test"):
            assert float(ra[f"{split}_acc"]) == pytest.approx(float(rb[f"{split}_acc"]), abs=0.5)


def test_several_seeds_add_std_columns(tmp_path):
    run_dir = run_quick("mnist-grid", tmp_path, seeds=2, activations=["sigmoid"], batch_sizes=[1024], hiddens=[4])
    columns, rows = read_table(run_dir, "grid")
    assert "test_acc_std" in columns and all(r["n"] == "2" for r in rows)


def test_mismatched_learning_rates_are_a_config_error(tmp_path):
    from trainlab.errors import ConfigError

    with pytest.raises(ConfigError, match="lrs"):
        run_quick("mnist-grid", tmp_path, lrs=[1e-3])


def test_diverging_trials_are_marked_and_a_grid_with_no_result_says_diverged(tmp_path):
    from trainlab.errors import ConfigError

    small = dict(activations=["relu"], batch_sizes=[64], hiddens=[8])
    partly = run_quick("mnist-grid", tmp_path / "a", lrs=[0.01, 3e38], **small)  # SGD at 3e38 diverges
    _, rows = read_table(partly, "grid")
    assert [r["status"] for r in rows] == ["done", "diverged"] and rows[1]["test_acc"] == ""
    assert read_summary(partly)["diverged"] == 1
    assert json.loads((partly / "run.json").read_text())["status"] == "done"  # its headline is a number
    lost = run_quick("mnist-grid", tmp_path / "b", lrs=[3e37, 3e38], **small)
    assert json.loads((lost / "run.json").read_text())["status"] == "diverged"
    with pytest.raises(ConfigError, match="^lrs="):  # beyond what float32 (or Adam's first step) holds
        run_quick("mnist-grid", tmp_path / "c", lrs=[0.01, 1e39], **small)
    with pytest.raises(ConfigError, match="^lrs=1e\\+38 is too large for Adam"):
        run_quick("mnist-grid", tmp_path / "c", lrs=[1e38, 0.01], **small)


def test_empty_lrs_give_each_optimizer_the_studys_rate():
    exp = get_experiment("mnist-grid")
    assert build_config(exp, ["optimizers=[sgd,adam]", "lrs=[]"]).optimizer_lrs() == [("sgd", 1e-2), ("adam", 1e-3)]
    assert build_config(exp, []).optimizer_lrs() == [("adam", 1e-3), ("sgd", 1e-2)]
    with pytest.raises(ConfigError, match=r"one learning rate per optimizer"):
        build_config(exp, ["lrs=[0.1]"])
