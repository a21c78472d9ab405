"""Tune an experiment with Optuna: a search that learns from finished trials and prunes bad ones early.

``run_tune("mnist-binary", ["lr=loguniform(1e-4,1e-1)"], trials=20, metric="val_acc", mode="max")``
writes::

    <out>/mnist-binary-tune/<stamp>-<hash>/
        tune.json         what the tune searches, for what, and how (read back by --resume)
        study.db          the Optuna study (SQLite): optuna-dashboard sqlite:///.../study.db opens it
        trials.jsonl      one record per ended trial (done, pruned, failed, diverged), appended at once
        trials/<experiment>/<stamp>-<key>/   each trial's own run folder (the one run path)
        tables/trials.csv, figures/history.png, report.md, report.html

Optuna's TPE sampler (seeded from the config's seed) proposes each trial's values; the trial
runs through :func:`trainlab.execute.run_experiment` and its objective is ``metric`` from its
summary, a validation number (``test*`` metrics are refused: choosing settings on the test set
would make its numbers optimistic). Pruning goes through the one hook
:meth:`trainlab.runs.Run.report_epoch`: each reported epoch becomes ``trial.report`` and a trial
the pruner gives up on ends ``pruned`` with the epoch it reached; a stacked trial's members are
pruned one by one (:mod:`trainlab.sweeps.member_pruning`). ``resume=TUNE_DIR`` loads the
same study (Optuna's RDB storage, ``load_if_exists``) and runs trials until ``trials`` have ended.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional, Sequence

from trainlab.config import config_hash
from trainlab.errors import ConfigError
from trainlab.execute import build_config, run_experiment
from trainlab.experiments.registry import Experiment, get_experiment
from trainlab.files import append_jsonl, atomic_write
from trainlab.processes import hold, identity, interrupted
from trainlab.runs import Pruned, Run, check_out, full_disk_is_one_line, update_info
from trainlab.sweeps.member_pruning import MemberPruning
from trainlab.sweeps.space import Param, check_space, parse_space
from trainlab.sweeps.trials import TRIALS_DIR, TRIALS_FILE, error_text, failed, outcome, stamp
from trainlab.sweeps.tune_folder import SPEC_FILE, STUDY_NAME, read_spec, study_url

PRUNERS = ("median", "hyperband", "none")
MODES = ("max", "min")
COUNTED = ("done", "pruned", "failed", "diverged")
"""Trial statuses that use up the budget; a trial stopped by Ctrl-C or a kill does not."""
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*$")


@dataclass
class TuneSpec:
    """What defines a tune (its folder name hashes this)."""

    experiment: str = ""
    """The experiment every trial runs."""
    space: List[str] = field(default_factory=list)
    """The command line's items: searched keys (``lr=loguniform(a,b)``) and fixed ``key=value``."""
    metric: str = ""
    """The summary number the search optimises (a validation metric)."""
    mode: str = "max"
    """max or min."""
    quick: bool = False
    """Whether trials start from the experiment's quick profile."""
    config_file: Optional[str] = None
    """YAML file of config values under the items, if any."""


def parse_duration(text: str | float | None) -> float | None:
    """``90``, ``90s``, ``10m``, ``1.5h`` -> seconds; None stays None (no time limit)."""
    if text is None or isinstance(text, (int, float)):
        seconds = text
    else:
        match = _DURATION.match(text)
        if match is None:
            raise ConfigError(f"--timeout {text!r} is not a duration; write 90s, 10m or 1.5h")
        seconds = float(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2) or "s"]
    if seconds is not None and not seconds > 0:
        raise ConfigError(f"--timeout must be > 0 (got {text})")
    return seconds


def check_objective(metric: str, mode: str, trials: int, pruner: str) -> None:
    if metric.lower().startswith("test"):
        raise ConfigError(f"--metric {metric} is a test metric; tune on a validation metric such as val_acc "
                          "(choosing settings on the test set makes its numbers optimistic)")
    if not metric:
        raise ConfigError("--metric is required: the summary number to optimise, e.g. val_acc")
    if mode not in MODES:
        raise ConfigError(f"--mode {mode!r} is not one of {', '.join(MODES)}")
    if trials < 1:
        raise ConfigError(f"--trials must be >= 1 (got {trials})")
    if pruner not in PRUNERS:
        raise ConfigError(f"--pruner {pruner!r} is not one of {', '.join(PRUNERS)}")


def require_optuna() -> None:
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise ConfigError("trainlab tune needs Optuna: pip install 'trainlab[tune]' (or pip install optuna)") from None


def make_pruner(name: str) -> Any:
    """Optuna's pruner for ``--pruner``: median (after 2 finished trials), hyperband, or none."""
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1)
    return optuna.pruners.NopPruner()


def run_tune(
    name: str,
    space: Sequence[str] = (),
    *,
    trials: int,
    metric: str,
    mode: str = "max",
    timeout: str | float | None = None,
    pruner: str = "median",
    yaml_file: str | Path | None = None,
    quick: bool = False,
    resume: str | Path | None = None,
    out: str | Path = "runs",
) -> Path:
    """Run (or resume) a tune of experiment ``name`` and return the tune folder.

    Everything is checked before a trial runs (the space at its bounds, the metric, the
    options): one :class:`ConfigError` line. ``resume=TUNE_DIR`` continues that tune's study
    with its recorded space and objective until ``trials`` trials have ended in it.
    """
    require_optuna()
    exp = get_experiment(name)
    seconds_limit = parse_duration(timeout)
    if resume is not None:
        path, spec = _open_tune(Path(resume), exp.name, space)
        metric, mode = spec["metric"], spec["mode"]
        check_objective(metric, mode, trials, pruner)
        fixed, params = parse_space(spec["space"])
        base = check_space(fixed, params, _maker(exp, spec["config_file"], spec["quick"]))
        tune_run = Run(path, f"{name}-tune")
    else:
        check_objective(metric, mode, trials, pruner)
        check_out(out)
        fixed, params = parse_space(space)
        base = check_space(fixed, params, _maker(exp, yaml_file, quick))
        tune_spec = TuneSpec(name, list(space), metric, mode, quick, str(yaml_file) if yaml_file is not None else None)
        spec = {**tune_spec.__dict__, "seed": base.seed}
        with full_disk_is_one_line(out):
            tune_run = Run.create(Path(out), f"{name}-tune", tune_spec, device=None, title=f"Tune of {name}")
            atomic_write(tune_run.path / SPEC_FILE, json.dumps(spec, indent=2))
        path = tune_run.path
    with full_disk_is_one_line(path), hold(path, "the tune"):
        if resume is not None:
            update_info(path, status="running", error=None, **identity())
        _optimize(exp, spec, fixed, params, tune_run, trials, seconds_limit, pruner)
    return path


def _maker(exp: Experiment, yaml_file: str | Path | None, quick: bool) -> Any:
    return lambda items: build_config(exp, items, yaml_file=yaml_file, quick=quick)


def open_study(path: Path, spec: dict[str, Any], pruner: str = "none", seed_offset: int = 0) -> Any:
    """The tune's Optuna study in ``study.db`` (created on first use); the sampler is TPE seeded
    from the config's seed (plus ``seed_offset``, so a resumed tune does not propose its first trials again)."""
    import optuna

    sampler = optuna.samplers.TPESampler(seed=int(spec.get("seed", 0)) + seed_offset)
    return optuna.create_study(
        storage=study_url(path), study_name=STUDY_NAME, load_if_exists=True,
        direction="maximize" if spec["mode"] == "max" else "minimize", sampler=sampler, pruner=make_pruner(pruner),
    )


def _optimize(exp: Experiment, spec: dict[str, Any], fixed: list[str], params: list[Param], tune_run: Run,
              trials: int, seconds_limit: float | None, pruner: str) -> None:
    """Run trials until ``trials`` have ended in the study (or the time is up), then write the report."""
    import optuna

    from trainlab.sweeps.tune_report import write_tune_report

    path = tune_run.path
    study = open_study(path, spec)
    _fail_stale(study)
    ended = sum(t.user_attrs.get("status") in COUNTED for t in study.trials)
    study = open_study(path, spec, pruner, seed_offset=len(study.trials))
    maker = _maker(exp, spec["config_file"], spec["quick"])

    def objective(trial: optuna.Trial) -> float:
        return _run_one(exp, trial, fixed, params, maker, path, spec["metric"], spec["mode"])

    start = time.perf_counter()
    try:
        if trials > ended:
            study.optimize(objective, n_trials=trials - ended, timeout=seconds_limit)
    except KeyboardInterrupt as exc:
        write_tune_report(tune_run, "interrupted", time.perf_counter() - start)
        raise interrupted(exc, path) from None
    except Exception as exc:  # a broken objective (a metric the summary lacks) or storage
        write_tune_report(tune_run, "failed", time.perf_counter() - start, error=error_text(exc))
        raise
    write_tune_report(tune_run, "done", time.perf_counter() - start)


def _run_one(exp: Experiment, trial: Any, fixed: list[str], params: list[Param], maker: Any, path: Path,
             metric: str, mode: str) -> float:
    """One trial: its config from the sampler, run through the one run path, recorded in trials.jsonl."""
    import optuna

    cfg = maker([*fixed, *(p.suggest(trial) for p in params)])
    key = config_hash(cfg)
    trial.set_user_attr("key", key)
    trials_dir = path / TRIALS_DIR
    reached = [0]
    folder: list[Path] = []
    members = MemberPruning(trial, metric, mode)

    def reporter(step: int, values: dict[str, Any]) -> set[str] | None:
        reached[0] = max(reached[0], step)  # a stacked trial's stacks report their epochs in parallel
        if "members" in values:  # a stacked trial: pruned member by member (member_pruning.py)
            return members.give_up(step, values["members"])
        if metric in values:
            trial.report(float(values[metric]), step)
            if trial.should_prune():
                raise Pruned(step)
        return None

    record: dict[str, Any] = {"trial": trial.number, "key": key, "params": dict(trial.params)}
    start = time.perf_counter()
    value = float("nan")
    try:
        run_experiment(exp, cfg, out=trials_dir, on_folder=folder.append, reporter=reporter)
    except Pruned as exc:
        record.update(status="pruned", path=str(folder[0]), epochs=exc.epoch)
        members.report_curve()
    except Exception as exc:  # a trial's crash must not stop the tune: the study records it failed
        failed(record, exc, trials_dir, exp.name, key)
    else:
        record.update(outcome(folder[0]), epochs=reached[0])
        members.report_curve()  # what later trials' members are compared against
        summary = record["summary"]
        if metric not in summary:
            numbers = [k for k, v in summary.items() if isinstance(v, (int, float)) and not k.startswith("test")]
            split = " or give it a validation split, val_fraction=0.1" if getattr(cfg, "val_fraction", None) == 0 else ""
            raise ConfigError(f"{exp.name}'s summary has no {metric!r}; --metric takes one of: {', '.join(numbers)}"
                              + split)
        if record["status"] == "done" and isinstance(summary[metric], (int, float)):
            value = float(summary[metric])
    trial.set_user_attr("status", record["status"])
    append_jsonl(path / TRIALS_FILE, stamp(record, time.perf_counter() - start, trials_dir))
    if record["status"] == "pruned":
        raise optuna.TrialPruned(f"pruned after epoch {record['epochs']}")
    return value  # NaN for a failed or diverged trial: Optuna records it failed and goes on


def _fail_stale(study: Any) -> None:
    """Trials a killed tune left ``RUNNING`` are marked failed (one process holds the folder, so none runs)."""
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study._storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL)


def _open_tune(path: Path, name: str, space: Sequence[str]) -> tuple[Path, dict[str, Any]]:
    spec = read_spec(path)
    if spec["experiment"] != name:
        raise ConfigError(f"{path} is a tune of {spec['experiment']!r}, not {name!r}")
    if space and list(space) != spec["space"]:
        raise ConfigError(f"--resume continues the tune's own space ({' '.join(spec['space'])}); "
                          "drop the space or start a new tune")
    return path, spec


__all__ = ["MODES", "PRUNERS", "TuneSpec", "check_objective", "open_study", "parse_duration", "run_tune"]
