"""One tune trial, whichever backend runs it: its config through the one run path into the tune
folder's ``trials/``, its per-epoch validation numbers handed to the backend's pruner, and its
``trials.jsonl`` record.

The local backend calls :func:`run_tune_trial` with an Optuna trial's ``report``/``should_prune``;
the Ray backend calls it inside a Ray worker with ``ray.tune.report`` (ASHA decides there). Either
way a trial the pruner stops ends ``pruned`` with the epoch it reached, in its run folder and its record.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from trainlab.config import config_hash
from trainlab.errors import ConfigError
from trainlab.execute import run_experiment
from trainlab.experiments.registry import Experiment
from trainlab.runs import Pruned
from trainlab.sweeps.trials import failed, outcome, stamp


def run_tune_trial(exp: Experiment, cfg: Any, number: int, params: Mapping[str, Any], trials_dir: Path,
                   metric: str, report: Callable[[int, float, Path], None],
                   members: Callable[[int, Mapping[str, Mapping[str, float]]], set[str]] | None = None
                   ) -> dict[str, Any]:
    """Run trial ``number`` (config ``cfg``, sampled ``params``) under ``trials_dir``; return its record.

    ``report(step, value, folder)`` gets ``metric`` after each epoch the recipe reports (and the
    trial's run folder) and raises
    :class:`~trainlab.runs.Pruned` to stop the trial. A recipe training several models as one
    reports them as ``members``; ``members(step, {name: values})`` returns those to stop (without
    it, e.g. on Ray, a stacked trial is not pruned). A trial's crash becomes status ``failed``;
    a summary without ``metric`` is the user's mistake and raises :class:`ConfigError`.
    """
    key = config_hash(cfg)
    reached = [0]
    folder: list[Path] = []

    def reporter(step: int, values: dict[str, Any]) -> set[str] | None:
        reached[0] = max(reached[0], step)  # a stacked trial's stacks report their epochs in parallel
        if "members" in values:
            return members(step, values["members"]) if members is not None else None
        if metric in values:
            report(step, float(values[metric]), folder[0])
        return None

    record: dict[str, Any] = {"trial": number, "key": key, "params": dict(params)}
    start = time.perf_counter()
    try:
        run_experiment(exp, cfg, out=trials_dir, on_folder=folder.append, reporter=reporter)
    except Pruned as exc:
        record.update(status="pruned", path=str(folder[0]), epochs=exc.epoch)
    except Exception as exc:  # a trial's crash must not stop the tune: the study records it failed
        failed(record, exc, trials_dir, exp.name, key)
    else:
        record.update(outcome(folder[0]), epochs=reached[0])
        summary = record["summary"]
        if metric not in summary:
            numbers = [k for k, v in summary.items() if isinstance(v, (int, float)) and not k.startswith("test")]
            split = " or give it a validation split, val_fraction=0.1" if getattr(cfg, "val_fraction", None) == 0 else ""
            raise ConfigError(f"{exp.name}'s summary has no {metric!r}; --metric takes one of: {', '.join(numbers)}"
                              + split)
    return stamp(record, time.perf_counter() - start, trials_dir)


def objective_value(record: Mapping[str, Any], metric: str) -> float:
    """What the study is told for an ended trial: its summary's ``metric`` when it is done and a
    finite number, else NaN (Optuna records such a trial failed)."""
    value = (record.get("summary") or {}).get(metric)
    if record.get("status") == "done" and isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return float("nan")


__all__ = ["objective_value", "run_tune_trial"]
