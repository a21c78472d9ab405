"""Running an experiment from Python: :func:`run` returns the finished run as a :class:`~trainlab.api.folder.Run`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from trainlab.api.configs import make_config
from trainlab.api.folder import Run
from trainlab.config import to_dict
from trainlab.errors import ConfigError
from trainlab.execute import run_experiment, stored_config
from trainlab.experiments.registry import get_experiment
from trainlab.files import read_json
from trainlab.report.folder import RUN_INFO


def run(name: str, *, quick: bool = False, out: str | Path = "runs", device: str = "auto",
        seed: int | None = None, config: Any = None, log: Sequence[str] = (), **overrides: Any) -> Run:
    """Run experiment ``name`` into a new folder under ``out`` and return it, blocking until it ends.

    Overrides are keyword arguments (``hidden=8, batch_sizes=[16, 128]``) validated exactly
    like ``key=value`` on the command line, or a whole ``config`` (from :func:`make_config`).
    ``device`` and ``seed`` set those fields (``device="auto"`` keeps what the config says).
    An invalid config raises :class:`~trainlab.errors.ConfigError` before anything runs; a
    recipe that fails returns its run with ``status == "failed"`` and the ``error``.
    Ctrl-C (a notebook's stop button) stops the run and is raised again. ``log=["tensorboard",
    "mlflow"]`` logs the run live to those trackers (:mod:`trainlab.export`).
    """
    exp = get_experiment(name)
    flags = {**({"device": device} if device != "auto" else {}), **({"seed": seed} if seed is not None else {})}
    if config is None:
        cfg = make_config(name, quick, **overrides, **flags)
    elif overrides or quick:
        raise ConfigError("give either config= or overrides and quick=, not both; "
                          f"trainlab.make_config({name!r}, ...) makes a config from overrides")
    elif not isinstance(config, exp.config_cls):
        raise ConfigError(f"config= is a {type(config).__name__}, not {name}'s Config; "
                          f"trainlab.make_config({name!r}) makes one")
    else:  # validated again: a config's fields may have been changed after it was made
        cfg = stored_config(exp, {**to_dict(config), **flags})
    before = _folders(Path(out) / name)
    try:
        path = run_experiment(exp, cfg, out=out, log=log)
    except Exception:
        failed = _started_here(Path(out) / name, before)
        if failed is None:  # nothing ran (the output folder, the device): the error is the answer
            raise
        return Run(failed)
    if path is None:
        raise ConfigError("under torchrun only rank 0 writes the run folder; use trainlab run NAME there")
    return Run(path)


def _folders(parent: Path) -> set[Path]:
    return set(parent.iterdir()) if parent.is_dir() else set()


def _started_here(parent: Path, before: set[Path]) -> Path | None:
    """The run folder this process made under ``parent`` since ``before`` (execute recorded the failure in it)."""
    new = [p for p in _folders(parent) - before if (read_json(p / RUN_INFO) or {}).get("pid") == os.getpid()]
    return new[0] if len(new) == 1 else None
