"""Running an experiment from Python: :func:`run` returns the finished run as a :class:`~trainlab.api.folder.Run`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from trainlab.api.configs import make_config, override_text
from trainlab.api.folder import Run
from trainlab.config import to_dict
from trainlab.errors import ConfigError
from trainlab.execute import resume_config, run_experiment, stored_config
from trainlab.experiments.registry import get_experiment


def run(name: str | None = None, *, quick: bool = False, out: str | Path = "runs", device: str = "auto",
        seed: int | None = None, config: Any = None, log: Sequence[str] = (), resume: str | Path | None = None,
        **overrides: Any) -> Run:
    """Run experiment ``name`` into a new folder under ``out`` and return it, blocking until it ends.

    Overrides are keyword arguments (``hidden=8, batch_sizes=[16, 128]``) validated exactly
    like ``key=value`` on the command line, or a whole ``config`` (from :func:`make_config`).
    ``device`` and ``seed`` set those fields (``device="auto"`` keeps what the config says).
    An invalid config raises :class:`~trainlab.errors.ConfigError` before anything runs; a
    recipe that fails returns its run with ``status == "failed"`` and the ``error``.
    Ctrl-C (a notebook's stop button) stops the run and is raised again. ``log=["tensorboard",
    "mlflow"]`` logs the run live to those trackers (:mod:`trainlab.export`).

    ``resume=RUN_DIR`` continues that stopped (interrupted, killed or failed) run in its own folder
    from its last snapshot, with the config it recorded (``name`` may be left out; overrides that
    change the config are refused), as ``trainlab run --resume RUN_DIR`` does.
    """
    flags = {**({"device": device} if device != "auto" else {}), **({"seed": seed} if seed is not None else {})}
    if resume is not None:
        if quick or config is not None:
            raise ConfigError("resume= continues the run with its recorded config; drop quick= and config=")
        exp, cfg = resume_config(resume, override_text({**overrides, **flags}))
        if name is not None and name != exp.name:
            raise ConfigError(f"{resume} is a run of {exp.name}, not {name}")
        return _launch(exp, cfg, out, log, resume)
    if name is None:
        raise ConfigError("give an experiment name (trainlab.list_experiments() lists them) or resume=RUN_DIR")
    exp = get_experiment(name)
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
    return _launch(exp, cfg, out, log, None)


def _launch(exp: Any, cfg: Any, out: str | Path, log: Sequence[str], resume: str | Path | None) -> Run:
    """Run (or resume) through the one run path; a recipe's failure returns the run that recorded it."""
    started: list[Path] = []
    try:
        path = run_experiment(exp, cfg, out=out, on_folder=started.append, log=log, resume=resume)
    except Exception:
        if not started:  # nothing ran (the output folder, the device): the error is the answer
            raise
        return Run(started[0])  # the folder recorded the failure
    if path is None:
        raise ConfigError("under torchrun only rank 0 writes the run folder; use trainlab run NAME there")
    return Run(path)

