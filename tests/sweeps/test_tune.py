"""Tuning end to end: a toy objective with a known optimum, mnist-binary on digits, pruning,
Ctrl-C then --resume of the same study, and bad spaces refused in one line.

A probe experiment (written into a temporary folder added to ``trainlab.experiments.__path__``)
reports ``val_loss = (x - 2)^2 + 1/epoch`` every epoch, so its optimum is known and its trials
take no time.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

import trainlab  # noqa: E402
import trainlab.experiments  # noqa: E402
from helpers import cli, register_probe  # noqa: E402
from trainlab.errors import ConfigError  # noqa: E402
from trainlab.files import read_jsonl  # noqa: E402
from trainlab.processes import Interrupted  # noqa: E402
from trainlab.sweeps import tuning  # noqa: E402
from trainlab.sweeps.tune_folder import STUDY_NAME
from trainlab.sweeps.tuning import run_tune  # noqa: E402

PROBE = '''
"""A test probe for tuning: val_loss = (x - 2)^2 + 1/epoch, reported every epoch."""
import time
from dataclasses import dataclass
from pathlib import Path

from trainlab.config import BaseConfig

NAME = "tune-probe"
SUMMARY = "test probe for tuning"
RUNTIME = "~0 s"
QUICK = {}


@dataclass
class Config(BaseConfig):
    x: float = 0.0
    """The searched value."""
    y: float = 0.0
    """A second searched value that does not matter (for the importances)."""
    epochs: int = 4
    """Reports per trial."""
    ledger: str = ""
    """File that gets one line per trial start."""
    stop_file: str = ""
    """When this file exists, the trial deletes it and raises KeyboardInterrupt (a one-shot Ctrl-C)."""
    gate: str = ""
    """When set, a trial that finds two or more lines in the ledger waits until this file exists."""


def run(cfg, out):
    if cfg.ledger:
        with open(cfg.ledger, "a") as fh:
            fh.write(f"{cfg.x!r}\\n")
    while cfg.gate and len(Path(cfg.ledger).read_text().split()) > 2 and not Path(cfg.gate).exists():
        time.sleep(0.01)
    if cfg.stop_file and Path(cfg.stop_file).exists():
        Path(cfg.stop_file).unlink()
        raise KeyboardInterrupt
    for epoch in range(1, cfg.epochs + 1):
        value = (cfg.x - 2) ** 2 + 1 / epoch
        out.log(epoch=epoch, val_loss=value)
        out.report_epoch(epoch, val_loss=value)
    out.summary(headline="val_loss", val_loss=(cfg.x - 2) ** 2, test_loss=(cfg.x - 2) ** 2)
'''


@pytest.fixture
def probe(tmp_path, monkeypatch):
    yield register_probe(tmp_path, monkeypatch, "tune_probe", PROBE)
    sys.modules.pop("trainlab.experiments.tune_probe", None)


def study(tune_dir):
    return optuna.load_study(study_name=STUDY_NAME, storage=f"sqlite:///{tune_dir / 'study.db'}")


def info(folder):
    return json.loads((folder / "run.json").read_text())


def test_toy_tune_finds_the_optimum_and_folder_study_and_api_agree(probe, tmp_path):
    result = trainlab.tune("tune-probe", {"x": "uniform(-5,5)"}, trials=16, metric="val_loss", mode="min",
                           pruner="none", out=tmp_path, epochs=2)
    assert result.path.parent == tmp_path / "tune-probe-tune" and result.status == "done"
    table = result.trials
    assert list(table["trial"]) == list(range(16)) and set(table["status"]) == {"done"}
    assert "test_loss" not in table.columns  # test numbers stay in the trials' own reports
    best = result.best
    assert best.summary["val_loss"] == pytest.approx(table["val_loss"].min())
    assert best.summary["val_loss"] < 0.1  # the optimum is x = 2, val_loss 0
    # Oracle: the study in study.db holds the same trials and the same best value.
    s = study(result.path)
    assert len(s.trials) == 16 and s.best_value == pytest.approx(best.summary["val_loss"])
    assert float(s.best_params["x"]) == pytest.approx(best.config.x)
    summary = json.loads((result.path / "summary.json").read_text())
    assert (summary["trials"], summary["done"], summary["best_trial"]) == (16, 16, s.best_trial.number)
    assert (result.path / "figures" / "history.png").is_file() and "Best trial" in (result.path / "report.md").read_text()


def test_mnist_binary_tune_on_digits_finds_a_good_learning_rate(tmp_path):
    result = trainlab.tune("mnist-binary", {"lr": "loguniform(1e-3,1e-1)"}, trials=6, metric="val_acc",
                           quick=True, out=tmp_path, batch_sizes=[64], device="cpu")
    records = read_jsonl(result.path / "trials.jsonl")
    assert len(records) == len(study(result.path).trials) == 6
    best = result.best
    assert best.summary["val_acc"] >= 95
    # The per-epoch reports are the trial's metrics.jsonl validation numbers, epoch by epoch.
    metrics = [r for r in best.metrics.to_dict("records")]
    trial = next(t for t in study(result.path).trials if t.user_attrs["key"] == best.path.name.split("-")[-1])
    assert trial.intermediate_values == {int(m["epoch"]): pytest.approx(m["val_acc"]) for m in metrics}


def test_report_contents_agree_with_trials_jsonl_and_the_study(probe, tmp_path, monkeypatch):
    monkeypatch.setattr(tuning, "make_pruner", lambda name: PruneTrialOne())
    path = run_tune("tune-probe", ["x=uniform(0,4)", "y=uniform(0,1)", "epochs=5"], trials=5, metric="val_loss",
                    mode="min", out=tmp_path)
    records, s = read_jsonl(path / "trials.jsonl"), study(path)
    with open(path / "tables" / "trials.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert [int(r["trial"]) for r in table] == [r["trial"] for r in records] == [t.number for t in s.trials]
    assert [r["status"] for r in table] == [r["status"] for r in records] == ["done", "pruned", "done", "done", "done"]
    summary = json.loads((path / "summary.json").read_text())
    assert summary["best_trial"] == s.best_trial.number and summary["val_loss"] == pytest.approx(s.best_value)
    assert summary["test_from"] == "best trial"
    assert summary["test_loss"] == next(r for r in records if r["trial"] == s.best_trial.number)["summary"]["test_loss"]
    # Epochs: the pruned trial reached 2 of a full trial's 5.
    assert (summary["epochs_run"], summary["epochs_saved"]) == (sum(r["epochs"] for r in records), 3)
    assert summary["wall_s"] > 0 and "pruning saved 3 more" in (path / "report.md").read_text()
    expected = optuna.importance.get_param_importances(s, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
    with open(path / "tables" / "importances.csv", newline="") as fh:
        found = {r["parameter"]: float(r["importance"]) for r in csv.DictReader(fh)}
    assert found == pytest.approx({k: round(v, 4) for k, v in expected.items()}) and set(found) == {"x", "y"}


def test_too_few_trials_for_importances_is_one_note(probe, tmp_path):
    path = run_tune("tune-probe", ["x=uniform(0,4)", "y=uniform(0,1)", "epochs=1"], trials=2, metric="val_loss",
                    mode="min", out=tmp_path)
    assert not (path / "tables" / "importances.csv").exists()
    report = (path / "report.md").read_text()
    assert "Not computed: Optuna needs at least 3 finished trials to fit importances; this tune has 2." in report


class PruneTrialOne(optuna.pruners.BasePruner):
    """Prunes trial 1 once it has reported epoch 2; never any other."""

    def prune(self, study, trial):
        return trial.number == 1 and (trial.last_step or 0) >= 2


def test_a_pruned_trial_records_its_status_and_epoch(probe, tmp_path, monkeypatch):
    monkeypatch.setattr(tuning, "make_pruner", lambda name: PruneTrialOne())
    path = run_tune("tune-probe", ["x=uniform(0,4)", "epochs=5"], trials=3, metric="val_loss", mode="min", out=tmp_path)
    records = read_jsonl(path / "trials.jsonl")
    assert [(r["status"], r["epochs"]) for r in records] == [("done", 5), ("pruned", 2), ("done", 5)]
    pruned_folder = path / records[1]["path"]
    assert info(pruned_folder)["status"] == "pruned" and info(pruned_folder)["pruned_epoch"] == 2
    assert [m["epoch"] for m in read_jsonl(pruned_folder / "metrics.jsonl")] == [1, 2]  # the probe logs, then reports: no epoch 3
    states = [t.state for t in study(path).trials]
    assert states[1] == optuna.trial.TrialState.PRUNED
    summary = json.loads((path / "summary.json").read_text())
    assert (summary["pruned"], summary["epochs_saved"]) == (1, 3)
    assert list(trainlab.list_runs(path / "trials", status="pruned")["path"]) == [str(pruned_folder)]


def test_ctrl_c_then_resume_continues_the_same_study_without_repeating_trials(probe, tmp_path):
    ledger, stop = tmp_path / "ledger.txt", tmp_path / "stop"
    items = ["x=uniform(-5,5)", "epochs=2", f"ledger={ledger}", f"stop_file={stop}"]
    path = run_tune("tune-probe", items, trials=2, metric="val_loss", mode="min", pruner="none", out=tmp_path)
    stop.touch()  # the next trial is stopped as Ctrl-C would stop it
    with pytest.raises(Interrupted):
        run_tune("tune-probe", trials=5, metric="val_loss", mode="min", pruner="none", resume=path)
    assert info(path)["status"] == "interrupted"
    study(path).ask()  # a trial a killed process left running in the study
    run_tune("tune-probe", trials=5, metric="val_loss", mode="min", pruner="none", resume=path)
    records = read_jsonl(path / "trials.jsonl")
    assert len(records) == 5 and len({r["trial"] for r in records}) == 5
    states = Counter(t.state.name for t in study(path).trials)
    assert states == {"COMPLETE": 5, "FAIL": 2}  # the interrupted and the stale trial
    started = ledger.read_text().split()
    assert len(started) == 6 and len(set(started)) == 6  # no point was proposed twice
    assert info(path)["status"] == "done"


def test_kill_9_after_two_trials_then_resume_continues_the_study(probe, tmp_path):
    """``trainlab tune`` in another process, killed with SIGKILL while its third trial runs."""
    ledger, gate, out = tmp_path / "ledger.txt", tmp_path / "gate", tmp_path / "out"
    items = ["x=uniform(-5,5)", "epochs=2", f"ledger={ledger}", f"gate={gate}"]
    code = ("import sys, trainlab.experiments as e; e.__path__.append(sys.argv[1]); "
            "from trainlab.cli import main; main(sys.argv[2:])")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(trainlab.__file__).parents[1]),
                                                        os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", code, str(probe), "tune", "tune-probe", *items, "--trials", "5",
                             "--metric", "val_loss", "--mode", "min", "--pruner", "none", "--out", str(out)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (ledger.exists() and len(ledger.read_text().split()) == 3):  # trials 0 and 1 ended, 2 waits
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the tune did not reach its third trial in 60 s: {proc.communicate()[1]}")
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    (path,) = (out / "tune-probe-tune").iterdir()
    assert info(path)["status"] == "running"  # what the kill left
    assert [r["trial"] for r in read_jsonl(path / "trials.jsonl")] == [0, 1]
    assert Counter(t.state.name for t in study(path).trials) == {"COMPLETE": 2, "RUNNING": 1}

    gate.touch()
    assert cli(["tune", "tune-probe", "--resume", str(path), "--trials", "5", "--metric", "val_loss",
                "--pruner", "none"]) == 0
    records = read_jsonl(path / "trials.jsonl")
    trials = study(path).trials
    assert [r["trial"] for r in records] == [0, 1, 3, 4, 5]  # trial 2 died with the process
    assert Counter(t.state.name for t in trials) == {"COMPLETE": 5, "FAIL": 1}
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert [t.number for t in complete] == [r["trial"] for r in records]
    assert [t.params for t in complete] == [r["params"] for r in records]
    assert len({r["params"]["x"] for r in records}) == 5  # no ended trial's point ran again
    assert info(path)["status"] == "done"


@pytest.mark.parametrize("space, message", [
    (["nope=uniform(0,1)"], "nope"),
    (["lr=uniform(0.1,0.01)"], "lr=uniform(0.1,0.01) needs low < high"),
    (["lr=loguniform(0,0.1)"], "low bound must be > 0"),
    (["hidden=int(0,8)"], "hidden"),
    (["hidden=int(2,8,lin)"], "takes two bounds"),
    (["lr=uniform(a,1)"], "takes numbers"),
])
def test_bad_spaces_end_in_one_line_with_exit_2(tmp_path, capsys, space, message):
    code = cli(["tune", "mnist-binary", *space, "--metric", "val_acc", "--trials", "2", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and message in err[0]
    assert not (tmp_path / "mnist-binary-tune").exists()


@pytest.mark.parametrize("options, message", [
    (["--backend", "ray", "--pruner", "median"], "--pruner 'median' is not one of asha, none on the ray backend"),
    (["--pruner", "asha"], "(--pruner asha runs on --backend ray)"),
    (["--workers", "2"], "--backend ray"),
    (["--gpus-per-trial", "1"], "--backend ray"),
    (["--backend", "dask"], "--backend 'dask'"),
])
def test_bad_backend_options_end_in_one_line(tmp_path, capsys, options, message):
    code = cli(["tune", "mnist-binary", "lr=uniform(0.001,0.01)", "--metric", "val_acc", *options, "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err
    assert not tmp_path.joinpath("mnist-binary-tune").exists()


def test_a_test_metric_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="test metric"):
        run_tune("mnist-binary", ["lr=uniform(0.001,0.01)"], trials=2, metric="test_acc", out=tmp_path)
