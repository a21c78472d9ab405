"""Runs where users look: TensorBoard event files and MLflow runs, read from the run folder.

``trainlab export RUN_DIR --to tensorboard|mlflow`` (:func:`export`) sends a finished run or
sweep folder; ``--log tensorboard,mlflow`` on ``trainlab run`` and ``trainlab sweep`` (and
``log=[...]`` in :func:`trainlab.run`) sends it live (:func:`following`). Both read the folder,
the one source of truth, never the recipe:

* :mod:`~trainlab.export.records` turns metrics.jsonl records into (tag, value, step) scalars
  and the config into flat params;
* :mod:`~trainlab.export.source` reads the folder; :mod:`~trainlab.export.follow` sends it;
* :mod:`~trainlab.export.tensorboard` and :mod:`~trainlab.export.mlflow` are the two trackers.

The trackers are extras (``pip install 'trainlab[tensorboard]'``, ``'trainlab[mlflow]'``),
imported only when asked for.
"""

from __future__ import annotations

import importlib.util
import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from trainlab.errors import ConfigError

TARGETS = {"tensorboard": ("tensorboard",), "mlflow": ("mlflow", "sqlalchemy", "alembic")}
"""Tracker name (also the name of the trainlab extra that installs it) -> the packages it needs
(MLflow's SQLite store needs SQLAlchemy and Alembic, which mlflow-skinny leaves out)."""

_log = logging.getLogger("trainlab.export")


def targets(names: str | Sequence[str] | None) -> list[str]:
    """Tracker names from ``--log`` values (repeated or comma lists), checked: known, and installed."""
    if isinstance(names, str):
        names = [names]
    chosen: list[str] = []
    for name in (part.strip() for item in names or () for part in str(item).split(",")):
        if not name or name in chosen:
            continue
        if name not in TARGETS:
            raise ConfigError(f"unknown tracker {name!r}; choose from {', '.join(TARGETS)}")
        if not all(_importable(package) for package in TARGETS[name]):
            raise ConfigError(f"{name} is not installed; pip install 'trainlab[{name}]'")
        chosen.append(name)
    return chosen


def export(folder: str | Path, to: str, *, runs_folder: str | Path | None = None) -> str:
    """Send a finished run or sweep folder to tracker ``to``; return where it went.

    TensorBoard: ``folder/tb`` (rewritten whole). MLflow: the store named by
    ``$MLFLOW_TRACKING_URI`` or ``runs_folder``'s ``mlflow.db`` (default: the runs folder
    above ``folder``); an earlier MLflow run of the same folder is replaced.
    """
    from trainlab.export import source
    from trainlab.export.follow import Follower

    folder = source.run_folder(folder)
    chosen = targets([to])
    if len(chosen) != 1:
        raise ConfigError(f"--to names one tracker: {' or '.join(TARGETS)}")
    target = chosen[0]
    if target == "tensorboard":
        from trainlab.export import tensorboard

        with tensorboard.staged(folder) as logdir:
            Follower(folder, [tensorboard.TensorBoardSink(folder, logdir)]).finish()
        return str(folder / tensorboard.LOGDIR)
    from trainlab.export.mlflow import MlflowSink

    sink = MlflowSink.open(folder, Path(runs_folder) if runs_folder is not None else None)
    Follower(folder, [sink]).finish()
    return f"{sink.client.tracking_uri} (run {sink.run_id})"


@contextmanager
def following(folder: Path, names: Sequence[str]) -> Iterator[None]:
    """Log ``folder`` live to trackers ``names`` (checked by :func:`targets`) while the block runs.

    A tracker that fails is dropped with one warning line; it never fails or changes the run.
    """
    if not names:
        yield
        return
    from trainlab.export.follow import Follower

    def warn(sink: object, exc: Exception) -> None:
        what = sink if isinstance(sink, str) else getattr(sink, "NAME", "the live logger")
        _log.warning("warning: %s stopped logging %s: %s", what, folder,
                     " ".join(str(exc).split()) or type(exc).__name__)

    sinks = []
    for name in names:
        try:
            sinks.append(_live_sink(name, folder))
        except Exception as exc:
            warn(name, exc)
    follower = Follower(folder, sinks, on_error=warn)
    follower.start()
    try:
        yield
    finally:
        try:
            follower.stop()
        except Exception as exc:
            warn(None, exc)


def _live_sink(name: str, folder: Path):
    if name == "tensorboard":
        from trainlab.export import tensorboard

        return tensorboard.TensorBoardSink(folder, tensorboard.fresh(folder))
    from trainlab.export.mlflow import MlflowSink

    return MlflowSink.open(folder)


def _importable(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


__all__ = ["TARGETS", "export", "following", "targets"]
