"""trainlab: classic deep-learning studies as fast, reproducible experiments.

The Python API (:mod:`trainlab.api`), for notebooks and scripts::

    import trainlab
    trainlab.list_experiments()                       # a DataFrame of every experiment
    run = trainlab.run("mnist-binary", quick=True, hidden=8)
    run.tables["batch_sizes"], run.figures, run.model("bs16_seed0")
    trainlab.compare(run, trainlab.run("mnist-binary", quick=True, hidden=16))
    sweep = trainlab.sweep("mnist-binary", {"lr": [1e-3, 1e-2], "hidden": range(2, 10, 2)}, quick=True)
    sweep.trials, sweep.best("test_acc")                # a DataFrame; the best trial's Run

The names are loaded on first use, so ``import trainlab`` (and the CLI, and any one
submodule such as :mod:`trainlab.files`) imports neither torch nor the recipes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trainlab.api import (Run, Sweep, Tune, compare, list_experiments, list_runs, load_run, load_sweep, load_tune,
                              make_config, run, show, sweep, tune)
    from trainlab.errors import ConfigError, DataError, TrainlabError

__all__ = ["Run", "Sweep", "Tune", "compare", "list_experiments", "list_runs", "load_run", "load_sweep", "load_tune",
           "make_config", "run", "show", "sweep", "tune", "ConfigError", "DataError", "TrainlabError", "__version__"]
ERRORS = ("ConfigError", "DataError", "TrainlabError")
"""What the API raises for bad input (one line naming the fix), catchable as ``trainlab.ConfigError``."""


def __getattr__(name: str) -> Any:
    # PEP 562: the API's names resolve on first access (see the module docstring for why).
    if name == "__version__":
        from trainlab.version import __version__

        return __version__
    if name in ERRORS:
        from trainlab import errors

        return getattr(errors, name)
    if name in __all__:
        from trainlab import api

        return getattr(api, name)
    raise AttributeError(f"module 'trainlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
