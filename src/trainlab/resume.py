"""Snapshots in a run folder, and reopening a stopped run to continue it (``--resume RUN_DIR``).

A recipe asks its run for slots (``out.snapshots(cfg.checkpoint_every).slot("cnn")``) and
hands one to each trainer (:mod:`trainlab.train.snapshots`). Snapshots live in ``state/``::

    state/<job>-<n>.pt     the snapshot's tensors: a plain state_dict (weights-only load)
    state/<job>-<n>.json   its JSON half (counters, histories, RNG states)
    state/resume.json      the commit point: each job's current files, the job saved last,
                           and how many lines metrics.jsonl had then

A snapshot's files are written first and ``resume.json`` last (each atomically), so a run
killed mid-save keeps its previous snapshot. Resuming re-runs the recipe from the top in
the same folder: finished jobs return their saved results, the job saved last continues
from its snapshot, and records logged before that point are already in ``metrics.jsonl``
(the run writes none until the replay reaches it, and lines logged after it were dropped),
so the file ends as an uninterrupted run's.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path
from typing import Any, Callable

import torch

from trainlab.checkpoints import read_state_dict, state_dict_bytes
from trainlab.errors import ConfigError, DataError
from trainlab.files import atomic_write
from trainlab.train.snapshots import Snapshot
from trainlab.workers import stop_requested

STATE_DIR = "state"
MANIFEST = "resume.json"
METRICS = "metrics.jsonl"
STOP_AFTER = "TRAINLAB_STOP_AFTER_SNAPSHOTS"
"""For tests: after this many snapshots this process stops as if Ctrl-C came (a kill at a known point)."""


class RunSnapshots:
    """The snapshots of one run folder: one slot per training job, each with its own save timer.

    ``writable=False`` (a data-parallel rank other than 0) loads what rank 0 saved and
    saves nothing. ``on_caught_up`` is called once the replay of a resumed run reaches the
    job saved last (the run then starts writing metrics again). Jobs may train in worker
    threads (saves are serialised), but records must be logged from the recipe's own thread
    (after the jobs return): the replay's quiet stretch ends at one point of the recipe.
    """

    def __init__(self, folder: Path, every_s: float, *, writable: bool = True,
                 on_caught_up: Callable[[], None] | None = None):
        self.folder = Path(folder)
        self.every_s = every_s
        self.writable = writable
        self._manifest = read_manifest(self.folder)
        self._saves = 0
        self._on_caught_up = on_caught_up
        # The job saved last before this process started: the replay ends when it loads. Kept apart
        # from the manifest, which the jobs' new saves rewrite (a job in another worker thread may
        # save before that job loads).
        self._replay_until = self._manifest.get("latest")
        self._lock = threading.Lock()  # jobs in worker threads save through one manifest

    def slot(self, job: str) -> "Slot":
        """The slot of training job ``job`` (a name unique within the run, such as ``"bs16_seed0"``)."""
        if not re.fullmatch(r"[A-Za-z0-9_.=+-]+", job):
            raise ValueError(f"snapshot job name {job!r} must be letters, digits and _.=+-")
        return Slot(self, job)

    def load(self, job: str) -> Snapshot | None:
        with self._lock:
            return self._load(job)

    def save(self, job: str, snapshot: Snapshot) -> None:
        with self._lock:
            self._save(job, snapshot)
        stop_after = os.environ.get(STOP_AFTER)
        if stop_after and self._saves >= int(stop_after):
            raise KeyboardInterrupt(f"{STOP_AFTER}={stop_after}")

    def _load(self, job: str) -> Snapshot | None:
        stem = self._manifest.get("files", {}).get(job)
        if stem is None:
            return None
        tensors = read_state_dict(self._file(stem, ".pt"))
        try:
            record = json.loads(self._file(stem, ".json").read_text())
            snapshot = Snapshot(tensors, record["info"], bool(record["finished"]))
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DataError(f"{self._file(stem, '.json')} is damaged ({exc}); "
                            "start the run again without --resume") from None
        if job == self._replay_until and self._on_caught_up is not None:
            self._on_caught_up()
            self._on_caught_up = None
        return snapshot

    def _save(self, job: str, snapshot: Snapshot) -> None:
        # Counted where nothing is written too: a data-parallel rank other than 0 then stops
        # (STOP_AFTER) at the boundary where rank 0 does, as all ranks do on Ctrl-C.
        self._saves += 1
        if not self.writable:
            return
        files = dict(self._manifest.get("files", {}))
        old = files.get(job)
        count = self._manifest.get("count", 0) + 1
        stem = f"{job}-{count}"
        # The snapshot's own format is a checkpoint's: a .pt state_dict and a .json beside it.
        atomic_write(self._file(stem, ".pt"), state_dict_bytes(snapshot.tensors))
        atomic_write(self._file(stem, ".json"), json.dumps(
            {"job": job, "finished": snapshot.finished, "info": snapshot.info,
             "shapes": {k: list(v.shape) for k, v in snapshot.tensors.items()}, "torch": torch.__version__}))
        files[job] = stem
        self._manifest = {"files": files, "latest": job, "count": count,
                          "metrics_lines": _line_count(self.folder / METRICS)}
        atomic_write(self.folder / STATE_DIR / MANIFEST, json.dumps(self._manifest, indent=2))
        if old is not None:
            for suffix in (".pt", ".json"):
                self._file(old, suffix).unlink(missing_ok=True)

    def _file(self, stem: str, suffix: str) -> Path:
        # Not with_suffix: a job name may hold a dot ("h5_lr0.1"), which with_suffix would cut off.
        return self.folder / STATE_DIR / f"{stem}{suffix}"


class Slot:
    """Where one training job keeps its snapshot (:class:`trainlab.train.snapshots.SnapshotSlot`).

    Its save is due ``every_s`` seconds after the job took the slot or last saved: a timer per
    job, not per run, so that jobs training side by side in worker threads each save (with one
    timer the job that reached a boundary first would take every turn).
    """

    def __init__(self, store: RunSnapshots, job: str):
        self.store, self.job = store, job
        self._last_save = time.monotonic()

    def load(self) -> Snapshot | None:
        return self.store.load(self.job)

    def due(self) -> bool:
        # A job in a worker pool told to stop saves at this boundary whatever the timer says.
        return stop_requested() or time.monotonic() - self._last_save >= self.store.every_s

    def save(self, snapshot: Snapshot) -> None:
        self._last_save = time.monotonic()
        self.store.save(self.job, snapshot)
        if stop_requested():
            raise KeyboardInterrupt("the run was stopped; this job saved its state")


def read_manifest(folder: Path) -> dict[str, Any]:
    """``state/resume.json`` of a run folder, or an empty manifest when it has none."""
    path = Path(folder) / STATE_DIR / MANIFEST
    if not path.is_file():
        return {}
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path} is damaged ({exc}); start the run again without --resume") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files", {}), dict):
        raise DataError(f"{path} is damaged; start the run again without --resume")
    return manifest


def rewind_metrics(folder: Path) -> None:
    """Drop the metrics lines written after the last snapshot: the resumed run writes them again."""
    keep = read_manifest(folder).get("metrics_lines", 0)
    path = Path(folder) / METRICS
    if not path.is_file():
        return
    lines = path.read_bytes().splitlines(keepends=True)
    if len(lines) < keep:
        raise DataError(f"{path} has {len(lines)} lines, its last snapshot saw {keep}; "
                        "start the run again without --resume")
    atomic_write(path, b"".join(lines[:keep]))


def check_resumable(folder: Path, info: dict[str, Any]) -> None:
    """Refuse, in one line, a folder that is not a stopped run."""
    status = info.get("status")
    if status in ("done", "diverged"):
        raise ConfigError(f"{folder} already finished ({status}); run the experiment again for a new run")
    if status == "running":
        raise ConfigError(f"{folder} is still running (pid {info.get('pid')} on {info.get('host')}); "
                          "stop it first, or wait for it")
    if status not in ("interrupted", "killed", "failed"):
        raise ConfigError(f"{folder} has status {status!r}; only interrupted, killed or failed runs resume")


def _line_count(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.is_file() else 0
