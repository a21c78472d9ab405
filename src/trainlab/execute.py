"""Run one experiment into a new run folder: config, device, seed, recipe, report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

from trainlab.config import load_config
from trainlab.device import resolve_device, seed_everything, use_threads
from trainlab.errors import TrainlabError
from trainlab.experiments.registry import Experiment, get_experiment
from trainlab.runs import Run


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
) -> Path:
    """Run experiment ``name`` and return its run folder.

    The folder records status ``done``, ``failed`` (with the error) or
    ``interrupted``; its report is rendered in every case so partial results
    can be read. Errors are re-raised for the caller (the CLI) to report.
    """
    exp = get_experiment(name)
    if cfg is None:
        cfg = build_config(exp, overrides, yaml_file=yaml_file, quick=quick)
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    run = Run.create(Path(out), exp.name, cfg, device, title=exp.title)
    start = time.perf_counter()
    try:
        # One CPU thread unless a workload asks for more through device.cpu_plan (quick and
        # full runs alike): toy-size steps are fastest on one, and two threads spin-wait
        # whenever the machine has another busy process.
        with use_threads(1, device):
            exp.run(cfg, run)
    except KeyboardInterrupt:
        run.finish("interrupted", time.perf_counter() - start)
        raise
    except TrainlabError as exc:
        run.finish("failed", time.perf_counter() - start, error=str(exc))
        raise
    except Exception as exc:
        run.finish("failed", time.perf_counter() - start, error=f"{type(exc).__name__}: {exc}")
        raise
    run.finish("done", time.perf_counter() - start)
    return run.path
