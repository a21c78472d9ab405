"""Tuning from Python: :func:`tune` runs an Optuna search, :class:`Tune` reads the tune folder back.

``trainlab.tune("mnist-binary", {"lr": "loguniform(1e-4,1e-1)"}, trials=20, metric="val_acc",
mode="max", quick=True, batch_sizes=[64])`` is ``trainlab tune mnist-binary
'lr=loguniform(1e-4,1e-1)' batch_sizes=[64] --trials 20 --metric val_acc --mode max --quick``:
the space and the fixed settings become the command line's items and go through the one
runner, :func:`trainlab.sweeps.tuning.run_tune`.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from trainlab.api.configs import override_text
from trainlab.api.folder import Run
from trainlab.errors import ConfigError
from trainlab.files import read_jsonl
from trainlab.report.folder import inside
from trainlab.report.tables import rows_to_csv
from trainlab.sweeps.trials import TRIALS_FILE
from trainlab.sweeps.tune_report import best_row, tune_rows
from trainlab.sweeps.tune_folder import STUDY_FILE, read_spec
from trainlab.sweeps.tuning import run_tune


def tune(name: str, space: Mapping[str, str] | None = None, *, trials: int, metric: str, mode: str = "max",
         timeout: str | float | None = None, pruner: str | None = None, quick: bool = False, refit: bool = False,
         backend: str = "local", workers: int = 1, address: str | None = None, gpus_per_trial: float | None = None,
         out: str | Path = "runs", resume: str | Path | None = None, **fixed: Any) -> Tune:
    """Tune experiment ``name`` with Optuna into a new tune folder under ``out`` and return it.

    ``space`` maps a config key to its search range as the command line writes it
    (``{"lr": "loguniform(1e-4,1e-1)", "hidden": "int(4,256,log)", "activation": "choice(relu,tanh)"}``);
    keyword arguments are fixed in every trial. ``metric`` is a validation number of the
    experiment's summary, maximised or minimised (``mode``); ``timeout`` (seconds, or ``"10m"``)
    stops starting trials; ``pruner`` is median (the default), hyperband or none, or on Ray asha
    (the default) or none. ``refit=True`` retrains the best settings on the training and validation
    images once the search ends and reports that run's test numbers (else the best trial's own).
    ``backend="ray"`` runs the search on Ray Tune, ``workers`` trials at a time, on a local Ray or
    the cluster at ``address``, each trial asking for ``gpus_per_trial`` GPUs (as ``trainlab.sweep``).
    ``resume=TUNE_DIR`` continues that tune's study until ``trials`` trials have ended in it (give no space).
    """
    if not isinstance(space or {}, Mapping):
        raise ConfigError(f"space is a {type(space).__name__}, not a dict of key: range; "
                          "write space={'lr': 'loguniform(1e-4,1e-1)'}")
    items = override_text(fixed) + [f"{key}={value}" for key, value in (space or {}).items()]
    return Tune(run_tune(name, items, trials=trials, metric=metric, mode=mode, timeout=timeout, pruner=pruner,
                         quick=quick, refit=refit, backend=backend, workers=workers, address=address,
                         gpus_per_trial=gpus_per_trial, resume=resume, out=out))


class Tune:
    """A tune folder as Python objects: the trials table, the best trial's run, the study's file.

    Like :class:`Run` it only reads: every property reads the folder's files again.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        """The tune folder."""
        spec = read_spec(self.path)
        self.name: str = str(spec["experiment"])
        """The experiment every trial runs."""
        self.metric: str = str(spec["metric"])
        """The summary number the search optimises."""
        self.mode: str = str(spec["mode"])
        """max or min."""
        self._folder = Run(self.path)

    def __repr__(self) -> str:
        return f"Tune({self.name!r}, status={self.status!r}, path={str(self.path)!r})"

    @property
    def status(self) -> str:
        """done, failed, interrupted, running, or killed for a tune whose process died."""
        return self._folder.status

    @property
    def study_path(self) -> Path:
        """The Optuna study (SQLite): ``optuna.load_study(study_name="trainlab", storage=f"sqlite:///{path}")``."""
        return self.path / STUDY_FILE

    @property
    def trials(self) -> pd.DataFrame:
        """One row per ended trial: number, searched values, status, the metric, epochs reached,
        the other summary numbers (test numbers left out), seconds and ``folder``."""
        rows, columns = tune_rows(read_jsonl(inside(self.path, TRIALS_FILE)), self.metric, self.path)
        return pd.read_csv(io.StringIO(rows_to_csv(rows, columns)))

    @property
    def best(self) -> Run:
        """The run of the done trial with the best metric (the first on a tie)."""
        rows, _ = tune_rows(read_jsonl(inside(self.path, TRIALS_FILE)), self.metric, self.path)
        best = best_row(rows, self.metric, self.mode)
        if best is None:
            raise ConfigError(f"no trial of {self.path} has finished with a number in {self.metric!r}")
        return Run(inside(self.path, best["folder"]))

    @property
    def summary(self) -> dict[str, Any]:
        """The tune's summary.json: trial counts, epochs run and saved by pruning, wall time, the best
        trial and the chosen settings' test numbers (``test_from``: ``refit`` or ``best trial``)."""
        return self._folder.summary

    @property
    def refit(self) -> Run | None:
        """The run that retrained the best settings on training + validation images (``refit=True``), or None."""
        folder = self.summary.get("test_folder") if self.summary.get("test_from") == "refit" else None
        return Run(inside(self.path, folder)) if folder else None

    def report_html(self) -> Path:
        """The path of the tune's report.html."""
        return self._folder.report_html()


def load_tune(path: str | Path) -> Tune:
    """The tune in folder ``path`` (the folder ``trainlab tune`` printed)."""
    return Tune(path)
