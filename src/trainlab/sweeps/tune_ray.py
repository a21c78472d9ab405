"""The Ray backend of a tune (``trainlab tune ... --backend ray``): the same search on Ray Tune.

Ray Tune's ``OptunaSearch`` proposes the trials from the tune's own study (``study.db``, the
same space, TPE seeded as the local backend seeds it), so the study, ``load_tune`` and the report
read the same way whichever backend ran it, and ``--resume`` continues the study in SQLite as it
does locally (Ray Tune's own experiment restore is not used). Each Ray trial runs
:func:`~trainlab.sweeps.tune_trial.run_tune_trial` in a worker: the recipe's per-epoch validation
numbers (:meth:`~trainlab.runs.Run.report_epoch`) go to ``ray.tune.report``, where the ASHA
scheduler may stop the trial. A callback in this driver process appends every ended trial to
``trials.jsonl`` the moment it ends; a trial ASHA stopped is recorded ``pruned`` with the epoch
it reached, in the study too (Ray's own OptunaSearch would tell the study it completed).

Trials ask Ray for one CPU and :func:`~trainlab.sweeps.ray.gpu_share` GPUs (``--gpus-per-trial``).
``timeout`` stops starting trials, as on the local backend; trials already running finish.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from trainlab.config import config_hash
from trainlab.execute import build_config, current_info
from trainlab.experiments.registry import Experiment, get_experiment
from trainlab.files import append_jsonl
from trainlab.runs import RUN_INFO, Pruned, update_info
from trainlab.sweeps.ray import RESULT_KEY, error_line, gpu_share, init_ray, largest_node_gpus, quiet_tune, require_ray
from trainlab.sweeps.space import Param
from trainlab.sweeps.trials import TRIALS_DIR, TRIALS_FILE, stamp
from trainlab.sweeps.tune_folder import STUDY_NAME, study_url
from trainlab.sweeps.tune_trial import objective_value, run_tune_trial

TRIAL_NUMBER = "trainlab_trial_number"
"""The config key that carries a Ray trial's Optuna trial number to its worker and callbacks."""
NO_LIMIT = 2**31 - 1
"""ASHA's ``max_t``: a trial's reports end where its recipe ends, never at an ASHA limit."""


def run_ray_tune(exp: Experiment, spec: dict[str, Any], fixed: Sequence[str], params: Sequence[Param], path: Path,
                 *, trials: int, seconds_limit: float | None, pruner: str, seed: int, devices: Sequence[str],
                 workers: int = 1, address: str | None = None, gpus_per_trial: float | None = None) -> None:
    """Run ``trials`` more trials of the tune in folder ``path`` on Ray Tune, ``workers`` at a time.

    Without ``address`` a local Ray with ``workers`` CPUs is started (and shut down afterwards);
    with it, this process joins that cluster. ``pruner`` is ``asha`` or ``none``.
    """
    ray = require_ray()
    import optuna
    from ray import tune
    from ray.tune.logger import JsonLoggerCallback
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search import Searcher
    from ray.tune.search.optuna import OptunaSearch

    trials_dir = (path / TRIALS_DIR).resolve()
    trials_dir.mkdir(parents=True, exist_ok=True)
    metric, mode = spec["metric"], spec["mode"]
    deadline = None if seconds_limit is None else time.monotonic() + seconds_limit
    stopped: set[str] = set()  # Ray trial ids the scheduler stopped: pruned, not interrupted
    pruned: list[tuple[Path, int]] = []  # their folders and epochs, to mark once Ray has ended its workers

    class Asha(ASHAScheduler):
        def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
            action = super().on_trial_result(tune_controller, trial, result)
            if action == self.STOP:
                stopped.add(trial.trial_id)
            return action

    class Search(OptunaSearch):
        """OptunaSearch on the tune's study that numbers each config with its Optuna trial, stops
        proposing after the time limit, reports each epoch at its step, and tells the study the
        trial's trainlab outcome (done, pruned, failed or diverged)."""

        def save(self, checkpoint_path: str) -> None:
            """Nothing to save: the study is study.db, and a resumed tune continues it there
            (Tune's experiment restore, which would pickle this searcher, is not used)."""

        def suggest(self, trial_id: str) -> dict | str | None:
            if deadline is not None and time.monotonic() > deadline:
                return Searcher.FINISHED
            config = super().suggest(trial_id)
            return {**config, TRIAL_NUMBER: self._ot_trials[trial_id].number}

        def on_trial_result(self, trial_id: str, result: dict) -> None:
            if RESULT_KEY not in result and metric in result:
                self._ot_trials[trial_id].report(float(result[metric]), int(result["epoch"]))

        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
            if trial_id in self._completed_trials or trial_id not in self._ot_trials:
                return
            self._completed_trials.add(trial_id)
            ot_trial = self._ot_trials[trial_id]
            record = json.loads(result[RESULT_KEY]) if result and RESULT_KEY in result else None
            status = record["status"] if record else "pruned" if trial_id in stopped else "interrupted"
            if result and RESULT_KEY not in result and metric in result:
                self.on_trial_result(trial_id, result)  # the epoch ASHA stopped at comes here, not to on_trial_result
            ot_trial.set_user_attr("status", status)
            key = record["key"] if record else (result or {}).get("key")
            if key:
                ot_trial.set_user_attr("key", key)
            value = objective_value(record or {}, metric)
            state = (optuna.trial.TrialState.PRUNED if status == "pruned" else
                     optuna.trial.TrialState.COMPLETE if math.isfinite(value) else optuna.trial.TrialState.FAIL)
            self._ot_study.tell(ot_trial, value if state == optuna.trial.TrialState.COMPLETE else None, state=state)

    class Recorder(tune.Callback):
        """Runs in the driver: append each trial's record to trials.jsonl as it ends."""

        def __init__(self) -> None:
            self.ended: set[str] = set()
            self.last: dict[str, dict] = {}

        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
            if RESULT_KEY in result:
                self.ended.add(trial.trial_id)
                append_jsonl(path / TRIALS_FILE, json.loads(result[RESULT_KEY]))
            else:
                self.last[trial.trial_id] = result

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            if trial.trial_id in self.ended or trial.trial_id not in stopped:
                return  # recorded already, or stopped by Ctrl-C: an interrupted trial is no ended trial
            self.ended.add(trial.trial_id)
            last = self.last.get(trial.trial_id, {})
            record = {"trial": trial.config[TRIAL_NUMBER], "key": last.get("key"), "params": _params(trial.config),
                      "status": "pruned", "path": last.get("folder"), "epochs": int(last.get("epoch", 0))}
            if last.get("folder"):
                pruned.append((Path(last["folder"]), record["epochs"]))
            append_jsonl(path / TRIALS_FILE, stamp(record, float(last.get("time_total_s", 0.0)), trials_dir))

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            if trial.trial_id not in self.ended:  # the worker died (killed, out of memory): no record came back
                self.ended.add(trial.trial_id)
                last = self.last.get(trial.trial_id, {})
                record = {"trial": trial.config[TRIAL_NUMBER], "key": last.get("key"), "params": _params(trial.config),
                          "status": "failed", "path": last.get("folder"),
                          "error": f"Ray trial error: {error_line(trial)}"}
                append_jsonl(path / TRIALS_FILE, stamp(record, float(last.get("time_total_s", 0.0)), trials_dir))

    name, yaml_file, quick = exp.name, spec["config_file"], spec["quick"]

    def trainable(config: dict) -> None:
        """One trial in a Ray worker, which resolves the experiment itself: only its name travels."""
        worker_exp = get_experiment(name)
        values = _params(config)
        cfg = build_config(worker_exp, [*fixed, *(p.item(values[p.key]) for p in params)],
                           yaml_file=yaml_file, quick=quick)

        key = config_hash(cfg)

        def report(step: int, value: float, folder: Path) -> None:
            try:
                tune.report({metric: value, "epoch": step, "key": key, "folder": str(folder)})
            except SystemExit:  # how Ray stops a trial its scheduler gave up on, inside report
                raise Pruned(step) from None

        record = run_tune_trial(worker_exp, cfg, config[TRIAL_NUMBER], values, trials_dir, metric, report)
        if record["status"] != "pruned":
            tune.report({RESULT_KEY: json.dumps(record), metric: objective_value(record, metric)})

    def space(trial: Any) -> None:
        for p in params:
            p.suggest(trial)

    started_here = not ray.is_initialized()
    if started_here:
        init_ray(ray, workers, address)
    try:
        gpus = gpu_share(devices, gpus_per_trial, largest_node_gpus(ray))
        search = Search(space=space, metric=metric, mode=mode, sampler=optuna.samplers.TPESampler(seed=seed),
                        study_name=STUDY_NAME, storage=optuna.storages.RDBStorage(study_url(path)))
        scheduler = (Asha(time_attr="epoch", metric=metric, mode=mode, max_t=NO_LIMIT, grace_period=1)
                     if pruner == "asha" else FIFOScheduler())
        tuner = tune.Tuner(
            tune.with_resources(trainable, {"cpu": 1, "gpu": gpus}),
            tune_config=tune.TuneConfig(search_alg=search, scheduler=scheduler, num_samples=trials,
                                        max_concurrent_trials=workers),
            run_config=tune.RunConfig(name="tune", storage_path=str(path.resolve() / "ray"),
                                      callbacks=[Recorder(), JsonLoggerCallback()], verbose=0),
        )
        # Ctrl-C must reach this process as KeyboardInterrupt (the tune records it interrupted), and
        # Tune's banner goes to stderr: the CLI's stdout is reserved for its own lines.
        with quiet_tune(TUNE_DISABLE_SIGINT_HANDLER="1"), contextlib.redirect_stdout(sys.stderr):
            tuner.fit()
    finally:
        if started_here:
            ray.shutdown()
    for folder, epoch in pruned:
        _mark_pruned(folder, epoch)


def _mark_pruned(folder: Path, epoch: int) -> None:
    """A pruned trial's folder still says ``running`` where Ray ended its worker before the run could
    finish itself: say ``pruned`` there (folders on other machines stay as they are)."""
    if (folder / RUN_INFO).is_file() and current_info(folder).get("status") == "running":
        update_info(folder, status="pruned", pruned_epoch=epoch)


def _params(config: dict) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k != TRIAL_NUMBER}


__all__ = ["run_ray_tune"]
