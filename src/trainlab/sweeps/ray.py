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

GPUs. Ray hides from a trial every GPU it did not ask for (``CUDA_VISIBLE_DEVICES``), so
a trial asking only for a CPU runs ``device=auto`` on the CPU and fails ``device=cuda``.
Each trial asks for :func:`gpu_share` GPUs: ``--gpus-per-trial`` when given, else one
where the trials' device can be CUDA and the cluster has GPUs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
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
    gpus_per_trial: float | None = None,
) -> None:
    """Run ``trials`` through Ray Tune, ``workers`` at a time, one CPU and :func:`gpu_share` GPUs each.

    Without ``address`` a local Ray with ``workers`` CPUs (and the machine's GPUs) is
    started (and shut down afterwards); with it, this process joins that cluster.
    """
    ray = require_ray()
    from ray import tune
    from ray.tune.logger import JsonLoggerCallback

    trials_dir = Path(trials_dir).resolve()
    trials_dir.mkdir(parents=True, exist_ok=True)
    by_key = {t.key: trial_record(t) for t in trials}
    started_here = not ray.is_initialized()
    if started_here:
        init_ray(ray, workers, address)
    try:
        devices = sorted({str(t.config.get("device", "auto")) for t in trials})
        gpus = gpu_share(devices, gpus_per_trial, largest_node_gpus(ray))
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
                    on_result(_lost(by_key[key], f"Ray trial error: {error_line(trial)}"))

        name = exp.name  # a worker process resolves the experiment itself: only its name travels

        def trainable(config: dict) -> None:
            from trainlab.experiments.registry import get_experiment
            from trainlab.sweeps.trials import run_trial

            record = run_trial(get_experiment(name), trial_from_record(by_key[config["key"]]), trials_dir)
            tune.report({RESULT_KEY: json.dumps(record)})

        tuner = tune.Tuner(
            tune.with_resources(trainable, {"cpu": 1, "gpu": gpus}),
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
        with quiet_tune(), contextlib.redirect_stdout(sys.stderr):
            tuner.fit()
        for key, record in by_key.items():
            if key not in seen:
                on_result(_lost(record, "Ray returned no result for this trial"))
    finally:
        if started_here:
            ray.shutdown()


def check_gpu_share(share: float) -> None:
    """Refuse in one line a ``--gpus-per-trial`` Ray cannot schedule: negative, or above 1 and not whole."""
    if not math.isfinite(share) or share < 0:
        raise ConfigError(f"--gpus-per-trial must be >= 0 (got {share:g})")
    if share > 1 and share != int(share):
        raise ConfigError(f"--gpus-per-trial {share:g}: Ray shares one GPU in fractions, or gives whole GPUs; "
                          f"use a value below 1 or {math.ceil(share)}")


def gpu_share(devices: Sequence[str], asked: float | None, node_gpus: float) -> float:
    """The GPUs each trial asks Ray for, given the trials' ``device`` settings and the most GPUs one node has.

    ``asked`` (``--gpus-per-trial``) when given; else 1 where a trial's device can be CUDA
    (``auto``, ``cuda``, ``cuda:N``) and a node has a GPU, 0 otherwise. Refused in one line,
    since every trial would fail or wait forever: ``device=cuda`` with no GPU share, and a
    share larger than any node has.
    """
    cuda = [d for d in devices if d.startswith("cuda")]
    wants = bool(cuda) or "auto" in devices
    share = asked if asked is not None else (1.0 if wants and node_gpus > 0 else 0.0)
    if cuda and share == 0:
        why = "--gpus-per-trial 0 hides the GPUs from every trial" if asked is not None else "the Ray cluster has no GPU"
        raise ConfigError(f"device={cuda[0]} but {why}; use device=auto or cpu"
                          + (", or drop --gpus-per-trial" if asked is not None else ""))
    if share > node_gpus:
        raise ConfigError(f"--gpus-per-trial {share:g} but the largest Ray node has {node_gpus:g} GPUs: "
                          "no trial could start; ask for fewer")
    return share


def largest_node_gpus(ray: Any) -> float:
    """The most GPUs one live node of the Ray cluster has (a trial runs on one node)."""
    return max((float(node.get("Resources", {}).get("GPU", 0)) for node in ray.nodes() if node.get("Alive")),
               default=0.0)


def init_ray(ray: Any, workers: int, address: str | None) -> None:
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
def quiet_tune(**more: str):
    """Legacy (silent at verbose=0) output and only the JSON logger (no TensorBoard/CSV), for this call only;
    ``more`` sets further Tune environment switches for the call."""
    wanted = {"RAY_AIR_NEW_OUTPUT": "0", "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1", **more}
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


def error_line(trial: Any) -> str:
    text = str(getattr(trial, "error_msg", "") or "worker failed")
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "worker failed"
