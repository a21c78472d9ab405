"""Run a sweep (or resume one): plan its trials, run the pending ones on a backend, write the report.

:mod:`trainlab.sweeps` shows the sweep folder it writes. A trial's key is the hash of its
resolved config. ``resume=SWEEP_DIR`` skips the trials recorded ``done`` or ``diverged``
and runs the rest (missing and failed); a trial stopped after a snapshot continues in its
own folder from there (:func:`trainlab.sweeps.trials.run_trial`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional, Sequence

from trainlab.errors import ConfigError
from trainlab.execute import build_config
from trainlab.experiments.registry import Experiment, get_experiment
from trainlab.export import following, targets
from trainlab.files import append_jsonl, atomic_write, read_jsonl
from trainlab.processes import hold, identity, interrupted
from trainlab.runs import RUN_INFO, Run, check_out, full_disk_is_one_line, update_info
from trainlab.sweeps.grid import Trial, build_trials, expand, trial_from_record, trial_record
from trainlab.sweeps.report import write_report
from trainlab.sweeps.trials import SPEC_FILE, TRIALS_DIR, TRIALS_FILE, error_text, finished_keys

BACKENDS = ("local", "ray")


@dataclass
class SweepSpec:
    """What defines a sweep (its folder name hashes this)."""

    experiment: str = ""
    """The experiment every trial runs."""
    overrides: List[str] = field(default_factory=list)
    """The command line's key=value items, sweeps included."""
    quick: bool = False
    """Whether trials start from the experiment's quick profile."""
    config_file: Optional[str] = None
    """YAML file of config values under the overrides, if any."""


def run_sweep(
    name: str,
    overrides: Sequence[str] = (),
    *,
    yaml_file: str | Path | None = None,
    quick: bool = False,
    backend: str = "local",
    workers: int = 1,
    address: str | None = None,
    gpus_per_trial: float | None = None,
    resume: str | Path | None = None,
    out: str | Path = "runs",
    log: Sequence[str] = (),
) -> Path:
    """Run (or resume) a sweep of experiment ``name`` and return the sweep folder.

    Every trial config is built and validated first (a bad key or value raises
    :class:`ConfigError` before any folder is made). Trials that fail or diverge
    are recorded with their status and the sweep goes on; only a broken backend
    (Ray cannot start, the cluster is unreachable), Ctrl-C or SIGTERM ends it early,
    with the report written either way. A second process resuming the same sweep
    while this one runs is refused (:func:`trainlab.processes.hold`). ``log`` names trackers
    that follow the sweep live: one parent run, each trial nested (:mod:`trainlab.export`).
    ``gpus_per_trial`` is the GPU share each Ray trial asks for (None: one where the trials'
    device can be CUDA and the cluster has GPUs, see :func:`trainlab.sweeps.ray.gpu_share`).
    """
    check_backend(backend, workers, address, gpus_per_trial)
    log = targets(log)
    exp = get_experiment(name)
    if resume is not None:
        path, trials = _open_sweep(Path(resume), exp.name, overrides)
        sweep_run = Run(path, f"{name}-sweep")
    else:
        check_out(out)
        trials, spec_data = plan(exp, overrides, yaml_file=yaml_file, quick=quick)
        spec = SweepSpec(name, list(overrides), quick, str(yaml_file) if yaml_file is not None else None)
        with full_disk_is_one_line(out):
            sweep_run = Run.create(Path(out), f"{name}-sweep", spec, device=None, title=f"Sweep of {name}")
            atomic_write(sweep_run.path / SPEC_FILE, json.dumps(spec_data, indent=2))
        path = sweep_run.path
    # One process per sweep folder: two resumes at once would run every pending trial twice.
    with full_disk_is_one_line(path), hold(path, "the sweep"), following(path, log):
        if resume is not None:
            update_info(path, status="running", error=None, **identity())
        _run_pending(exp, trials, sweep_run, backend, workers, address, gpus_per_trial)
    return path


def _run_pending(exp: Experiment, trials: list[Trial], sweep_run: Run, backend: str, workers: int,
                 address: str | None, gpus_per_trial: float | None) -> None:
    """Run the trials not yet finished and write the sweep's report, also when it is stopped."""
    path = sweep_run.path
    records_path = path / TRIALS_FILE
    done = finished_keys(read_jsonl(records_path))
    pending = [t for t in trials if t.key not in done]
    _mark_stale_attempts(path / TRIALS_DIR, exp.name)

    def record(result: dict[str, Any]) -> None:
        append_jsonl(records_path, result)

    start = time.perf_counter()
    try:
        if pending and backend == "local":
            from trainlab.sweeps.local import run_local

            run_local(exp, pending, path / TRIALS_DIR, record)
        elif pending:
            from trainlab.sweeps.ray import run_ray

            run_ray(exp, pending, path / TRIALS_DIR, record, workers=workers, address=address,
                    gpus_per_trial=gpus_per_trial)
    except KeyboardInterrupt as exc:
        write_report(sweep_run, trials, "interrupted", time.perf_counter() - start)
        raise interrupted(exc, path) from None
    except Exception as exc:  # the backend itself broke (trial errors never get here)
        write_report(sweep_run, trials, "failed", time.perf_counter() - start, error=error_text(exc))
        raise
    write_report(sweep_run, trials, "done", time.perf_counter() - start)


def plan(
    exp: Experiment, overrides: Sequence[str], *, yaml_file: str | Path | None = None, quick: bool = False
) -> tuple[list[Trial], dict[str, Any]]:
    """Every trial of the grid, validated, and the ``sweep.json`` content describing them."""
    trials, swept = build_trials(overrides, lambda items: build_config(exp, items, yaml_file=yaml_file, quick=quick))
    fixed, _ = expand(overrides)
    spec = {
        "experiment": exp.name,
        "overrides": list(overrides),
        "quick": quick,
        "config_file": str(yaml_file) if yaml_file is not None else None,
        "swept": swept,
        "fixed": fixed,
        "trials": [trial_record(t) for t in trials],
    }
    return trials, spec


def check_backend(backend: str, workers: int, address: str | None, gpus_per_trial: float | None) -> None:
    if backend not in BACKENDS:
        raise ConfigError(f"--backend {backend!r} is not one of {', '.join(BACKENDS)}")
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1 (got {workers})")
    if backend == "local" and workers != 1:
        raise ConfigError("--workers applies to --backend ray; the local backend runs one trial at a time")
    if backend == "local" and address:
        raise ConfigError("--address joins a Ray cluster; add --backend ray")
    if backend == "local" and gpus_per_trial is not None:
        raise ConfigError("--gpus-per-trial applies to --backend ray; the local backend runs on the configs' device")
    if backend == "ray":
        from trainlab.sweeps.ray import check_gpu_share, require_ray

        if gpus_per_trial is not None:
            check_gpu_share(gpus_per_trial)
        require_ray()


def _open_sweep(path: Path, name: str, overrides: Sequence[str]) -> tuple[Path, list[Trial]]:
    spec, trials = read_plan(path)
    if spec.get("experiment") != name:
        raise ConfigError(f"{path} is a sweep of {spec.get('experiment')!r}, not {name!r}")
    if overrides and list(overrides) != spec.get("overrides"):
        raise ConfigError(
            f"--resume reruns the sweep's own grid ({' '.join(spec.get('overrides', []))}); "
            "drop the overrides or start a new sweep"
        )
    return path, trials


def read_plan(path: Path) -> tuple[dict[str, Any], list[Trial]]:
    """A sweep folder's ``sweep.json`` and its trials, or one ConfigError line when it is not a sweep folder."""
    spec_path = path / SPEC_FILE
    if not spec_path.is_file() or not (path / RUN_INFO).is_file():
        raise ConfigError(f"{path} is not a sweep folder (no {SPEC_FILE}); pass the folder that trainlab sweep printed")
    try:
        spec = json.loads(spec_path.read_text())
        trials = [trial_from_record(r) for r in spec["trials"]]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise ConfigError(f"{spec_path} is damaged; start a new sweep") from None
    return spec, trials


def _mark_stale_attempts(trials_dir: Path, experiment: str) -> None:
    """A trial folder still marked ``running`` was left by a killed sweep: say so in its run.json."""
    for info_path in (trials_dir / experiment).glob(f"*/{RUN_INFO}"):
        try:
            info = json.loads(info_path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if info.get("status") == "running":
            update_info(info_path.parent, status="interrupted")


__all__ = ["BACKENDS", "SweepSpec", "plan", "read_plan", "run_sweep"]
