"""Export to TensorBoard and MLflow, read back with their own readers and checked against the run folder.

Oracles: every metrics.jsonl record of a real quick run (mnist-binary: records
``{batch_size, seed, epoch, train_loss, val_acc}``), summary.json and config.yaml, compared
with what TensorBoard's ``EventAccumulator`` and MLflow's ``search_runs`` /
``get_metric_history`` read back (TensorBoard keeps float32: compared at float32).
"""

from __future__ import annotations

import ast
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import yaml

from helpers import cli, read_metrics, read_summary, run_quick
from trainlab.errors import ConfigError
from trainlab.execute import build_config, run_experiment
from trainlab.experiments.registry import get_experiment
from trainlab.export import export, records, targets

QUICK = {"batch_sizes": [16, 128], "epochs": 3}
"""Two curves of three epochs (about a second)."""
VALUES = ("train_loss", "val_acc")
"""mnist-binary's per-epoch values; batch_size and seed (integers) label the curve."""


def expected_scalars(run_dir: Path) -> dict[str, dict[int, float]]:
    """tag -> {epoch: value}, written out from mnist-binary's record shape (not through records.py)."""
    out: dict[str, dict[int, float]] = {}
    for r in read_metrics(run_dir):
        for key in VALUES:
            out.setdefault(f"batch_size={r['batch_size']}/seed={r['seed']}/{key}", {})[r["epoch"]] = r[key]
    return out


def flat_config(run_dir: Path) -> dict[str, object]:
    values = yaml.safe_load((run_dir / "config.yaml").read_text())
    return {k: json.dumps(v) if isinstance(v, (list, type(None))) else v for k, v in values.items()}



# -- records -> scalars -----------------------------------------------------------------
def test_records_rule():
    assert records.scalars({"activation": "relu", "epoch": 3, "train_loss": 0.5}, 7) == [
        records.Scalar("activation=relu/train_loss", 0.5, 3)]
    # no x axis: the record's index; integers are values, text still labels; null, lists left out
    assert records.scalars({"dataset": "a/b", "T": 10, "nll": 1.5, "emd": None, "history": [1]}, 4) == [
        records.Scalar("dataset=a_b/T", 10.0, 4), records.Scalar("dataset=a_b/nll", 1.5, 4)]
    # with an axis, integers label the curve
    assert records.scalars({"batch_size": 16, "seed": 0, "t": 2, "x": 1.0}, 0) == [
        records.Scalar("batch_size=16/seed=0/x", 1.0, 2)]
    assert records.flatten({"a": {"b": 1}, "c": [1, 2], "d": None}) == {"a.b": 1, "c": "[1, 2]", "d": "null"}


def test_bad_input_is_one_line(tmp_path, capsys, monkeypatch):
    assert cli(["export", str(tmp_path), "--to", "tensorboard"]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
    with pytest.raises(ConfigError, match="unknown tracker 'wandb'"):
        targets("tensorboard,wandb")
    monkeypatch.setattr("trainlab.export._importable", lambda package: False)
    with pytest.raises(ConfigError, match=r"pip install 'trainlab\[mlflow\]'"):
        targets(["mlflow"])


def test_no_module_imports_a_tracker_at_import_time():
    """The trackers are extras: ``import trainlab`` (and every module) works without them."""
    import trainlab

    src = Path(trainlab.__file__).parent
    wrong = []
    for file in src.rglob("*.py"):
        for node in ast.parse(file.read_text()).body:  # the top level only: imports in functions are lazy
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            wrong += [f"{file.name}: {n}" for n in names if n.split(".")[0] in ("mlflow", "tensorboard", "tensorboardX")
                      or n.startswith("torch.utils.tensorboard")]
    assert wrong == []


# -- TensorBoard ------------------------------------------------------------------------
def read_tb(logdir: Path):
    ea = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    acc = ea.EventAccumulator(str(logdir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def tb_scalars(acc) -> dict[str, dict[int, float]]:
    return {tag: {e.step: e.value for e in acc.Scalars(tag)} for tag in acc.Tags()["scalars"]}


def test_tensorboard_export_matches_the_folder(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    run_dir = run_quick("mnist-binary", tmp_path, **QUICK)
    assert Path(export(run_dir, "tensorboard")) == run_dir / "tb"
    acc = read_tb(run_dir / "tb")
    got = tb_scalars(acc)
    summary = read_summary(run_dir)
    want = expected_scalars(run_dir)
    want.update({f"summary/{k}": {0: v} for k, v in summary.items()})
    assert got.keys() == want.keys()
    for tag, points in want.items():
        assert {s: np.float32(v) for s, v in points.items()} == {s: np.float32(v) for s, v in got[tag].items()}, tag
    # hparams: the config, flattened, with the summary's tags as its metrics
    content = acc.PluginTagToContent("hparams")
    start = next(HParamsPluginData.FromString(c) for c in content.values()
                 if HParamsPluginData.FromString(c).HasField("session_start_info"))
    hp = {k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind")) for k, v in start.session_start_info.hparams.items()}
    want_hp = {k: float(v) if isinstance(v, (int, float)) else v for k, v in flat_config(run_dir).items()}
    assert hp == want_hp
    # figures: the PNG files' own bytes
    png = run_dir / "figures" / "batch_sizes.png"
    assert acc.Images("figures/batch_sizes")[0].encoded_image_string == png.read_bytes()
    # exporting again (from the command line) rewrites tb/ whole: the same points, not twice as many
    assert cli(["export", str(run_dir), "--to", "tensorboard"]) == 0
    assert [len(p) for p in tb_scalars(read_tb(run_dir / "tb")).values()] == [len(p) for p in got.values()]
    assert len(list((run_dir / "tb").iterdir())) == 1


def test_live_tensorboard_equals_export(tmp_path):
    pytest.importorskip("tensorboard")
    import trainlab

    run = trainlab.run("mnist-binary", quick=True, device="cpu", out=tmp_path, log=["tensorboard"], **QUICK)
    assert run.status == "done"
    live = tb_scalars(read_tb(run.path / "tb"))
    export(run.path, "tensorboard")
    assert live == tb_scalars(read_tb(run.path / "tb"))
    assert set(live) >= set(expected_scalars(run.path))


def test_failing_logger_leaves_the_run_alone(tmp_path, monkeypatch, caplog):
    pytest.importorskip("tensorboard")
    from trainlab.export.tensorboard import TensorBoardSink

    def broken(self, items):
        raise OSError("disk on fire")

    monkeypatch.setattr(TensorBoardSink, "scalars", broken)
    exp = get_experiment("mnist-binary")
    with caplog.at_level(logging.WARNING, logger="trainlab.export"):
        run_dir = run_quick("mnist-binary", tmp_path, **QUICK)  # no logging: the reference
        logged = run_experiment(exp, build_config(exp, ["batch_sizes=[16,128]", "epochs=3", "device=cpu"],
                                                  quick=True), out=tmp_path / "logged", log=["tensorboard"])
    assert json.loads((logged / "run.json").read_text())["status"] == "done"
    assert read_metrics(logged) == read_metrics(run_dir)
    assert ["disk on fire" in r.getMessage() for r in caplog.records] == [True]


# -- MLflow ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One SQLite store for the module (creating its tables takes seconds); no telemetry, no network."""
    pytest.importorskip("mlflow")
    pytest.importorskip("sqlalchemy")
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        patch.setenv("DO_NOT_TRACK", "true")
        from mlflow.tracking import MlflowClient

        yield MlflowClient(tracking_uri=uri)


def runs_of(client, folder: Path):
    found = client.search_runs([e.experiment_id for e in client.search_experiments()],
                               filter_string=f"tags.`trainlab.folder` = '{folder.resolve()}'")
    return found


def check_mlflow_run(client, mlrun, run_dir: Path) -> None:
    """Params, every metric point and the summary of ``mlrun`` against ``run_dir``'s files."""
    assert mlrun.data.params == {k: str(v) for k, v in flat_config(run_dir).items()}
    for tag, points in expected_scalars(run_dir).items():
        history = client.get_metric_history(mlrun.info.run_id, tag.replace("=", ":"))
        assert {m.step: m.value for m in history} == points and len(history) == len(points), tag
    for k, v in read_summary(run_dir).items():
        assert [(m.step, m.value) for m in client.get_metric_history(mlrun.info.run_id, f"summary/{k}")] == [(0, v)]


def test_mlflow_export_matches_the_folder(tmp_path, store):
    run_dir = run_quick("mnist-binary", tmp_path, **QUICK)
    export(run_dir, "mlflow")
    export(run_dir, "mlflow")  # replaces the first: one run, no doubled points
    (mlrun,) = runs_of(store, run_dir)
    assert mlrun.info.status == "FINISHED"
    assert store.get_experiment(mlrun.info.experiment_id).name == "mnist-binary"
    check_mlflow_run(store, mlrun, run_dir)
    artifacts = {a.path for a in store.list_artifacts(mlrun.info.run_id)}
    assert {"tables", "figures", "report.html", "summary.json", "config.yaml"} <= artifacts
    assert not (tmp_path / "mlruns").exists() and not Path("mlruns").exists()


def test_mlflow_sweep_nests_its_trials(tmp_path, store):
    from trainlab.sweeps import run_sweep

    sweep_dir = run_sweep("mnist-binary", ["lr=0.01,0.1", "batch_sizes=[16]", "epochs=2", "device=cpu"],
                          quick=True, out=tmp_path, log=["mlflow"])
    (parent,) = runs_of(store, sweep_dir)
    assert parent.data.metrics["summary/done"] == 2
    trials = sorted(p.parent for p in (sweep_dir / "trials").glob("*/*/run.json"))
    assert len(trials) == 2
    for trial in trials:
        (child,) = runs_of(store, trial)
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        check_mlflow_run(store, child, trial)
    # TensorBoard: the trials under the sweep's tb/
    pytest.importorskip("tensorboard")
    export(sweep_dir, "tensorboard")
    for trial in trials:
        assert tb_scalars(read_tb(sweep_dir / "tb" / trial.name)).keys() == {
            *expected_scalars(trial), *(f"summary/{k}" for k in read_summary(trial))}
