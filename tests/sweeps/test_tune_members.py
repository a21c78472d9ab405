"""Member-by-member pruning of a stacked trial: mnist-grid's grid trials, each put to the tune's pruner.

Oracles: the trial's run folder (its grid table and metrics.jsonl), a plain run of the same
config (the members a tune leaves alone train as they would with no tune), and the study.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

optuna = pytest.importorskip("optuna")

import trainlab  # noqa: E402
import trainlab.errors  # noqa: E402
from trainlab.files import read_jsonl  # noqa: E402
from trainlab.sweeps import tuning  # noqa: E402
from trainlab.sweeps.tune_folder import STUDY_NAME  # noqa: E402
from trainlab.sweeps.tuning import run_tune  # noqa: E402

# Two grid trials (widths 8 and 16) in one stack, on digits, a few epochs.
SETTINGS = {"dataset": "digits", "activations": ["relu"], "optimizers": ["adam"], "lrs": [0.01], "batch_sizes": [64],
            "hiddens": [8, 16], "device": "cpu"}
GRID = [f"{key}={value}".replace("'", "").replace(" ", "") for key, value in SETTINGS.items()]


class AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial):
        return True


class PruneWidth8AtEpoch2(optuna.pruners.BasePruner):
    """Gives up on the width-8 member once it has reported epoch 2; never on anything else."""

    def prune(self, study, trial):
        return "_h8_" in trial.user_attrs.get("member", "") and trial.last_step >= 2


def grid_rows(folder):
    return pd.read_csv(folder / "tables" / "grid.csv").set_index("hidden")


def test_an_always_prune_pruner_prunes_every_member_and_the_trial(tmp_path, monkeypatch):
    monkeypatch.setattr(tuning, "make_pruner", lambda name: AlwaysPrune())
    path = run_tune("mnist-grid", [*GRID, "epochs=int(3,4)"], trials=1, metric="val_acc", out=tmp_path)
    [record] = read_jsonl(path / "trials.jsonl")
    assert (record["status"], record["epochs"]) == ("pruned", 1)
    folder = path / record["path"]
    assert json.loads((folder / "run.json").read_text())["pruned_epoch"] == 1
    rows = grid_rows(folder)
    assert list(rows["status"]) == ["pruned", "pruned"] and list(rows["epochs"]) == [1, 1]
    assert [len(r["history"]) for r in read_jsonl(folder / "metrics.jsonl")] == [1, 1]


def test_a_pruned_member_stops_and_the_other_trains_as_in_a_plain_run(tmp_path, monkeypatch):
    monkeypatch.setattr(tuning, "make_pruner", lambda name: PruneWidth8AtEpoch2())
    path = run_tune("mnist-grid", [*GRID, "epochs=int(4,5)"], trials=1, metric="val_acc", out=tmp_path)
    [record] = read_jsonl(path / "trials.jsonl")
    assert record["status"] == "done"
    folder = path / record["path"]
    rows = grid_rows(folder)
    assert rows.loc[8, "status"] == "pruned" and rows.loc[8, "epochs"] == 2
    assert rows.loc[16, "status"] == "done" and rows.loc[16, "epochs"] == record["params"]["epochs"]
    plain = trainlab.run("mnist-grid", out=tmp_path / "plain", **SETTINGS, epochs=record["params"]["epochs"])
    alone = plain.tables["grid"].set_index("hidden")
    assert rows.loc[16, "val_acc"] == pytest.approx(alone.loc[16, "val_acc"], abs=1e-4)
    assert rows.loc[16, "test_acc"] == pytest.approx(alone.loc[16, "test_acc"], abs=1e-4)
    assert record["summary"]["val_acc"] == pytest.approx(rows.loc[16, "val_acc"])
    # The trial's curve in the study is its best member at every epoch, from the histories in metrics.jsonl.
    histories = [r["history"] for r in read_jsonl(folder / "metrics.jsonl")]
    best = {}
    for history in histories:
        for h in history:
            best[h["epoch"]] = max(best.get(h["epoch"], -1.0), h["val_acc"])
    trial = optuna.load_study(study_name=STUDY_NAME, storage=f"sqlite:///{path / 'study.db'}").trials[0]
    assert trial.intermediate_values == pytest.approx(best)
    assert histories[-1][-1]["val_acc"] == pytest.approx(rows.loc[16, "val_acc"])  # final == last epoch's


def test_tuning_a_recipe_without_its_validation_split_names_the_fix(tmp_path):
    with pytest.raises(trainlab.errors.ConfigError, match=r"summary has no 'val_l1'.*val_fraction=0.1"):
        run_tune("autoencoder", ["lr=loguniform(1e-3,1e-2)", "archs=[mlp]", "latents=[2]", "seeds=1", "epochs=1",
                                 "device=cpu"], trials=1, metric="val_l1", mode="min", quick=True, out=tmp_path)


def test_stacks_on_worker_threads_are_pruned_member_by_member(tmp_path, monkeypatch):
    from trainlab import workers
    from trainlab.device import CpuPlan

    seen_threads = set()

    class PruneBatch64(optuna.pruners.BasePruner):
        """Gives up on the batch-64 members after epoch 1; reads the study as the median pruner does."""

        def prune(self, study, trial):
            import threading

            seen_threads.add(threading.current_thread().name)
            study.get_trials(deepcopy=False)  # the SQLite study, read from a worker thread
            return "_bs64_" in trial.user_attrs.get("member", "")

    monkeypatch.setattr(tuning, "make_pruner", lambda name: PruneBatch64())
    monkeypatch.setattr(workers, "cpu_plan", lambda *a, **k: CpuPlan(workers=2, threads=1))
    items = [*GRID[:-3], "batch_sizes=[64,128]", "hiddens=[8,16]", "device=cpu", "epochs=int(3,4)"]
    path = run_tune("mnist-grid", items, trials=1, metric="val_acc", out=tmp_path)
    [record] = read_jsonl(path / "trials.jsonl")
    assert record["status"] == "done" and record["summary"]["pruned"] == 2
    rows = pd.read_csv(path / record["path"] / "tables" / "grid.csv")
    assert {(r.batch_size, r.status, r.epochs) for r in rows.itertuples()} == {
        (64, "pruned", 1), (128, "done", record["params"]["epochs"])}
    assert seen_threads and "MainThread" not in seen_threads
