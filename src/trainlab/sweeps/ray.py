"""The Ray backend: the same trials, run by Ray Tune on a local Ray or an existing cluster.

Each Tune trial calls :func:`trainlab.sweeps.trials.run_trial` (exactly what the
local backend runs) and reports the trial's record; a Tune callback in this
driver process appends every record to ``trials.jsonl`` the moment it arrives,
so a killed driver resumes like a local sweep. Ray is imported only here, and
only when ``--backend ray`` is used (install it with ``pip install trainlab[ray]``).

On a cluster the trial folders are written on whichever node ran the trial:
give ``--out`` a folder on a filesystem that all nodes share to collect them.
Resuming a sweep starts a new Tune run over the pending trials (Tune's own restore is
not used); a trial stopped after a snapshot continues in its folder as on the local
backend wherever its worker sees that folder (a local Ray, or shared storage), and
starts again in a new folder where it does not.
The combined table needs only the records, which travel through Ray.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from trainlab.errors import ConfigError
from trainlab.experiments.registry import Experiment
from trainlab.sweeps.grid import Trial, trial_from_record, trial_record

RESULT_KEY = "trainlab_record"


def require_ray() -> Any:
    """Import Ray Tune or say how to install it."""
    try:
        import ray
        from ray import tune  # noqa: F401
    except ImportError:
        raise ConfigError("--backend ray needs Ray Tune: pip install 'trainlab[ray]'") from None
    return ray


def run_ray(
    exp: Experiment,
    trials: Sequence[Trial],
    trials_dir: Path,
    on_result: Callable[[dict[str, Any]], None],
    *,
    workers: int = 1,
    address: str | None = None,
) -> None:
    """Run ``trials`` through Ray Tune, ``workers`` at a time, one CPU each.

    Without ``address`` a local Ray with ``workers`` CPUs is started (and shut
    down afterwards); with it, this process joins that cluster.
    """
    ray = require_ray()
    from ray import tune
    from ray.tune.logger import JsonLoggerCallback

    trials_dir = Path(trials_dir).resolve()
    trials_dir.mkdir(parents=True, exist_ok=True)
    by_key = {t.key: trial_record(t) for t in trials}
    started_here = not ray.is_initialized()
    if started_here:
        _init(ray, workers, address)
    try:
        seen: set[str] = set()

        class Recorder(tune.Callback):
            """Runs in the driver: write each record as its trial reports it."""

            def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
                record = json.loads(result[RESULT_KEY])
                seen.add(record["key"])
                on_result(record)

            def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
                key = trial.config["key"]
                if key not in seen:  # the worker died (killed, out of memory): no record came back
                    seen.add(key)
                    on_result(_lost(by_key[key], f"Ray trial error: {_error_line(trial)}"))

        name = exp.name  # a worker process resolves the experiment itself: only its name travels

        def trainable(config: dict) -> None:
            from trainlab.experiments.registry import get_experiment
            from trainlab.sweeps.trials import run_trial

            record = run_trial(get_experiment(name), trial_from_record(by_key[config["key"]]), trials_dir)
            tune.report({RESULT_KEY: json.dumps(record)})

        tuner = tune.Tuner(
            tune.with_resources(trainable, {"cpu": 1}),
            param_space={"key": tune.grid_search(list(by_key))},
            tune_config=tune.TuneConfig(max_concurrent_trials=workers),
            run_config=tune.RunConfig(
                name="tune",
                storage_path=str(trials_dir.parent / "ray"),
                callbacks=[Recorder(), JsonLoggerCallback()],
                verbose=0,
            ),
        )
        # Tune prints an experiment banner on stdout whatever the verbosity; the CLI's
        # stdout is reserved for its own lines, so send Ray's to stderr.
        with _quiet_tune(), contextlib.redirect_stdout(sys.stderr):
            tuner.fit()
        for key, record in by_key.items():
            if key not in seen:
                on_result(_lost(record, "Ray returned no result for this trial"))
    finally:
        if started_here:
            ray.shutdown()


def _init(ray: Any, workers: int, address: str | None) -> None:
    # This file's package's parent, not `import trainlab`: that would tie the backend to the
    # top-level API (trainlab -> api -> sweeps -> ray -> trainlab, an import cycle).
    package_dir = Path(__file__).resolve().parents[1]
    if address:
        # Ship this trainlab to the cluster so its workers run the driver's code.
        runtime_env: dict[str, Any] = {"py_modules": [str(package_dir)]}
        kwargs: dict[str, Any] = {"address": address}
    else:
        # Local workers import trainlab from where this process found it (a source tree
        # on sys.path is not inherited by Ray's worker processes).
        paths = [str(package_dir.parent), os.environ.get("PYTHONPATH", "")]
        runtime_env = {"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in paths if p)}}
        kwargs = {"num_cpus": workers}
    try:
        ray.init(
            **kwargs,
            runtime_env=runtime_env,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
    except ConnectionError as exc:
        raise ConfigError(f"cannot join the Ray cluster at {address}: {exc}; check --address") from None


@contextlib.contextmanager
def _quiet_tune():
    """Legacy (silent at verbose=0) output and only the JSON logger (no TensorBoard/CSV), for this call only."""
    wanted = {"RAY_AIR_NEW_OUTPUT": "0", "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1"}
    before = {k: os.environ.get(k) for k in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _lost(trial: dict[str, Any], error: str) -> dict[str, Any]:
    return {"key": trial["key"], "index": trial["index"], "params": trial["params"], "status": "failed", "error": error}


def _error_line(trial: Any) -> str:
    text = str(getattr(trial, "error_msg", "") or "worker failed")
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "worker failed"
