"""The local backend: run the pending trials one after another in this process."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from tqdm.auto import tqdm

from trainlab.sweep.grid import Trial
from trainlab.sweep.trials import run_trial


def run_local(
    experiment: str,
    trials: Sequence[Trial],
    trials_dir: Path,
    on_result: Callable[[dict[str, Any]], None],
) -> None:
    """Run ``trials`` in order; ``on_result`` gets each record as soon as its trial ends.

    A trial that raises is recorded as failed and the loop goes on; Ctrl-C stops
    the loop (the trial it interrupted is not recorded, so resume runs it again).
    """
    bar = tqdm(trials, desc=f"sweep {experiment}", unit="trial", disable=None)
    for trial in bar:
        record = run_trial(experiment, trial, trials_dir)
        on_result(record)
        bar.set_postfix_str(f"last: {record['status']}")
