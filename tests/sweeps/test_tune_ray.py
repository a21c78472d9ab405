"""``trainlab tune --backend ray``: the same search on Ray Tune (OptunaSearch on the tune's study.db,
ASHA pruning on the per-epoch reports), read back by the same ``load_tune`` and report.

Starting Ray takes seconds and each Ray trial starts a worker, so the test is marked ``slow``
as the Ray sweep's are (``pytest -m "not slow"`` skips it).
"""

from __future__ import annotations

import json

import pytest

optuna = pytest.importorskip("optuna")
ray = pytest.importorskip("ray")

import trainlab  # noqa: E402
from trainlab.files import read_jsonl  # noqa: E402
from trainlab.sweeps.tune_folder import STUDY_NAME  # noqa: E402

STATE = {"done": "COMPLETE", "pruned": "PRUNED", "failed": "FAIL", "diverged": "FAIL"}


@pytest.mark.slow
def test_ray_tune_prunes_with_asha_and_records_like_the_local_backend(tmp_path):
    epochs = 3
    result = trainlab.tune("mnist-binary", {"lr": "loguniform(1e-5,1e-1)"}, trials=4, metric="val_acc", quick=True,
                           backend="ray", out=tmp_path, batch_sizes=[64], epochs=epochs, device="cpu")
    assert not ray.is_initialized()  # the local Ray it started is shut down
    assert result.status == "done"
    records = read_jsonl(result.path / "trials.jsonl")
    study = optuna.load_study(study_name=STUDY_NAME, storage=f"sqlite:///{result.study_path}")
    # Every ended trial once, numbered as in the study, with the study's state and params.
    assert sorted(r["trial"] for r in records) == [t.number for t in study.trials] == [0, 1, 2, 3]
    by_number = {t.number: t for t in study.trials}
    for record in records:
        trial = by_number[record["trial"]]
        assert trial.state.name == STATE[record["status"]] and trial.params == record["params"]
        assert trial.user_attrs["status"] == record["status"] and trial.user_attrs["key"] == record["key"]
        folder = json.loads((result.path / record["path"] / "run.json").read_text())
        assert folder["status"] == record["status"]
        # Optuna got the reports epoch by epoch, up to the epoch the trial reached.
        assert max(trial.intermediate_values) == record["epochs"]
        if record["status"] == "pruned":
            assert record["epochs"] < epochs and folder["pruned_epoch"] == record["epochs"]
        else:
            assert record["epochs"] == epochs and trial.value == pytest.approx(record["summary"]["val_acc"])
    assert {r["status"] for r in records} == {"done", "pruned"}  # ASHA stopped the trials behind at epoch 1
    # The same reader as the local backend's.
    assert result.best.summary["val_acc"] == pytest.approx(study.best_value)
    assert result.summary["pruned"] == sum(r["status"] == "pruned" for r in records)


@pytest.mark.slow
def test_ray_tune_trials_ask_for_a_gpu_where_ray_has_one(tmp_path, monkeypatch):
    """A local Ray told it has one GPU (a logical resource: this machine may have none) schedules each
    device=auto trial with one GPU, as the Ray sweep does; ``--gpus-per-trial`` would set the share."""
    from ray import tune

    asked = []
    real_init, real_with_resources = ray.init, tune.with_resources
    monkeypatch.setattr(ray, "init", lambda **kw: real_init(**kw, num_gpus=1))
    monkeypatch.setattr(tune, "with_resources",
                        lambda trainable, resources: asked.append(resources) or real_with_resources(trainable, resources))
    result = trainlab.tune("mnist-binary", {"lr": "loguniform(1e-3,1e-1)"}, trials=1, metric="val_acc", quick=True,
                           backend="ray", out=tmp_path, batch_sizes=[64], epochs=1)  # device left at auto
    assert asked == [{"cpu": 1, "gpu": 1.0}]
    assert [r["status"] for r in read_jsonl(result.path / "trials.jsonl")] == ["done"]
