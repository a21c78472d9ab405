"""The run folder: metrics.jsonl, env.json, tables, figures, report.

A run folder is ``<out>/<experiment>/<YYYYmmdd-HHMMSS>-<confighash>/`` and is never
overwritten. Recipes write everything through a :class:`Run`; the order in which
tables, figures and text are added is kept in ``report.json`` so that
``trainlab report RUN_DIR`` can re-render the report from the files alone.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional, Sequence

from trainlab.config import config_hash, to_yaml
from trainlab.environment import environment
from trainlab.errors import ConfigError, TrainlabError
from trainlab.files import append_jsonl, atomic_write, jsonable
from trainlab.processes import identity, timestamp
from trainlab.report.html import render_report
from trainlab.report.folder import MANIFEST, RUN_INFO
from trainlab.report.tables import rows_to_csv, rows_to_markdown

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
"""A full disk or quota: the errors that end a run with one line instead of a traceback."""

STATUSES = ("running", "done", "diverged", "failed", "interrupted", "pruned", "killed")
"""Every status a run folder can show: the six run.json records (``pruned``: a tune stopped the
run early, :class:`Pruned`), and ``killed`` for a ``running`` run whose process died (:func:`trainlab.run_list.shown_status`)."""


EpochReporter = Callable[[int, dict[str, Any]], Optional[Iterable[str]]]
"""A run's watcher: ``reporter(step, values)`` with :meth:`Run.report_epoch`'s numbers (a stacked
trial's under ``values["members"]``); it may raise :class:`Pruned`, and returns the names of the
members it gives up on (or None)."""


class Pruned(Exception):
    """Raised by a run's epoch reporter (:meth:`Run.report_epoch`) to stop a run a tune gave up on.

    Not a :class:`TrainlabError`: nothing went wrong. The executor finishes the run ``pruned``
    with the epoch it reached and raises it again for the tune.
    """

    def __init__(self, epoch: int):
        super().__init__(f"pruned after epoch {epoch}")
        self.epoch = epoch


@dataclass
class ReportItem:
    kind: str  # "table" | "figure" | "text" | "code"
    name: str
    title: str
    caption: str = ""


class Run:
    """Everything a recipe writes goes through here."""

    def __init__(self, path: Path, experiment: str, device: Any = None, seed: int = 0, dist: Any = None):
        self.path = Path(path)
        self.experiment = experiment
        self.device = device
        self.seed = seed
        self._items: list[ReportItem] = []
        self._summary: dict[str, Any] = {}
        self._headline: str | None = None
        self.dist = dist
        """The data-parallel group this run belongs to (a ``train.distributed.DistContext``), or None."""
        self.diverged: str | None = None
        """What of this run's result diverged, once a recipe said so with :meth:`mark_diverged`."""
        self.replaying = False
        """A resumed run re-running the recipe up to its last snapshot: records logged before
        that point are in metrics.jsonl already, so :meth:`log` writes nothing meanwhile."""
        self._snapshots: Any = None
        self.state_folder = self.path
        """The folder whose ``state/`` snapshots this run loads (its own, but see :class:`SilentRun`)."""
        self.epoch_reporter: EpochReporter | None = None
        """What :meth:`report_epoch` calls (a tune's pruning check, installed by the executor), or None."""

    # -- creation -----------------------------------------------------------
    @classmethod
    def create(cls, out: Path, experiment: str, cfg: Any, device: Any, title: str = "", dist: Any = None) -> "Run":
        """Make a new, never-before-used run folder and write config.yaml, env.json, run.json.

        ``title`` (the experiment's study, question and summary) heads the report; ``dist``
        is the data-parallel group the run belongs to, if any.
        """
        check_out(out)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        path = _new_folder(Path(out) / experiment / f"{stamp}-{config_hash(cfg)}")
        seed = getattr(cfg, "seed", 0)
        run = cls(path, experiment, device=device, seed=seed, dist=dist)
        atomic_write(path / "config.yaml", to_yaml(cfg))
        atomic_write(path / "env.json", json.dumps(environment(device, seed), indent=2))
        # pid, host and the process's start time: `trainlab runs` tells a dead run from a live one
        run._write_info(status="running", started=timestamp(), **identity(), **({"title": title} if title else {}))
        return run

    @classmethod
    def reopen(cls, path: Path, experiment: str, device: Any, seed: int, title: str = "", dist: Any = None) -> "Run":
        """The run of an existing folder, to continue it (``--resume``): running again, by this process.

        metrics.jsonl goes back to the last snapshot, and the run replays quietly up to it.
        """
        from trainlab.resume import read_manifest, rewind_metrics

        run = cls(path, experiment, device=device, seed=seed, dist=dist)
        rewind_metrics(path)
        run.replaying = bool(read_manifest(path).get("latest"))
        info = json.loads((path / RUN_INFO).read_text())
        resumed = int(info.get("resumed", 0)) + 1
        for stale in ("finished", "seconds", "error"):
            info.pop(stale, None)
        run._write_info(**{**info, "status": "running", "resumed": resumed, **identity(),
                           **({"title": title} if title else {})})
        return run

    # -- metrics ------------------------------------------------------------
    def log(self, **record: Any) -> None:
        """Append one record (an epoch, a step, a trial) to metrics.jsonl."""
        if not self.replaying:
            append_jsonl(self.path / "metrics.jsonl", record)

    def report_epoch(self, step: int, members: Mapping[str, Mapping[str, float]] | None = None,
                     **values: float) -> frozenset[str]:
        """Hand one epoch's validation numbers to whoever watches this run (a tune's pruner).

        The one pruning hook: recipes call it from their training loop's epoch callback, with
        ``step`` counting epochs over the whole run. It may raise :class:`Pruned`; without a
        watcher (a plain ``trainlab run``) it does nothing.

        A run that trains several models as one (a stacked trial) also gives each member's
        numbers, ``members={name: {"val_acc": ...}}`` with ``step`` the member's own epoch, and
        gets back the names of the members the watcher gives up on: the recipe stops training
        those (status ``pruned`` with the epoch) and goes on with the others. The watcher sees
        them as ``values["members"]``.
        """
        if self.epoch_reporter is None or self.replaying:
            return frozenset()
        given_up = self.epoch_reporter(step, {**values, "members": dict(members)} if members else dict(values))
        return frozenset(given_up or ())

    def snapshots(self, every_s: float) -> Any:
        """This run's :class:`~trainlab.resume.RunSnapshots`: slots for its training jobs' snapshots,
        saved at the first epoch boundary after every ``every_s`` seconds (``checkpoint_every``)."""
        if self._snapshots is None:
            from trainlab.resume import RunSnapshots

            def caught_up() -> None:
                self.replaying = False

            self._snapshots = RunSnapshots(self.state_folder, every_s, writable=not isinstance(self, SilentRun),
                                           on_caught_up=caught_up)
        return self._snapshots

    def summary(self, headline: str | None = None, **values: Any) -> None:
        """Add headline numbers to summary.json (one flat JSON object).

        ``headline`` names the key that ``trainlab runs`` shows for this run.
        """
        self._summary.update(jsonable(values))
        if headline is not None:
            self._headline = headline
        atomic_write(self.path / "summary.json", json.dumps(self._summary, indent=2))
        if self._headline:
            self._update_info(headline=self._headline)

    # -- report content ------------------------------------------------------
    def table(
        self,
        name: str,
        rows: Sequence[Mapping[str, Any]],
        *,
        title: str = "",
        caption: str = "",
        columns: Sequence[str] | None = None,
        floatfmt: str | None = None,
        markdown: str | None = None,
        row_classes: Mapping[int, str] | None = None,
    ) -> Path:
        """Write ``tables/<name>.csv`` and ``tables/<name>.md`` and add the table to the report.

        Numbers in the Markdown are rounded for reading (:mod:`trainlab.report.numbers`;
        ``floatfmt`` such as ``".6g"`` overrides it for floats), the CSV keeps every digit.
        ``markdown`` replaces the default rendering (for highlighted rows);
        ``row_classes`` maps row index to ``best`` or ``worst`` to colour rows in report.html.
        """
        columns = list(columns) if columns else _columns(rows)
        atomic_write(self.path / "tables" / f"{name}.csv", rows_to_csv(rows, columns))
        md = markdown if markdown is not None else rows_to_markdown(rows, columns, floatfmt)
        atomic_write(self.path / "tables" / f"{name}.md", md)
        if row_classes:
            atomic_write(self.path / "tables" / f"{name}.rows.json",
                         json.dumps({str(i): c for i, c in row_classes.items()}))
        self._add(ReportItem("table", name, title or name, caption))
        return self.path / "tables" / f"{name}.csv"

    def figure(self, name: str, fig: Any, *, title: str = "", caption: str = "", dpi: int = 110) -> Path:
        """Save a matplotlib figure as ``figures/<name>.png`` (and close it)."""
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
        if "matplotlib.pyplot" in sys.modules:  # a figure made with pyplot stays open until closed
            sys.modules["matplotlib.pyplot"].close(fig)
        atomic_write(self.path / "figures" / f"{name}.png", buf.getvalue())
        self._add(ReportItem("figure", name, title or name, caption))
        return self.path / "figures" / f"{name}.png"

    def text(self, name: str, body: str, *, title: str = "", code: bool = False) -> None:
        """A paragraph (Markdown) or, with ``code=True``, a preformatted block such as a model printout."""
        atomic_write(self.path / "text" / f"{name}.md", body)
        self._add(ReportItem("code" if code else "text", name, title or name))

    def file(self, relpath: str, data: bytes | str) -> Path:
        """Any other artefact (e.g. ``samples/moons_T100.npy`` bytes), written atomically."""
        target = self.path / relpath
        atomic_write(target, data)
        return target

    def save_array(self, relpath: str, array: Any) -> Path:
        """Save a NumPy array as .npy (no pickle)."""
        import numpy as np

        buf = io.BytesIO()
        np.save(buf, np.asarray(array), allow_pickle=False)
        return self.file(relpath, buf.getvalue())

    # -- lifecycle ------------------------------------------------------------
    def mark_diverged(self, what: str) -> None:
        """Say that this run's result diverged: its headline numbers are NaN/Inf because training was.

        ``what`` says which part (one line); the run then finishes ``diverged``, not ``done``.
        """
        self.diverged = what

    def finish_returned(self, seconds: float | None = None) -> None:
        """Finish a run whose recipe returned: ``done``, or ``diverged`` (with the reason) if it said so."""
        if self.replaying:  # a recipe that never asked for the job it saved last: its metrics would be lost
            self.finish("failed", seconds, error="the resumed run never reached its last snapshot "
                        "(the recipe changed?); start it again without --resume")
        elif self.diverged:
            self.finish("diverged", seconds, error=self.diverged)
        else:
            self.finish("done", seconds)
        if not self.replaying and not isinstance(self, SilentRun):
            # A finished run resumes no more, and checkpoints/ holds its models: the snapshots
            # (for ebm-sample hundreds of MB, optimizer moments included) would only take space.
            shutil.rmtree(self.path / "state", ignore_errors=True)

    def finish(self, status: str = "done", seconds: float | None = None, error: str | None = None,
               **extra: Any) -> None:
        """Record how the run ended in run.json (``extra``: more fields, e.g. ``pruned_epoch``) and render the report."""
        info = {"status": status, "finished": timestamp(), **extra}
        if seconds is not None:
            info["seconds"] = round(seconds, 3)
        if error:
            info["error"] = error
        self._update_info(**info)
        render_report(self.path)

    def _add(self, item: ReportItem) -> None:
        self._items = [i for i in self._items if not (i.kind == item.kind and i.name == item.name)]
        self._items.append(item)
        atomic_write(self.path / MANIFEST, json.dumps([i.__dict__ for i in self._items], indent=2))

    def _write_info(self, **info: Any) -> None:
        data = {"experiment": self.experiment, **info}
        atomic_write(self.path / RUN_INFO, json.dumps(data, indent=2))

    def _update_info(self, **info: Any) -> None:
        update_info(self.path, {"experiment": self.experiment}, **info)


class SilentRun(Run):
    """The run of a data-parallel rank other than 0: the recipe runs, nothing is written."""

    def __init__(self, experiment: str, device: Any = None, seed: int = 0, dist: Any = None,
                 resumes: Path | None = None):
        super().__init__(Path(os.devnull), experiment, device=device, seed=seed, dist=dist)
        if resumes is not None:  # every rank loads the snapshots rank 0 saved; only rank 0 saves
            self.state_folder = Path(resumes)

    def log(self, **record: Any) -> None:
        pass

    def summary(self, headline: str | None = None, **values: Any) -> None:
        pass

    def file(self, relpath: str, data: bytes | str) -> Path:
        return self.path

    def table(self, name: str, rows: Sequence[Mapping[str, Any]], **kw: Any) -> Path:
        return self.path

    def figure(self, name: str, fig: Any, **kw: Any) -> Path:
        return self.path

    def text(self, name: str, body: str, **kw: Any) -> None:
        pass

    def finish(self, status: str = "done", seconds: float | None = None, error: str | None = None,
               **extra: Any) -> None:
        pass


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    cols: list[str] = []
    for row in rows:
        for key in row:
            if key not in cols:
                cols.append(key)
    return cols


def _new_folder(base: Path) -> Path:
    """Make ``base`` or, when a run of the same config started the same second, ``base-1``, ``base-2``..."""
    try:
        base.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # what check_out cannot foresee (e.g. /proc, a vanished mount); not a full disk
        if exc.errno in NO_SPACE:
            raise
        raise ConfigError(f"cannot make {base.parent} ({exc.strerror}); choose another --out") from None
    path, n = base, 1
    while True:  # ends: each FileExistsError is a folder that exists, and there are finitely many
        try:
            path.mkdir()
            return path
        except FileExistsError:
            path = base.with_name(f"{base.name}-{n}")
            n += 1


def check_out(out: Path | str) -> None:
    """Refuse, before any work starts, an output folder that cannot hold run folders."""
    out = Path(out)
    for folder in (out, *out.parents):
        if folder.is_symlink() and not folder.exists():
            raise ConfigError(f"--out {out}: {folder} is a link to {os.readlink(folder)}, which does not exist; "
                              "create that folder or choose another --out")
        if folder.exists():
            if not folder.is_dir():
                raise ConfigError(f"--out {out}: {folder} is a file, not a folder; choose another --out")
            # access() also answers "no" on a read-only file system, even to root
            if not os.access(folder, os.W_OK | os.X_OK):
                raise ConfigError(f"--out {out}: {folder} is not writable; choose another --out")
            return


@contextmanager
def full_disk_is_one_line(folder: Path | str) -> Iterator[None]:
    """A full disk or quota while writing under ``folder`` ends in one line, not a traceback.

    Every file of a run folder is written atomically or appended whole (trainlab.files), so
    what is there stays readable; ``trainlab report`` re-renders it once there is space.
    """
    try:
        yield
    except OSError as exc:
        if exc.errno not in NO_SPACE:
            raise
        raise TrainlabError(f"no space left on the disk of {folder} ({exc.strerror}); "
                            "free some space and run again (the files written so far are intact)") from None


def update_info(folder: Path | str, missing: Mapping[str, Any] | None = None, **info: Any) -> None:
    """Set ``info`` in ``folder``'s run.json (written atomically), starting from ``missing`` when there is none."""
    path = Path(folder) / RUN_INFO
    data = json.loads(path.read_text()) if missing is None or path.exists() else dict(missing)
    data.update(info)
    atomic_write(path, json.dumps(data, indent=2))
