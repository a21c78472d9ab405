"""The local backend: run the pending trials in this process, batching them where the experiment can.

An experiment that defines ``BATCHABLE`` and ``run_batch`` (the registry's contract,
:class:`~trainlab.experiments.registry.Experiment`) has its pending trials that agree
on every field outside ``batchable`` grouped and run together through
:func:`trainlab.execute.run_experiments`; a group of one, and every trial of an
experiment without ``run_batch``, runs alone through :func:`~trainlab.sweeps.trials.run_trial`.
A batch's records are appended when the batch ends, so a sweep killed mid-batch reruns
that batch on resume, from its start and into new folders: stacked training keeps no
snapshots. A trial run alone that was stopped after a snapshot continues in its own folder
(:func:`~trainlab.sweeps.trials.run_trial`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from tqdm.auto import tqdm

from trainlab.execute import run_experiments, stored_config
from trainlab.experiments.registry import Experiment
from trainlab.sweeps.grid import Trial
from trainlab.sweeps.trials import failed, new_record, outcome, run_trial, stamp


def run_local(
    exp: Experiment,
    trials: Sequence[Trial],
    trials_dir: Path,
    on_result: Callable[[dict[str, Any]], None],
) -> None:
    """Run ``trials``; ``on_result`` gets each record as soon as its trial (or batch) ends.

    A trial that raises is recorded as failed and the loop goes on; Ctrl-C stops
    the loop (the trial it interrupted is not recorded, so resume runs it again).
    """
    bar = tqdm(total=len(trials), desc=f"sweep {exp.name}", unit="trial", disable=None)
    try:
        for group in batches(exp, trials):
            if len(group) == 1:
                records = [run_trial(exp, group[0], trials_dir)]
            else:
                records = run_group(exp, group, trials_dir)
            for record in records:
                on_result(record)
            bar.update(len(group))
            bar.set_postfix_str(f"last: {records[-1]['status']}")
    finally:
        bar.close()


def batches(exp: Experiment, trials: Sequence[Trial]) -> list[list[Trial]]:
    """Trials grouped for ``run_batch`` (in order of their first trial), or one group per trial."""
    if not exp.batches:
        return [[t] for t in trials]
    groups: dict[str, list[Trial]] = {}
    for trial in trials:
        shared = {k: v for k, v in trial.config.items() if k not in exp.batchable}
        groups.setdefault(json.dumps(shared, sort_keys=True), []).append(trial)
    return list(groups.values())


def run_group(exp: Experiment, group: Sequence[Trial], trials_dir: Path) -> list[dict[str, Any]]:
    """Run a group of trials through the experiment's ``run_batch``; one record per trial."""
    start = time.perf_counter()
    records = [new_record(t) for t in group]
    try:
        paths = run_experiments(exp, [stored_config(exp, t.config) for t in group], out=trials_dir)
    except Exception as exc:  # the whole batch failed: every trial in it is recorded failed
        for record, trial in zip(records, group):
            failed(record, exc, trials_dir, exp.name, trial.key)
    else:
        for record, path in zip(records, paths):
            record.update(outcome(path), batch=len(group))
    # Wall time of the batch shared evenly: the table's seconds column still sums to the sweep's time.
    share = (time.perf_counter() - start) / len(group)
    return [stamp(record, share, trials_dir) for record in records]
