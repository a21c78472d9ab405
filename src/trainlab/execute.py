"""The one path from an experiment and its config to finished run folders (CLI, sweeps, tour).

Callers resolve the experiment's name once (:func:`~trainlab.experiments.registry.get_experiment`)
and build its config once (:func:`build_config`, or :func:`stored_config` for a config saved
as plain data); :func:`run_experiment` and :func:`run_experiments` then set the device and the
seed, create the run folders, run the recipe and record how it ended.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from trainlab.config import load_config, to_dict
from trainlab.device import algorithm_choice, resolve_device, seed_everything, use_threads
from trainlab.errors import ConfigError, TrainlabError
from trainlab.experiments.registry import Experiment
from trainlab.export import following, targets
from trainlab.processes import interrupted
from trainlab.files import read_json
from trainlab.processes import hold
from trainlab.report.folder import RUN_INFO
from trainlab.resume import check_resumable
from trainlab.run_list import shown_status
from trainlab.runs import EpochReporter, Pruned, Run, SilentRun, check_out, full_disk_is_one_line
from trainlab.train import distributed


def build_config(
    exp: Experiment,
    overrides: Sequence[str] = (),
    *,
    yaml_file: str | Path | None = None,
    quick: bool = False,
) -> Any:
    """The experiment's validated Config: defaults <- quick profile <- YAML <- overrides."""
    return load_config(exp.config_cls, overrides, yaml_file=yaml_file, base=exp.quick if quick else None)


def stored_config(exp: Experiment, values: Mapping[str, Any]) -> Any:
    """The experiment's Config from a resolved config saved as plain data (a sweep's trial), validated again."""
    return load_config(exp.config_cls, base=values)


def run_experiment(exp: Experiment, cfg: Any, *, out: str | Path = "runs",
                   on_folder: Callable[[Path], None] | None = None, resume: str | Path | None = None,
                   log: Sequence[str] = (),
                   reporter: EpochReporter | None = None) -> Path | None:
    """Run ``exp`` with ``cfg`` into a new run folder under ``out`` and return the folder.

    The folder records status ``done``, ``diverged`` (the recipe said its result
    diverged: ``Run.mark_diverged``), ``failed`` (with the error) or ``interrupted``
    (Ctrl-C or SIGTERM: raised again as :class:`~trainlab.processes.Interrupted` naming
    the folder); its report is rendered in every case so partial results can be read.
    Errors are re-raised for the caller (the CLI) to report; a full disk is one
    :class:`TrainlabError` line. ``on_folder(path)`` is called once the folder exists, so
    a caller that gets an error still knows which folder recorded it (the API returns it).

    Started by ``torchrun`` with more than one process, every process joins the
    data-parallel group (experiments that declare ``DISTRIBUTED = True`` only);
    rank 0 writes the one run folder, the other ranks write nothing and get None.

    ``resume`` continues that stopped run in its own folder instead (``cfg`` is its recorded
    config: :func:`resume_config`); ``out`` is then unused. See :mod:`trainlab.resume`.
    ``log`` names trackers (``tensorboard``, ``mlflow``: :mod:`trainlab.export`) that follow
    the folder while the run runs; a tracker that fails never fails the run.
    ``reporter(step, values)`` gets the recipe's per-epoch validation numbers
    (:meth:`~trainlab.runs.Run.report_epoch`); when it raises :class:`~trainlab.runs.Pruned`
    the folder records ``pruned`` and the epoch, and ``Pruned`` is raised again; for a stacked
    trial it returns the members it gives up on (:data:`~trainlab.runs.EpochReporter`).
    """
    if resume is None:
        check_out(out)
    log = targets(log)  # an unknown or missing tracker is refused before the run starts
    device = resolve_device(cfg.device)
    group = distributed.from_env()
    if group is not None:
        if not exp.distributed:
            raise ConfigError(f"{exp.name} does not train data-parallel; run it without torchrun "
                              "(experiments that do: cifar-cnn)")
        device = distributed.device_for(group, device)
        group = distributed.setup(group, device)
    try:
        seed_everything(cfg.seed)
        main = group is None or group.is_main
        with algorithm_choice(device, cfg.deterministic), full_disk_is_one_line(out if resume is None else resume), \
                hold(Path(resume), "the run") if resume is not None and main else nullcontext():
            if main and resume is not None:
                check_resumable(Path(resume), current_info(Path(resume)))
                run = Run.reopen(Path(resume), exp.name, device, cfg.seed, title=exp.title, dist=group)
            elif main:
                run = Run.create(Path(out), exp.name, cfg, device, title=exp.title, dist=group)
            else:
                run = SilentRun(exp.name, device, cfg.seed, dist=group, resumes=resume)
            if main and on_folder is not None:
                on_folder(run.path)
            run.epoch_reporter = reporter
            with following(run.path, log if main else ()):
                _run_recipe(lambda: exp.run(cfg, run), [run])
    finally:
        if group is not None:
            distributed.teardown()
    return run.path if main else None


def resume_config(run_dir: str | Path, overrides: Sequence[str] = (), *,
                  yaml_file: str | Path | None = None) -> tuple[Experiment, Any]:
    """The experiment and the recorded config of stopped run ``run_dir``, for ``run_experiment(resume=)``.

    Overrides (and a YAML file) may repeat recorded values; one that changes the config is
    refused in one line: the snapshots belong to the recorded config.
    """
    from trainlab.experiments.registry import get_experiment

    folder = Path(run_dir)
    info = current_info(folder)
    if not (folder / "config.yaml").is_file():
        raise ConfigError(f"{folder} has no config.yaml; it is not a run folder that trainlab wrote")
    exp = get_experiment(str(info.get("experiment")))
    check_resumable(folder, info)
    recorded = load_config(exp.config_cls, yaml_file=folder / "config.yaml")
    if overrides or yaml_file is not None:
        asked = load_config(exp.config_cls, overrides, yaml_file=yaml_file, base=to_dict(recorded))
        changed = [(k, v, getattr(recorded, k)) for k, v in to_dict(asked).items() if v != getattr(recorded, k)]
        if changed:
            key, want, have = changed[0]
            raise ConfigError(f"--resume continues {folder} with its recorded config, which has {key}={have!r}, "
                              f"not {want!r}; drop {key}= or start a new run")
    return exp, recorded


def current_info(folder: Path) -> dict[str, Any]:
    """``folder``'s run.json with the status ``trainlab runs`` shows (``killed`` for a dead process)."""
    info = read_json(folder / RUN_INFO)
    if not isinstance(info, dict) or "status" not in info:
        raise ConfigError(f"{folder} is not a run folder (no readable run.json); trainlab runs lists them")
    return {**info, **shown_status(info)}


def run_experiments(exp: Experiment, cfgs: Sequence[Any], *, out: str | Path) -> list[Path]:
    """Run several configs of ``exp`` at once through its ``run_batch``, one run folder each.

    The configs differ only in the experiment's ``batchable`` fields, so device, seed and
    algorithm choice (``deterministic``) are the first config's (``run_batch`` seeds per
    config where seeds differ). Every folder ends as :func:`run_experiment`'s would; the
    folders are returned in config order.
    """
    if exp.run_batch is None:
        raise ConfigError(f"{exp.name} cannot run several configs at once (it defines no run_batch)")
    check_out(out)
    device = resolve_device(cfgs[0].device)
    seed_everything(cfgs[0].seed)
    with algorithm_choice(device, cfgs[0].deterministic), full_disk_is_one_line(out):
        runs = [Run.create(Path(out), exp.name, cfg, device, title=exp.title) for cfg in cfgs]
        _run_recipe(lambda: exp.run_batch(list(cfgs), runs), runs)
    return [run.path for run in runs]


def _run_recipe(recipe: Callable[[], None], runs: Sequence[Run]) -> None:
    """Call ``recipe`` (which writes through ``runs``) and finish every run with how it ended."""
    start = time.perf_counter()

    def finish(status: str, error: str | None = None, **extra: Any) -> None:
        seconds = time.perf_counter() - start
        for run in runs:
            run.finish(status, seconds, error=error, **extra)

    try:
        # One CPU thread unless a workload asks for more through device.cpu_plan (quick and
        # full runs alike): toy-size steps are fastest on one, and two threads spin-wait
        # whenever the machine has another busy process.
        with use_threads(1, runs[0].device):
            recipe()
    except KeyboardInterrupt as exc:
        finish("interrupted")
        # A data-parallel rank other than 0 writes no folder, and a batch has several: only a
        # lone run of this process names its folder.
        alone = len(runs) == 1 and not isinstance(runs[0], SilentRun)
        raise interrupted(exc, runs[0].path if alone else None) from None
    except Pruned as exc:  # a tune stopped the run: not a failure, so no error line
        finish("pruned", pruned_epoch=exc.epoch)
        raise
    except TrainlabError as exc:
        finish("failed", str(exc))
        raise
    except Exception as exc:
        finish("failed", f"{type(exc).__name__}: {exc}")
        raise
    seconds = time.perf_counter() - start
    for run in runs:
        run.finish_returned(seconds)
