"""Run one experiment into a new run folder: config, device, seed, recipe, report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

from trainlab.config import load_config
from trainlab.device import resolve_device, seed_everything, use_threads
from trainlab.errors import ConfigError, TrainlabError
from trainlab.experiments.registry import Experiment, get_experiment
from trainlab.processes import interrupted
from trainlab.runs import Run, SilentRun, check_out, full_disk_is_one_line
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


def run_experiment(
    name: str,
    overrides: Sequence[str] = (),
    *,
    yaml_file: str | Path | None = None,
    quick: bool = False,
    out: str | Path = "runs",
    cfg: Any = None,
) -> Path | None:
    """Run experiment ``name`` and return its run folder.

    The folder records status ``done``, ``diverged`` (the recipe said its result
    diverged: ``Run.mark_diverged``), ``failed`` (with the error) or ``interrupted``
    (Ctrl-C or SIGTERM: raised again as :class:`~trainlab.processes.Interrupted` naming
    the folder); its report is rendered in every case so partial results can be read.
    Errors are re-raised for the caller (the CLI) to report; a full disk is one
    :class:`TrainlabError` line.

    Started by ``torchrun`` with more than one process, every process joins the
    data-parallel job (experiments that declare ``DISTRIBUTED = True`` only);
    rank 0 writes the one run folder, the other ranks write nothing and get None.
    """
    exp = get_experiment(name)
    if cfg is None:
        cfg = build_config(exp, overrides, yaml_file=yaml_file, quick=quick)
    check_out(out)
    device = resolve_device(cfg.device)
    job = distributed.from_env()
    if job is not None:
        if not exp.distributed:
            raise ConfigError(f"{exp.name} does not train data-parallel; run it without torchrun "
                              "(experiments that do: cifar-cnn)")
        device = distributed.device_for(job, device)
        job = distributed.setup(job, device)
    try:
        seed_everything(cfg.seed)
        main = job is None or job.is_main
        with full_disk_is_one_line(out):
            if main:
                run = Run.create(Path(out), exp.name, cfg, device, title=exp.title)
            else:
                run = SilentRun(exp.name, device, cfg.seed)
            run.dist = job
            _run_recipe(exp, cfg, run, quick)
    finally:
        if job is not None:
            distributed.teardown()
    return run.path if main else None


def _run_recipe(exp: Experiment, cfg: Any, run: Run, quick: bool) -> None:
    start = time.perf_counter()
    try:
        # One CPU thread unless a workload asks for more through device.cpu_plan (quick and
        # full runs alike): toy-size steps are fastest on one, and two threads spin-wait
        # whenever the machine has another busy process.
        with use_threads(1, run.device):
            exp.run(cfg, run)
    except KeyboardInterrupt as exc:
        run.finish("interrupted", time.perf_counter() - start)
        # A data-parallel rank other than 0 writes no folder: only rank 0 names one.
        raise interrupted(exc, None if isinstance(run, SilentRun) else run.path) from None
    except TrainlabError as exc:
        run.finish("failed", time.perf_counter() - start, error=str(exc))
        raise
    except Exception as exc:
        run.finish("failed", time.perf_counter() - start, error=f"{type(exc).__name__}: {exc}")
        raise
    run.finish_returned(time.perf_counter() - start)
