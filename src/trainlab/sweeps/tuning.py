"""Tune an experiment with Optuna: a search that learns from finished trials and prunes bad ones early.

``run_tune("mnist-binary", ["lr=loguniform(1e-4,1e-1)"], trials=20, metric="val_acc", mode="max")``
writes::

    <out>/mnist-binary-tune/<stamp>-<hash>/
        tune.json         what the tune searches, for what, and how (read back by --resume)
        study.db          the Optuna study (SQLite): optuna-dashboard sqlite:///.../study.db opens it
        trials.jsonl      one record per ended trial (done, pruned, failed, diverged), appended at once
        trials/<experiment>/<stamp>-<key>/   each trial's own run folder (the one run path)
        refit/<experiment>/<stamp>-<key>/    the best settings retrained on train + validation (--refit)
        ray/              Ray Tune's own logs (--backend ray)
        tables/trials.csv, figures/history.png, report.md, report.html

Optuna's TPE sampler (seeded from the config's seed) proposes each trial's values; the trial
runs through :func:`trainlab.execute.run_experiment` and its objective is ``metric`` from its
summary, a validation number (``test*`` metrics are refused: choosing settings on the test set
would make its numbers optimistic). Pruning goes through the one hook
:meth:`trainlab.runs.Run.report_epoch`: each reported epoch becomes ``trial.report`` and a trial
the pruner gives up on ends ``pruned`` with the epoch it reached; a stacked trial's members are
pruned one by one (:mod:`trainlab.sweeps.member_pruning`). ``resume=TUNE_DIR`` loads the
same study (Optuna's RDB storage, ``load_if_exists``) and runs trials until ``trials`` have ended.
``backend="ray"`` runs the same search on Ray Tune (:mod:`trainlab.sweeps.tune_ray`: OptunaSearch on
this study, ASHA pruning). ``refit=True`` retrains the best trial's settings on the training and
validation images (``train_on_val=true``) into ``refit/`` once the search ends: the report's test
numbers are then that run's, else the best trial's own.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional, Sequence

from trainlab.errors import ConfigError
from trainlab.execute import build_config, run_experiment
from trainlab.experiments.registry import Experiment, get_experiment
from trainlab.files import append_jsonl, atomic_write, read_jsonl
from trainlab.processes import hold, identity, interrupted
from trainlab.runs import Pruned, Run, check_out, full_disk_is_one_line, update_info
from trainlab.sweeps.member_pruning import MemberPruning
from trainlab.sweeps.runner import BACKENDS, check_backend
from trainlab.sweeps.space import Param, check_space, parse_space
from trainlab.sweeps.trials import TRIALS_DIR, TRIALS_FILE, error_text
from trainlab.sweeps.tune_folder import SPEC_FILE, open_study, read_spec
from trainlab.sweeps.tune_report import best_row, tune_rows, write_tune_report
from trainlab.sweeps.tune_trial import objective_value, run_tune_trial

PRUNERS = {"local": ("median", "hyperband", "none"), "ray": ("asha", "none")}
"""The pruners each backend offers: Optuna's on the local backend, Ray Tune's ASHA on Ray."""
REFIT_KEY = "train_on_val"
"""The config field a refit sets: recipes that hold out a validation split train on it too."""
REFIT_DIR = "refit"
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


def check_objective(metric: str, mode: str, trials: int) -> None:
    if metric.lower().startswith("test"):
        raise ConfigError(f"--metric {metric} is a test metric; tune on a validation metric such as val_acc "
                          "(choosing settings on the test set makes its numbers optimistic)")
    if not metric:
        raise ConfigError("--metric is required: the summary number to optimise, e.g. val_acc")
    if mode not in MODES:
        raise ConfigError(f"--mode {mode!r} is not one of {', '.join(MODES)}")
    if trials < 1:
        raise ConfigError(f"--trials must be >= 1 (got {trials})")


def check_pruner(pruner: str | None, backend: str) -> str:
    """``--pruner`` for ``backend`` (its default where None): median, hyperband or none locally, asha or none on Ray."""
    if pruner is None:
        return PRUNERS[backend][0]
    if pruner not in PRUNERS[backend]:
        other = next(b for b in BACKENDS if b != backend)
        where = f" (--pruner {pruner} runs on --backend {other})" if pruner in PRUNERS[other] else ""
        raise ConfigError(f"--pruner {pruner!r} is not one of {', '.join(PRUNERS[backend])} "
                          f"on the {backend} backend{where}")
    return pruner


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
    pruner: str | None = None,
    yaml_file: str | Path | None = None,
    quick: bool = False,
    refit: bool = False,
    backend: str = "local",
    workers: int = 1,
    address: str | None = None,
    gpus_per_trial: float | None = None,
    resume: str | Path | None = None,
    out: str | Path = "runs",
) -> Path:
    """Run (or resume) a tune of experiment ``name`` and return the tune folder.

    Everything is checked before a trial runs (the space at its bounds, the metric, the
    options): one :class:`ConfigError` line. ``resume=TUNE_DIR`` continues that tune's study
    with its recorded space and objective until ``trials`` trials have ended in it.
    ``pruner`` defaults to median (local) or asha (ray); ``workers``, ``address`` and
    ``gpus_per_trial`` are the Ray backend's, as for a sweep.
    """
    require_optuna()
    check_backend(backend, workers, address, gpus_per_trial)
    pruner = check_pruner(pruner, backend)
    exp = get_experiment(name)
    seconds_limit = parse_duration(timeout)
    if resume is not None:
        path, spec = _open_tune(Path(resume), exp.name, space)
        metric, mode = spec["metric"], spec["mode"]
        check_objective(metric, mode, trials)
        fixed, params = parse_space(spec["space"])
        base = check_space(fixed, params, _maker(exp, spec["config_file"], spec["quick"]))
        tune_run = Run(path, f"{name}-tune")
    else:
        check_objective(metric, mode, trials)
        check_out(out)
        fixed, params = parse_space(space)
        base = check_space(fixed, params, _maker(exp, yaml_file, quick))
        tune_spec = TuneSpec(name, list(space), metric, mode, quick, str(yaml_file) if yaml_file is not None else None)
        spec = {**tune_spec.__dict__, "seed": base.seed}
    if refit and not hasattr(base, REFIT_KEY):
        raise ConfigError(f"{name} holds out no validation split to train on ({REFIT_KEY}), so --refit cannot "
                          "retrain on it; drop --refit (the report then shows the best trial's own test numbers)")
    if resume is None:
        with full_disk_is_one_line(out):
            tune_run = Run.create(Path(out), f"{name}-tune", tune_spec, device=None, title=f"Tune of {name}")
            atomic_write(tune_run.path / SPEC_FILE, json.dumps(spec, indent=2))
        path = tune_run.path
    ray_options = dict(workers=workers, address=address, gpus_per_trial=gpus_per_trial, devices=[str(base.device)])
    search = SearchPlan(exp, spec, fixed, params, pruner, seconds_limit, backend, ray_options)
    with full_disk_is_one_line(path), hold(path, "the tune"):
        if resume is not None:
            update_info(path, status="running", error=None, **identity())
        _optimize(search, tune_run, trials, refit)
    return path


@dataclass
class SearchPlan:
    """How this invocation searches (what ``_optimize`` needs besides the folder)."""

    exp: Experiment
    """The experiment every trial runs."""
    spec: dict
    """The tune's ``tune.json``."""
    fixed: list
    """Fixed override items."""
    params: list
    """The searched parameters."""
    pruner: str
    """The pruner's name (checked for the backend)."""
    seconds_limit: Optional[float]
    """Start no trial after this many seconds; None: no limit."""
    backend: str
    """local or ray."""
    ray_options: dict
    """workers, address, gpus_per_trial and the trials' devices, for the Ray backend."""


def _maker(exp: Experiment, yaml_file: str | Path | None, quick: bool) -> Any:
    return lambda items: build_config(exp, items, yaml_file=yaml_file, quick=quick)


def _optimize(search: SearchPlan, tune_run: Run, trials: int, refit: bool) -> None:
    """Run trials until ``trials`` have ended in the study (or the time is up), refit if asked,
    then write the report."""
    import optuna

    path, spec = tune_run.path, search.spec
    study = open_study(path, spec)
    _fail_stale(study)
    ended = sum(t.user_attrs.get("status") in COUNTED for t in study.trials)
    # A resumed tune seeds its sampler past the trials it has, so it does not propose its first trials again.
    offset = len(study.trials)
    maker = _maker(search.exp, spec["config_file"], spec["quick"])
    refit_dir = None

    def objective(trial: optuna.Trial) -> float:
        return _run_one(search.exp, trial, search.fixed, search.params, maker, path, spec["metric"], spec["mode"])

    start = time.perf_counter()
    try:
        if trials > ended and search.backend == "ray":
            from trainlab.sweeps.tune_ray import run_ray_tune

            run_ray_tune(search.exp, spec, search.fixed, search.params, path, trials=trials - ended,
                         seconds_limit=search.seconds_limit, pruner=search.pruner, seed=int(spec.get("seed", 0)) + offset,
                         **search.ray_options)
        elif trials > ended:
            study = open_study(path, spec, make_pruner(search.pruner), seed_offset=offset)
            study.optimize(objective, n_trials=trials - ended, timeout=search.seconds_limit)
        if refit:
            refit_dir = _refit(search, maker, path)
    except KeyboardInterrupt as exc:
        write_tune_report(tune_run, "interrupted", time.perf_counter() - start)
        raise interrupted(exc, path) from None
    except Exception as exc:  # a broken objective (a metric the summary lacks) or storage
        write_tune_report(tune_run, "failed", time.perf_counter() - start, error=error_text(exc))
        raise
    write_tune_report(tune_run, "done", time.perf_counter() - start, refit=refit_dir)


def _run_one(exp: Experiment, trial: Any, fixed: list[str], params: list[Param], maker: Any, path: Path,
             metric: str, mode: str) -> float:
    """One trial of the local backend: its config from the sampler, pruned through the study's pruner
    (a stacked trial member by member, :mod:`trainlab.sweeps.member_pruning`)."""
    import optuna

    cfg = maker([*fixed, *(p.suggest(trial) for p in params)])
    members = MemberPruning(trial, metric, mode)

    def report(step: int, value: float, folder: Path) -> None:
        trial.report(value, step)
        if trial.should_prune():
            raise Pruned(step)

    record = run_tune_trial(exp, cfg, trial.number, trial.params, path / TRIALS_DIR, metric, report,
                            members=members.give_up)
    members.report_curve()  # a stacked trial's curve (its best member's), what later trials are compared against
    trial.set_user_attr("key", record["key"])
    trial.set_user_attr("status", record["status"])
    append_jsonl(path / TRIALS_FILE, record)
    if record["status"] == "pruned":
        raise optuna.TrialPruned(f"pruned after epoch {record['epochs']}")
    return objective_value(record, metric)  # NaN for a failed or diverged trial: Optuna records it failed


def _refit(search: SearchPlan, maker: Any, path: Path) -> Path | None:
    """Retrain the best trial's settings on the training and validation images into ``refit/``
    (None when no trial finished with a number to choose by)."""
    spec = search.spec
    rows, _ = tune_rows(read_jsonl(path / TRIALS_FILE), spec["metric"], path)
    best = best_row(rows, spec["metric"], spec["mode"])
    if best is None:
        return None
    cfg = maker([*search.fixed, *(p.item(best[p.key]) for p in search.params), f"{REFIT_KEY}=true"])
    return run_experiment(search.exp, cfg, out=path / REFIT_DIR)


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


__all__ = ["MODES", "PRUNERS", "REFIT_DIR", "REFIT_KEY", "TuneSpec", "check_objective", "check_pruner", "open_study",
           "parse_duration", "run_tune"]
