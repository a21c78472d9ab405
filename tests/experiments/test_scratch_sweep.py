"""Smoke test: scratch-sweep in quick mode writes the grid, the average-loss tables and the curves."""

import json

from helpers import read_summary, read_table, run_quick

from trainlab.checkpoints import list_checkpoints, read_checkpoint
from trainlab.execute import build_config
from trainlab.experiments._data import load_splits
from trainlab.experiments.registry import get_experiment
from trainlab.scratch.network import NeuralNetwork


def test_scratch_sweep_quick(tmp_path):
    run_dir = run_quick("scratch-sweep", tmp_path)
    columns, rows = read_table(run_dir, "sweep")
    assert columns[:4] == ["hidden_units", "learning_rate", "avg_train_loss", "avg_val_loss"]
    assert [(int(r["hidden_units"]), float(r["learning_rate"])) for r in rows] == [(5, 0.1), (5, 0.01), (50, 0.1), (50, 0.01)]
    for r in rows:
        assert r["status"] == "done"
        for key in ("avg_train_loss", "avg_val_loss", "final_train_loss", "final_val_loss"):
            assert 0 < float(r[key]) < 3.0, (key, r)  # cross-entropy of 10 classes starts near ln 10 = 2.3
        assert float(r["final_train_loss"]) < float(r["avg_train_loss"])  # it learns
    by = {(int(r["hidden_units"]), float(r["learning_rate"])): r for r in rows}
    # After 4 epochs on digits, lr 0.1 is far ahead of lr 0.01 at either width.
    for h in (5, 50):
        assert float(by[h, 0.1]["final_val_loss"]) < float(by[h, 0.01]["final_val_loss"])

    for name in ("avg_train_loss", "avg_val_loss"):
        pcols, prows = read_table(run_dir, name)
        assert pcols == ["hidden_units", "lr=0.1", "lr=0.01"]
        assert [int(p["hidden_units"]) for p in prows] == [5, 50]
        key = name
        assert float(prows[1]["lr=0.01"]) == float(by[50, 0.01][key])
    assert (run_dir / "figures" / "loss_curves.png").exists()
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 4 * 4  # four models, four epochs each
    summary = read_summary(run_dir)
    assert summary["val_loss"] == min(float(r["final_val_loss"]) for r in rows)

    # every network is a checkpoint that gives its row's validation loss and accuracy exactly
    assert list_checkpoints(run_dir) == sorted(["h5_lr0.1", "h5_lr0.01", "h50_lr0.1", "h50_lr0.01"])
    exp = get_experiment("scratch-sweep")
    _, split = load_splits(build_config(exp, ["device=cpu"], quick=True), "cpu")
    X_val, y_val = (t.numpy() for t in split["val"])
    for (h, lr), r in by.items():
        state, info = read_checkpoint(run_dir, f"h{h}_lr{lr:g}")
        net = NeuralNetwork.from_state_dict(state, info["architecture"])
        assert net.layer_sizes[1] == h and net.learning_rate == lr
        assert net.loss(X_val, y_val) == float(r["final_val_loss"])
        assert net.score(X_val, y_val) == float(r["val_acc"])


def test_a_sweep_where_every_network_diverged_finishes_diverged_with_its_figures(tmp_path):
    run_dir = run_quick("scratch-sweep", tmp_path, lrs=[1e30])  # every loss overflows
    _, rows = read_table(run_dir, "sweep")
    assert rows and all(r["status"] == "diverged" for r in rows)
    assert read_summary(run_dir)["diverged"] == read_summary(run_dir)["models"] > 0
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "diverged" and "diverged" in info["error"]
    assert (run_dir / "figures" / "final_val_loss.png").is_file()  # a linear axis, not a crash
    assert list_checkpoints(run_dir) == []  # diverged networks are no models to hand back


def test_a_tune_searches_one_network_per_trial_and_prunes_on_its_validation_loss(tmp_path):
    import pytest

    optuna = pytest.importorskip("optuna")
    from helpers import cli

    from trainlab.files import read_jsonl
    from trainlab.sweeps.tune_folder import STUDY_NAME, study_url

    code = cli(["tune", "scratch-sweep", "hidden=int(4,256,log)", "lr=loguniform(1e-3,1)", "epochs=3",
                "--metric", "val_loss", "--mode", "min", "--trials", "3", "--quick", "--out", str(tmp_path)])
    assert code == 0
    (tune_dir,) = (tmp_path / "scratch-sweep-tune").iterdir()
    study = optuna.load_study(study_name=STUDY_NAME, storage=study_url(tune_dir))
    records = read_jsonl(tune_dir / "trials.jsonl")
    assert len(records) == len(study.trials) == 3
    for record, trial in zip(records, study.trials):
        run_dir = tune_dir / record["path"]
        # one network per trial: the sampled width and rate, not the quick profile's grid
        assert {(m["hidden_units"], m["learning_rate"]) for m in read_jsonl(run_dir / "metrics.jsonl")} == \
            {(trial.params["hidden"], trial.params["lr"])}
        # the pruner saw the validation loss after every epoch, as metrics.jsonl has it
        epochs = read_jsonl(run_dir / "metrics.jsonl")
        assert trial.intermediate_values == {m["epoch"]: m["val_loss"] for m in epochs}
        if record["status"] == "pruned":  # the median pruner may stop a trial worse than the others
            assert trial.state.name == "PRUNED" and len(epochs) == record["epochs"] < 3
        else:
            assert len(epochs) == 3 and trial.value == read_summary(run_dir)["val_loss"] == epochs[-1]["val_loss"]
    assert "pruned" in {r["status"] for r in records}  # trial 2 trails both after its first epoch (seeded TPE)
