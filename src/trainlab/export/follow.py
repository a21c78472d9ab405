"""Sending a run folder (or a sweep folder and its trials) to trackers: all at once or as it grows.

:class:`Follower` reads the folder, never the recipe: ``trainlab export`` calls
:meth:`Follower.finish` on a finished folder; a live logger calls :meth:`Follower.start`
when the run starts, so a thread sends each new metrics.jsonl record as it is appended,
and :meth:`Follower.stop` when it ends, which sends the rest, then the summary,
config and files. A sweep's trials become the trackers' nested runs as their folders appear.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

from trainlab.export import source
from trainlab.export.records import Scalar

POLL_SECONDS = 0.5
"""How often a live logger looks for new records: a record shows in the tracker within this."""


class Sink(Protocol):
    """One tracker's run for one folder (:class:`~trainlab.export.tensorboard.TensorBoardSink`,
    :class:`~trainlab.export.mlflow.MlflowSink`)."""

    def scalars(self, items: Sequence[Scalar]) -> None: ...

    def trial(self, folder: Path) -> "Sink": ...

    def finish(self) -> None: ...


class _Tracked:
    """A folder being sent: where its metrics.jsonl has been read to, and its sinks."""

    def __init__(self, folder: Path, sinks: list[Sink]):
        self.folder = folder
        self.tail = source.Tail(folder)
        self.sinks = sinks
        self.finished = False


class Follower:
    """Sends ``folder`` to ``sinks``. ``on_error`` (live logging) gets a sink's failure and that
    sink is dropped; without it a failure is raised (export)."""

    def __init__(self, folder: Path, sinks: Sequence[Sink],
                 on_error: Callable[[Sink | None, Exception], None] | None = None):
        self.root = _Tracked(folder, list(sinks))
        self.trials: dict[Path, _Tracked] = {}
        self.on_error = on_error
        self.sweep = source.is_sweep(folder)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- live -------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="trainlab-export", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.finish()

    def _loop(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            try:
                self.poll()
            except Exception as exc:  # the folder itself (a damaged run.json): stop() tries once more
                if self.on_error is None:
                    raise
                self.on_error(None, exc)
                return

    # -- both -----------------------------------------------------------------------
    def poll(self, final: bool = False) -> None:
        """Send what is new; finish the trials that ended (all of them when ``final``)."""
        if self.sweep:
            for folder in source.trial_folders(self.root.folder):
                if folder not in self.trials:
                    self.trials[folder] = _Tracked(folder, self._each(self.root.sinks, lambda s: s.trial(folder)))
        for tracked in self.trials.values():
            if not tracked.finished:
                ended = final or source.info(tracked.folder).get("status") != "running"
                self._send(tracked, final=ended)
                if ended:
                    self._end(tracked)
        self._send(self.root, final)

    def finish(self) -> None:
        """Send everything left and finish every run, the trials before their sweep."""
        self.poll(final=True)
        self._end(self.root)

    def _send(self, tracked: _Tracked, final: bool) -> None:
        items = tracked.tail.read(final)

        def send(sink: Sink) -> Sink:
            sink.scalars(items)
            return sink

        if items:
            tracked.sinks = self._each(tracked.sinks, send)

    def _end(self, tracked: _Tracked) -> None:
        tracked.finished = True
        self._each(tracked.sinks, lambda s: s.finish())

    def _each(self, sinks: list[Sink], call: Callable[[Sink], Any]) -> list[Any]:
        """``call`` on every sink; the results of those that did not fail (a failed root sink is dropped)."""
        results = []
        for sink in sinks:
            try:
                results.append(call(sink))
            except Exception as exc:
                if self.on_error is None:
                    raise
                self.on_error(sink, exc)
                self.root.sinks = [s for s in self.root.sinks if s is not sink]
        return results
