import json

import pytest
import torch

from helpers import read_summary, read_table, run_quick

from trainlab.checkpoints import checkpoint_info, list_checkpoints, load_checkpoint
from trainlab.data import write_idx
from trainlab.execute import build_config
from trainlab.experiments._data import load_splits
from trainlab.experiments.registry import get_experiment
from trainlab.nn.mlp import MLP
from trainlab.train.loop import evaluate


def _reloaded_accuracies(run_dir, name: str, overrides: list[str]) -> dict[str, float]:
    """Accuracy on every split of checkpoint ``name`` of ``run_dir``, loaded into a fresh MLP."""
    cfg = build_config(get_experiment("mnist-binary"), [*overrides, "device=cpu"], quick=True)
    _, split = load_splits(cfg, "cpu", classes=cfg.classes)
    model = MLP(**checkpoint_info(run_dir, name)["architecture"])
    load_checkpoint(run_dir, name, model)
    return {f"{s}_acc": evaluate(model, *split[s])["acc"] for s in split}


def test_quick_table_has_the_seeds_columns(tmp_path):
    run_dir = run_quick("mnist-binary", tmp_path)
    columns, rows = read_table(run_dir, "batch_sizes")
    assert columns == ["batch_size", "train_time_s", "train_acc", "val_acc", "test_acc", "status"]
    assert {r["status"] for r in rows} == {"done"}
    assert json.loads((run_dir / "run.json").read_text())["status"] == "done"
    assert [int(r["batch_size"]) for r in rows] == [2, 16, 128, 1024]
    for row in rows:
        for split in ("train", "val", "test"):
            assert 0 <= float(row[f"{split}_acc"]) <= 100
        assert float(row["train_time_s"]) > 0
    # 0 vs 1 on digits is easy: the small batch sizes must learn it
    assert float(rows[0]["test_acc"]) > 90
    assert (run_dir / "figures" / "batch_sizes.png").is_file()
    assert "(fc1): Linear(in_features=64, out_features=5" in (run_dir / "report.md").read_text()
    assert read_summary(run_dir)["test_acc"] > 50
    # every model is a checkpoint that gives its row's accuracies exactly
    assert list_checkpoints(run_dir) == sorted(f"bs{bs}_seed0" for bs in (2, 16, 128, 1024))
    for row in rows:
        accs = _reloaded_accuracies(run_dir, f"bs{row['batch_size']}_seed0", [])
        assert accs == {k: float(row[k]) for k in accs}


def test_several_seeds_add_std_columns(tmp_path):
    run_dir = run_quick("mnist-binary", tmp_path, seeds=2, batch_sizes=[16, 128])
    columns, rows = read_table(run_dir, "batch_sizes")
    assert "test_acc_std" in columns and "n" in columns
    assert all(r["n"] == "2" for r in rows)


def test_same_seed_same_tables(tmp_path):
    def deterministic(run_dir):
        columns, rows = read_table(run_dir, "batch_sizes")
        return [{k: v for k, v in r.items() if k != "train_time_s"} for r in rows]

    a = run_quick("mnist-binary", tmp_path / "a", seed=7)
    b = run_quick("mnist-binary", tmp_path / "b", seed=7)
    c = run_quick("mnist-binary", tmp_path / "c", seed=8, classes=[3, 8])
    assert deterministic(a) == deterministic(b)
    assert deterministic(a) != deterministic(c)


def test_runs_on_any_folder_with_the_four_idx_files(tmp_path):
    """data_dir= works on a small folder in the real MNIST format, with no network."""
    import numpy as np

    rng = np.random.default_rng(0)
    folder = tmp_path / "mini"
    for split, n in (("train", 120), ("t10k", 40)):
        labels = rng.integers(0, 2, n).astype(np.uint8)
        # class 1 is bright in the left half, class 0 in the right: learnable
        images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        images[labels == 1, :, :14] += 150
        images[labels == 0, :, 14:] += 150
        write_idx(folder / f"{split}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{split}-labels-idx1-ubyte.gz", labels)
    run_dir = run_quick("mnist-binary", tmp_path / "runs", dataset="mnist", data_dir=str(folder), epochs=3)
    columns, rows = read_table(run_dir, "batch_sizes")
    assert float(rows[1]["test_acc"]) > 90  # batch size 16


def test_a_sweep_trains_stacks_and_gives_the_table_of_trial_by_trial(tmp_path, monkeypatch):
    import importlib

    from helpers import assert_same_table

    from trainlab.files import read_jsonl
    from trainlab.sweeps import run_sweep

    items = ["hidden=2,5,10", "lr=0.001,0.01", "batch_sizes=[16,128]", "epochs=2"]
    batched = run_sweep("mnist-binary", items, quick=True, out=tmp_path / "batched")
    assert [r["batch"] for r in read_jsonl(batched / "trials.jsonl")] == [6] * 6  # one batch of six trials
    monkeypatch.setattr(importlib.import_module("trainlab.experiments.mnist_binary"), "BATCHABLE", ())
    alone = run_sweep("mnist-binary", items, quick=True, out=tmp_path / "alone")
    assert all("batch" not in r for r in read_jsonl(alone / "trials.jsonl"))
    _, rows_batched = read_table(batched, "trials")
    _, rows_alone = read_table(alone, "trials")
    times = tuple(k for k in rows_alone[0] if "time" in k or k in ("seconds", "folder", "batch"))
    assert_same_table(rows_batched, rows_alone, skip=times, rtol=1e-6)

    # a stacked trial saves its member of the stack: a plain MLP that gives its table exactly
    # and equals the model that trained alone (up to float rounding)
    for record, solo in zip(read_jsonl(batched / "trials.jsonl"), read_jsonl(alone / "trials.jsonl")):
        assert record["params"] == solo["params"]
        trial, solo_dir = batched / record["path"], alone / solo["path"]
        overrides = [f"{k}={v}" for k, v in record["params"].items()] + ["batch_sizes=[16,128]", "epochs=2"]
        _, rows = read_table(trial, "batch_sizes")
        assert list_checkpoints(trial) == list_checkpoints(solo_dir) == ["bs128_seed0", "bs16_seed0"]
        for row in rows:
            name = f"bs{row['batch_size']}_seed0"
            accs = _reloaded_accuracies(trial, name, overrides)
            assert accs == {k: float(row[k]) for k in accs}
            stacked_weights = torch.load(trial / "checkpoints" / f"{name}.pt", weights_only=True)
            solo_weights = torch.load(solo_dir / "checkpoints" / f"{name}.pt", weights_only=True)
            for key, w in solo_weights.items():
                torch.testing.assert_close(stacked_weights[key], w, rtol=1e-5, atol=1e-6)


def test_a_run_whose_training_diverged_says_so_in_table_summary_and_status(tmp_path):
    run_dir = run_quick("mnist-binary", tmp_path, lr=3e37, batch_sizes=[16, 64])  # the largest Adam takes
    _, rows = read_table(run_dir, "batch_sizes")
    assert [r["status"] for r in rows] == ["diverged", "diverged"]
    assert all(r[f"{split}_acc"] == "" for r in rows for split in ("train", "val", "test"))  # NaN, not 50 %
    summary = read_summary(run_dir)
    assert summary["diverged"] == 2 and summary["best_batch_size"] is None
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "diverged" and "diverged" in info["error"]
    assert "diverged" in (run_dir / "report.md").read_text()
    assert list_checkpoints(run_dir) == []  # a diverged model is no model to hand back


def test_a_diverging_sweep_trial_leaves_its_batch_mate_as_it_is_alone(tmp_path):
    from trainlab.files import read_jsonl
    from trainlab.sweeps import run_sweep

    sweep = run_sweep("mnist-binary", ["lr=3e37,0.01", "batch_sizes=[64]"], quick=True, out=tmp_path / "sweep")
    records = {r["params"]["lr"]: r for r in read_jsonl(sweep / "trials.jsonl")}
    assert records[3e37]["batch"] == 2  # the two trials trained as one stack
    assert records[3e37]["status"] == "diverged"
    bad_dir = sweep / records[3e37]["path"]
    assert json.loads((bad_dir / "run.json").read_text())["status"] == "diverged"
    alone = run_quick("mnist-binary", tmp_path / "alone", lr=0.01, batch_sizes=[64])
    _, mate = read_table(sweep / records[0.01]["path"], "batch_sizes")
    _, solo = read_table(alone, "batch_sizes")
    assert records[0.01]["status"] == "done" and mate[0]["status"] == solo[0]["status"] == "done"
    for split in ("train", "val", "test"):
        assert float(mate[0][f"{split}_acc"]) == pytest.approx(float(solo[0][f"{split}_acc"]), abs=0.3)
