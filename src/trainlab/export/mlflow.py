"""MLflow runs: params (the resolved config, flattened), metrics with steps, the summary, artifacts.

The store is ``$MLFLOW_TRACKING_URI`` or, by default, ``sqlite:///<runs folder>/mlflow.db``
(the runs folder is the ``--out`` the run was written to), with artifacts beside it in
``mlartifacts/``. The MLflow experiment is the trainlab experiment (a sweep's, for a sweep
and its nested trials).

Every MLflow run carries the tag ``trainlab.folder`` (the run folder's absolute path);
exporting a folder again replaces the runs with its tag (they are deleted, then logged
anew), so a folder has one MLflow run however often it is exported or logged live.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any, Sequence

from trainlab.export import source
from trainlab.export.records import Scalar, numbers

FOLDER_TAG = "trainlab.folder"
DATABASE = "mlflow.db"
ARTIFACT_DIR = "mlartifacts"
# MLflow's batch limits (mlflow.utils.validation): 1000 metrics, 100 params per call.
_METRICS_PER_CALL = 1000
_PARAMS_PER_CALL = 100
# What MLflow accepts in a metric or param name; ``activation=relu/loss`` becomes ``activation:relu/loss``.
_NOT_ALLOWED = re.compile(r"[^/\w.\- :]")
_STATUS = {"done": "FINISHED", "diverged": "FINISHED", "failed": "FAILED", "running": "RUNNING"}


def tracking_uri(runs_folder: Path) -> str:
    """``$MLFLOW_TRACKING_URI``, else the SQLite store in ``runs_folder``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(runs_folder / DATABASE).resolve()}"


def default_runs_folder(folder: Path) -> Path:
    """The ``--out`` a run folder was written to: ``<out>/<experiment>/<run>``."""
    return folder.resolve().parent.parent


def key(tag: str) -> str:
    return _NOT_ALLOWED.sub("_", tag.replace("=", ":"))


class MlflowSink:
    """One run folder's MLflow run (nested under ``parent`` for a sweep's trial)."""

    NAME = "mlflow"

    def __init__(self, folder: Path, client: Any, experiment_id: str, parent: str | None = None):
        from mlflow.entities import Param

        self.folder = folder
        self.client = client
        self.experiment_id = experiment_id
        path = str(folder.resolve())
        quoted = path.replace("\\", "\\\\").replace("'", "\\'")
        for old in client.search_runs([experiment_id], filter_string=f"tags.`{FOLDER_TAG}` = '{quoted}'"):
            client.delete_run(old.info.run_id)
        tags = {FOLDER_TAG: path, **({"mlflow.parentRunId": parent} if parent else {})}
        self.run_id = client.create_run(experiment_id, run_name=folder.name, tags=tags).info.run_id
        params = [Param(key(k), str(v)) for k, v in source.params(folder).items()]
        for start in range(0, len(params), _PARAMS_PER_CALL):
            client.log_batch(self.run_id, params=params[start:start + _PARAMS_PER_CALL])

    @classmethod
    def open(cls, folder: Path, runs_folder: Path | None = None) -> "MlflowSink":
        """The MLflow run of a top-level run or sweep folder, in the store for ``runs_folder``."""
        from mlflow.tracking import MlflowClient

        uri = tracking_uri(runs_folder if runs_folder is not None else default_runs_folder(folder))
        client = MlflowClient(tracking_uri=uri)
        name = str(source.info(folder).get("experiment", folder.parent.name))
        found = client.get_experiment_by_name(name)
        if found is not None:
            experiment_id = found.experiment_id
        else:
            experiment_id = client.create_experiment(name, artifact_location=_artifact_location(uri))
        return cls(folder, client, experiment_id)

    def scalars(self, items: Sequence[Scalar]) -> None:
        self._metrics([(key(s.tag), s.value, s.step) for s in items])

    def trial(self, folder: Path) -> "MlflowSink":
        return MlflowSink(folder, self.client, self.experiment_id, parent=self.run_id)

    def finish(self) -> None:
        """The summary (numbers as ``summary/<key>`` metrics at step 0, text as tags), the folder's
        tables, figures and report as artifacts, and the run's status."""
        from mlflow.entities import RunTag

        summary = source.summary(self.folder)
        self._metrics([(key(f"summary/{k}"), v, 0) for k, v in numbers(summary).items()])
        text = [RunTag(key(f"summary/{k}"), str(v)) for k, v in summary.items() if isinstance(v, (str, bool))]
        if text:
            self.client.log_batch(self.run_id, tags=text)
        for name in source.ARTIFACTS:
            path = self.folder / name
            if path.is_dir():
                self.client.log_artifacts(self.run_id, str(path), artifact_path=name)
            elif path.is_file():
                self.client.log_artifact(self.run_id, str(path))
        status = str(source.info(self.folder).get("status", "done"))
        self.client.set_terminated(self.run_id, status=_STATUS.get(status, "KILLED"))

    def _metrics(self, items: list[tuple[str, float, int]]) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        metrics = [Metric(k, v, stamp, step) for k, v, step in items]
        for start in range(0, len(metrics), _METRICS_PER_CALL):
            self.client.log_batch(self.run_id, metrics=metrics[start:start + _METRICS_PER_CALL])


def _artifact_location(uri: str) -> str | None:
    """Artifacts beside a SQLite store (MLflow's own default is ``./mlruns`` in the working folder)."""
    if not uri.startswith("sqlite:///"):
        return None
    return (Path(uri[len("sqlite:///"):]).resolve().parent / ARTIFACT_DIR).as_uri()
