"""Experiment discovery.

Every module in this package whose name does not start with ``_`` and that
defines the recipe contract is an experiment:

- ``NAME``: the CLI name (``mnist-binary``),
- ``STUDY``: the key of the original study it comes from (see :data:`STUDIES`),
- ``QUESTION``: the study's question or section it answers (``Q1``, ``§2.2``),
- ``SUMMARY``: one line for ``trainlab list`` and the README (without the study's name),
- ``RUNTIME``: expected runtime of the default config on 2 CPU cores ("~40 s"),
- ``QUICK``: a dict of overrides small enough for tests and the tour (seconds,
  on data that needs no download),
- ``Config``: a dataclass inheriting :class:`trainlab.config.BaseConfig`,
- ``run(cfg: Config, out: Run) -> None``: the recipe, writing everything through ``out``;
- optionally ``DISTRIBUTED = True``: the recipe trains data-parallel when started by
  ``torchrun`` (it passes ``out.dist`` to its trainer and writes only on rank 0);
- optionally, to run several sweep trials at once (for example as one stacked model,
  :mod:`trainlab.train.stack`), both of:

  - ``BATCHABLE = ("hidden", "lr", ...)``: the config fields that may differ inside one batch
    (device and seed are the first config's unless listed here),
  - ``run_batch(cfgs, runs)``: run the configs together, writing config i through ``runs[i]``
    exactly as ``run(cfgs[i], runs[i])`` would.

:mod:`trainlab.execute` runs an :class:`Experiment`: ``run_experiment`` one config,
``run_experiments`` a batch through ``run_batch``.

Modules are found by name, so adding an experiment never edits a shared list.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable

import trainlab.experiments as package
from trainlab.errors import ConfigError


# The original studies, as users know them: by topic, never by a file number.
# docs/studies.md has one section per study with the questions each experiment answers.
STUDIES: dict[str, str] = {
    "mlp": "MNIST MLP study",
    "numpy": "NumPy network study",
    "optim-cnn": "Optimisation & CNN study",
    "diffusion": "Diffusion study",
    "ebm": "Energy-based model study",
}


@dataclass(frozen=True)
class Experiment:
    name: str
    summary: str
    study: str
    """Key into :data:`STUDIES`."""
    question: str
    runtime: str
    quick: dict[str, Any]
    config_cls: type
    run: Callable[[Any, Any], None]
    module: str
    distributed: bool = False
    """True when the recipe can train data-parallel under torchrun."""
    batchable: tuple[str, ...] = ()
    """Config fields that may differ between the configs of one ``run_batch`` call."""
    run_batch: Callable[[list, list], None] | None = None
    """Runs several configs at once (``run_batch(cfgs, runs)``), or None when the recipe cannot."""

    @property
    def batches(self) -> bool:
        """True when sweep trials of this experiment can run together through ``run_batch``."""
        return bool(self.batchable) and self.run_batch is not None

    @property
    def study_title(self) -> str:
        """The study's name for people ("MNIST MLP study"); empty for experiments of no study."""
        return STUDIES.get(self.study, self.study)

    @property
    def source(self) -> str:
        """Study and question, e.g. "Optimisation & CNN study, Q1.4"."""
        return ", ".join(part for part in (self.study_title, self.question) if part)

    @property
    def title(self) -> str:
        """One line for people: where the experiment comes from and what it does."""
        return f"{self.source}: {self.summary}" if self.source else self.summary


def _from_module(mod: ModuleType) -> Experiment | None:
    if not all(hasattr(mod, attr) for attr in ("NAME", "Config", "run")):
        return None
    return Experiment(
        name=mod.NAME,
        summary=getattr(mod, "SUMMARY", ""),
        study=getattr(mod, "STUDY", ""),
        question=getattr(mod, "QUESTION", ""),
        runtime=getattr(mod, "RUNTIME", "?"),
        quick=dict(getattr(mod, "QUICK", {})),
        config_cls=mod.Config,
        run=mod.run,
        module=mod.__name__,
        distributed=bool(getattr(mod, "DISTRIBUTED", False)),
        batchable=tuple(getattr(mod, "BATCHABLE", ())),
        run_batch=getattr(mod, "run_batch", None) if callable(getattr(mod, "run_batch", None)) else None,
    )


def all_experiments() -> dict[str, Experiment]:
    """Name -> experiment, sorted by name."""
    found: dict[str, Experiment] = {}
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_") or info.name == "registry":
            continue
        exp = _from_module(importlib.import_module(f"{package.__name__}.{info.name}"))
        if exp is not None:
            found[exp.name] = exp
    return dict(sorted(found.items()))


def by_study(experiments: dict[str, Experiment] | None = None) -> dict[str, list[Experiment]]:
    """Study title -> its experiments, studies in the order of :data:`STUDIES`, others last."""
    experiments = all_experiments() if experiments is None else experiments
    order = list(STUDIES)
    ranked = sorted(experiments.values(),
                    key=lambda e: (order.index(e.study) if e.study in order else len(order), e.name))
    groups: dict[str, list[Experiment]] = {}
    for exp in ranked:
        groups.setdefault(exp.study_title or "Other", []).append(exp)
    return groups


def find_experiment(name: str) -> Experiment | None:
    """Experiment ``name`` from the module named after it, importing no other recipe; None if there is none."""
    module_name = name.replace("-", "_")
    if not module_name.isidentifier() or module_name.startswith("_") or module_name == "registry":
        return None
    try:
        exp = _from_module(importlib.import_module(f"{package.__name__}.{module_name}"))
    except ModuleNotFoundError as exc:
        if exc.name != f"{package.__name__}.{module_name}":
            raise
        return None
    return exp if exp is not None and exp.name == name else None


def get_experiment(name: str) -> Experiment:
    # The module named after the experiment is tried first, so running one
    # experiment (or one Ray trial) does not import every other recipe.
    exp = find_experiment(name)
    if exp is not None:
        return exp
    experiments = all_experiments()
    if name not in experiments:
        import difflib

        match = difflib.get_close_matches(name, list(experiments), n=1, cutoff=0.4)
        hint = f"; did you mean {match[0]}?" if match else ""
        raise ConfigError(
            f"unknown experiment {name!r}{hint} (trainlab list shows all: {', '.join(experiments)})"
        )
    return experiments[name]
