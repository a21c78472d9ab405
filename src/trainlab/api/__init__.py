"""trainlab's Python API: experiments, configs, runs and sweeps as data (DataFrames, :class:`Run`
and :class:`Sweep` objects).

Every call goes the command line's way: keyword overrides are validated as ``key=value``
items are, runs go through :func:`trainlab.execute.run_experiment`, and what a
:class:`Run` shows is read from its run folder. The names are re-exported by ``trainlab``.
"""

import warnings

with warnings.catch_warnings():
    # In Jupyter without ipywidgets, tqdm.auto warns once, on first import, and falls back to
    # text bars, which is what trainlab wants there: the first import happens here, quietly,
    # before any module below imports it.
    warnings.filterwarnings("ignore", message="IProgress not found")
    import tqdm.auto  # noqa: F401

from trainlab.api.configs import list_experiments, make_config, show
from trainlab.api.folder import Run, load_run
from trainlab.api.launch import run
from trainlab.api.overview import compare, list_runs
from trainlab.api.sweeps import Sweep, load_sweep, sweep
from trainlab.api.tunes import Tune, load_tune, tune

__all__ = ["Run", "Sweep", "Tune", "compare", "list_experiments", "list_runs", "load_run", "load_sweep", "load_tune",
           "make_config", "run", "show", "sweep", "tune"]
