"""Sweeps from Python: :func:`sweep` runs a grid of configs, :class:`Sweep` reads the sweep folder back.

``trainlab.sweep("mnist-binary", {"lr": [1e-3, 1e-2]}, quick=True, batch_sizes=[64])`` is
``trainlab sweep mnist-binary lr=choice(0.001,0.01) batch_sizes=[64] --quick``: the grid and
the fixed settings become the command line's items and go through the one sweep runner,
:func:`trainlab.sweeps.run_sweep`, so the trials, the folder and the error messages are the same.
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from trainlab.api.configs import override_text, value_text
from trainlab.api.folder import SCOPE, Run
from trainlab.errors import ConfigError
from trainlab.files import read_jsonl
from trainlab.report import markdown
from trainlab.report.folder import inside
from trainlab.report.html import figure_html, header_html, summary_box, summary_entries
from trainlab.report.style import scoped_css
from trainlab.report.tables import rows_to_csv
from trainlab.sweeps import read_plan, run_sweep
from trainlab.sweeps.grid import describe_grid
from trainlab.sweeps.trials import TRIALS_FILE, table_rows

MODES = ("max", "min")


def sweep(name: str, grid: Mapping[str, Iterable[Any]] | None = None, *, quick: bool = False,
          backend: str = "local", workers: int = 1, address: str | None = None,
          gpus_per_trial: float | None = None, out: str | Path = "runs",
          resume: str | Path | None = None, log: Sequence[str] = (), **fixed: Any) -> Sweep:
    """Run one trial of experiment ``name`` per point of ``grid`` into a new sweep folder under
    ``out`` and return it, blocking until every trial has ended.

    ``grid`` maps a config key to the values it takes (a list, tuple, range or any iterable:
    ``{"lr": [1e-3, 1e-2], "hidden": range(2, 10, 2)}``; a list-valued setting takes lists,
    ``{"batch_sizes": [[16], [64]]}``); trials are the grid's cartesian product, the first key
    changing slowest. Keyword arguments are fixed in every trial (``epochs=2``). Every trial
    config is validated before anything runs (the command line's :class:`ConfigError`); a trial
    that fails or diverges is a row with that status and the sweep goes on. ``backend``,
    ``workers``, ``address`` and ``gpus_per_trial`` are ``trainlab sweep``'s options
    (``backend="ray"`` for Ray Tune).
    ``resume=SWEEP_DIR`` runs the trials of that sweep not yet done or diverged (give no grid,
    or the one it was started with). Ctrl-C (a notebook's stop button) stops the sweep, writes
    its report and is raised again; resume it later. ``log=["mlflow"]`` logs the sweep live as
    one MLflow run with each trial nested (``"tensorboard"``: each trial under ``tb/``).
    """
    items = override_text(fixed) + grid_items(grid or {})
    return Sweep(run_sweep(name, items, quick=quick, backend=backend, workers=workers, address=address,
                           gpus_per_trial=gpus_per_trial, resume=resume, out=out, log=log))


def grid_items(grid: Mapping[str, Iterable[Any]]) -> list[str]:
    """``{"lr": [0.001, 0.01]}`` as the command line's ``["lr=choice(0.001,0.01)"]``.

    ``choice(...)`` even for one value, so ``{"lr": [0.01]}`` is a swept key (a column of the
    trials table) and a list-valued setting (``[[16], [64]]``) is never read as one fixed list.
    A value that is not a collection of values is refused rather than guessed at: is
    ``{"lr": 0.01}`` a sweep of one value or a list left unfinished?
    """
    if not isinstance(grid, Mapping):
        raise ConfigError(f"grid is a {type(grid).__name__}, not a dict of key: values; "
                          "write grid={'lr': [0.001, 0.01]}")
    items = []
    for key, values in grid.items():
        values = values.tolist() if hasattr(values, "tolist") else values  # NumPy arrays, tensors
        if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
            raise ConfigError(f"grid[{key!r}] is {values!r}, not a list of values; "
                              f"write grid={{{key!r}: [{values!r}]}} to sweep it, or pass {key}={values!r} "
                              "to fix it in every trial")
        texts = [value_text(v) for v in values]
        if not texts:
            raise ConfigError(f"grid[{key!r}] is empty; give it at least one value")
        items.append(f"{key}=choice({','.join(texts)})")
    return items


class Sweep:
    """A sweep folder as Python objects: the trials table, each trial's run, the best trial, the report.

    ``trainlab.sweep(...)`` and ``trainlab.load_sweep(path)`` return one. Like :class:`Run` it
    only reads: every property reads the folder's files again, so a sweep still running (in
    another process) shows its latest state.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        """The sweep folder."""
        spec, _ = read_plan(self.path)
        self.name: str = str(spec.get("experiment", ""))
        """The experiment every trial runs."""
        self._folder = Run(self.path)  # the sweep folder is a run folder too: run.json, summary, report

    def __repr__(self) -> str:
        return f"Sweep({self.name!r}, status={self.status!r}, path={str(self.path)!r})"

    @property
    def status(self) -> str:
        """done, failed (the backend broke; failed trials do not fail the sweep), interrupted,
        running, or killed for a sweep whose process died."""
        return self._folder.status

    @property
    def grid(self) -> dict[str, list[Any]]:
        """Swept key -> its values as the trials' configs hold them, in grid order."""
        spec, trials = read_plan(self.path)
        return {key: _unique(t.params[key] for t in trials) for key in spec.get("swept", {})}

    @property
    def trials(self) -> pd.DataFrame:
        """One row per trial in grid order: the swept values, status, every summary number, seconds,
        key and ``folder`` (the trial's run folder, relative to the sweep folder).

        The table ``tables/trials.csv`` holds, computed from ``trials.jsonl`` by the report's own
        code and read as that CSV is (pandas infers each column's type), so it is current also
        while the sweep runs; trials not yet run have status ``pending``.
        """
        _, trials = read_plan(self.path)
        rows, columns = table_rows(trials, read_jsonl(inside(self.path, TRIALS_FILE)), self.path)
        return pd.read_csv(io.StringIO(rows_to_csv(rows, columns)))

    def run(self, trial: int) -> Run:
        """The run folder of trial number ``trial`` (the table's ``trial`` column)."""
        table = self.trials
        row = table[table["trial"] == trial]
        if row.empty:
            raise ConfigError(f"the sweep has no trial {trial}; its trials are 0 to {len(table) - 1}")
        folder = row["folder"].iloc[0] if "folder" in row else None
        if not isinstance(folder, str) or not folder:
            raise ConfigError(f"trial {trial} has no run folder (status {row['status'].iloc[0]})")
        return Run(inside(self.path, folder))

    def best(self, metric: str, mode: str = "max") -> Run:
        """The run of the trial with the highest (``mode="max"``) or lowest (``"min"``) ``metric``,
        a number column of :attr:`trials`; trials not ``done`` (failed, diverged, pending) and
        trials without a finite value are left out. A tie goes to the first trial in grid order."""
        if mode not in MODES:
            raise ConfigError(f"mode={mode!r} is not one of {', '.join(MODES)}")
        table = self.trials
        numeric = [c for c in table.columns if c != "trial" and pd.api.types.is_numeric_dtype(table[c])
                   and not pd.api.types.is_bool_dtype(table[c])]
        if metric not in numeric:
            raise ConfigError(f"{metric!r} is not a number column of the sweep's trials; "
                              f"give one of: {', '.join(numeric) or '(none: no trial has finished)'}")
        values = table[metric].astype(float).where(table["status"] == "done")
        values = values.where(values.abs() != math.inf)  # NaN (a diverged number) is left out already
        if values.isna().all():
            raise ConfigError(f"no finished trial has a number in {metric!r} "
                              f"(statuses: {', '.join(f'{s} {n}' for s, n in table['status'].value_counts().items())})")
        best = values.idxmax() if mode == "max" else values.idxmin()
        return self.run(int(table.loc[best, "trial"]))

    def report_html(self) -> Path:
        """The path of the sweep's report.html (self-contained: open it in a browser)."""
        return self._folder.report_html()

    def _repr_html_(self) -> str:
        """Status, trial counts, the grid and the headline figure (every trial: :attr:`trials`)."""
        spec, _ = read_plan(self.path)
        parts = header_html(f"Sweep of {self.name}", {**self._folder.info, "status": self.status})
        parts.append(f"<p class='meta'><code>{html.escape(str(self.path))}</code></p>")
        counts = self._folder.summary  # trials, done, diverged, failed, pending
        if counts:
            parts.append(summary_box(summary_entries(counts, self._folder.info.get("headline"))))
        parts.append(markdown.to_html(describe_grid(spec.get("swept", {}), spec.get("fixed", []))))
        for name, png in self._folder.figures.items():
            parts.append(figure_html(png, name))
        return f"<div class='{SCOPE}'><style>{scoped_css('.' + SCOPE)}</style>{''.join(parts)}</div>"


def load_sweep(path: str | Path) -> Sweep:
    """The sweep in folder ``path`` (the folder ``trainlab sweep`` printed, or :attr:`Sweep.path`)."""
    return Sweep(path)


def _unique(values: Iterable[Any]) -> list[Any]:
    """``values`` without repeats, in first-seen order (values may be lists, so not a dict's keys)."""
    out: list[Any] = []
    for value in values:
        if value not in out:
            out.append(value)
    return out
