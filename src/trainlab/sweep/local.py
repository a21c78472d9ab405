"""The local backend: run the pending trials in this process, batching them where the experiment can.

An experiment may opt in to batched trials by defining, next to ``run(cfg, run)``:

- ``BATCHABLE = ("hidden", "lr", ...)``: config fields that may differ inside one batch,
- ``run_batch(cfgs, runs) -> None``: run several trials at once (for example as one
  stacked model, :mod:`trainlab.train.stack`), writing trial i through ``runs[i]``
  exactly as ``run(cfgs[i], runs[i])`` would.

Pending trials that agree on every other field form a group and go to
``run_batch`` together; a group of one, and every trial of an experiment without
``run_batch``, goes through ``run``. A batch's records are appended when the
batch ends, so a sweep killed mid-batch reruns that batch on resume.
"""

from __future__ import annotations

import importlib
import json
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from tqdm.auto import tqdm

from trainlab.sweep.grid import Trial
from trainlab.sweep.trials import error_text, new_record, outcome, run_trial, stamp


def run_local(
    experiment: str,
    trials: Sequence[Trial],
    trials_dir: Path,
    on_result: Callable[[dict[str, Any]], None],
) -> None:
    """Run ``trials``; ``on_result`` gets each record as soon as its trial (or batch) ends.

    A trial that raises is recorded as failed and the loop goes on; Ctrl-C stops
    the loop (the trial it interrupted is not recorded, so resume runs it again).
    """
    bar = tqdm(total=len(trials), desc=f"sweep {experiment}", unit="trial", disable=None)
    try:
        for group in batches(experiment, trials):
            if len(group) == 1:
                records = [run_trial(experiment, group[0], trials_dir)]
            else:
                records = run_group(experiment, group, trials_dir)
            for record in records:
                on_result(record)
            bar.update(len(group))
            bar.set_postfix_str(f"last: {records[-1]['status']}")
    finally:
        bar.close()


def batches(experiment: str, trials: Sequence[Trial]) -> list[list[Trial]]:
    """Trials grouped for ``run_batch`` (in order of their first trial), or one group per trial."""
    module = _module(experiment)
    batchable = tuple(getattr(module, "BATCHABLE", ())) if module is not None else ()
    if not batchable or not callable(getattr(module, "run_batch", None)):
        return [[t] for t in trials]
    groups: dict[str, list[Trial]] = {}
    for trial in trials:
        shared = {k: v for k, v in trial.config.items() if k not in batchable}
        groups.setdefault(json.dumps(shared, sort_keys=True), []).append(trial)
    return list(groups.values())


def run_group(experiment: str, group: Sequence[Trial], trials_dir: Path) -> list[dict[str, Any]]:
    """Run a group of trials through the experiment's ``run_batch``; one record per trial."""
    from trainlab.config import load_config
    from trainlab.device import resolve_device, seed_everything, use_threads
    from trainlab.experiments.registry import get_experiment
    from trainlab.runs import Run

    start = time.perf_counter()
    records = [new_record(t) for t in group]
    runs: list[Run] = []
    try:
        exp = get_experiment(experiment)
        cfgs = [load_config(exp.config_cls, base=t.config) for t in group]
        # device and seed are not batchable unless the experiment says so; the first
        # trial's are every trial's then, and run_batch seeds per trial where they differ.
        device = resolve_device(cfgs[0].device)
        seed_everything(cfgs[0].seed)
        runs = [Run.create(Path(trials_dir), exp.name, cfg, device, title=exp.title) for cfg in cfgs]
        with use_threads(1, device):  # as execute.run_experiment: workloads ask device.cpu_plan for more
            _module(experiment).run_batch(cfgs, runs)
    except KeyboardInterrupt:
        for run in runs:
            run.finish("interrupted", time.perf_counter() - start)
        raise
    except Exception as exc:  # the whole batch failed: every trial in it is recorded failed
        error = error_text(exc)
        for run in runs:
            run.finish("failed", time.perf_counter() - start, error=error)
        for record, run in zip(records, runs or [None] * len(records)):
            record.update(status="failed", error=error, path=str(run.path) if run else None)
    else:
        seconds = time.perf_counter() - start
        for record, run in zip(records, runs):
            run.finish_returned(seconds)
            record.update(outcome(run.path), batch=len(group))
    # Wall time of the batch shared evenly: the table's seconds column still sums to the sweep's time.
    share = (time.perf_counter() - start) / len(group)
    return [stamp(record, share, trials_dir) for record in records]


def _module(experiment: str) -> Any:
    from trainlab.experiments.registry import get_experiment

    try:
        return importlib.import_module(get_experiment(experiment).module)
    except Exception:  # an unknown experiment is reported per trial by run_trial
        return None
