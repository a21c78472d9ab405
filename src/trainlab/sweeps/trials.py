"""One trial: run it into its own run folder and turn the outcome into a ``trials.jsonl`` record.

Both backends call :func:`run_trial` (the Ray backend inside its workers), so a
trial means the same thing everywhere, resume included: a trial whose last run folder
was interrupted or killed after a snapshot (:mod:`trainlab.resume`) continues in that
folder from its snapshot; any other trial runs into a new folder. The record is plain JSON and carries the
trial's summary numbers, so the combined table can be built from
``trials.jsonl`` alone, even when the trial folders live on other machines.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from trainlab.errors import TrainlabError
from trainlab.execute import current_info, run_experiment, stored_config
from trainlab.experiments.registry import Experiment
from trainlab.resume import read_manifest
from trainlab.runs import RUN_INFO
from trainlab.sweeps.grid import Trial

TRIALS_FILE = "trials.jsonl"
SPEC_FILE = "sweep.json"
TRIALS_DIR = "trials"
FINISHED = ("done", "diverged")
"""Statuses that resume skips; ``failed`` trials run again (their cause is often outside the config)."""


def run_trial(exp: Experiment, trial: Trial, trials_dir: str | Path) -> dict[str, Any]:
    """Run ``trial`` under ``trials_dir`` and return its record; exceptions become status ``failed``.

    KeyboardInterrupt still propagates: stopping a sweep is not a trial failure.
    """
    trials_dir = Path(trials_dir)
    start = time.perf_counter()
    record = new_record(trial)
    try:
        # The stored resolved config, not the override text: a resumed sweep runs exactly
        # what was validated, even if the YAML file or the quick profile changed since.
        path = run_experiment(exp, stored_config(exp, trial.config), out=trials_dir,
                              resume=stopped_folder(trials_dir, exp.name, trial.key))
    except Exception as exc:  # a trial's bug or crash must not stop the sweep
        failed(record, exc, trials_dir, exp.name, trial.key)
    else:
        record.update(outcome(path))
    return stamp(record, time.perf_counter() - start, trials_dir)


def failed(record: dict[str, Any], exc: BaseException, trials_dir: Path, experiment: str, key: str) -> None:
    """Mark ``record`` failed with ``exc``, pointing at the trial's folder if one was made."""
    record.update(status="failed", error=error_text(exc), path=_find_folder(trials_dir, experiment, key))


def new_record(trial: Trial) -> dict[str, Any]:
    return {"key": trial.key, "index": trial.index, "params": trial.params}


def outcome(path: Path) -> dict[str, Any]:
    """Status, folder, summary numbers and headline of a finished trial's run folder."""
    info = _read_json(path / RUN_INFO)
    summary = _read_json(path / "summary.json")
    status = info.get("status", "done")
    if status == "done" and summary.get("status") == "diverged":
        status = "diverged"
    return {"status": status, "path": str(path), "summary": _flat(summary), "headline": info.get("headline")}


def error_text(exc: BaseException) -> str:
    """One line: the message of trainlab's own errors, ``Type: message`` for anything else."""
    return _one_line(str(exc) if isinstance(exc, TrainlabError) else f"{type(exc).__name__}: {exc}")


def stamp(record: dict[str, Any], seconds: float, trials_dir: Path) -> dict[str, Any]:
    """Add wall time and finish time; the trial folder becomes relative to the sweep folder."""
    if record.get("path"):
        record["path"] = _relative(str(Path(record["path"]).resolve()), Path(trials_dir).resolve().parent)
    record["seconds"] = round(seconds, 3)
    record["finished"] = datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")
    return record


def _one_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "error"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _flat(summary: Mapping[str, Any]) -> dict[str, Any]:
    """Scalars as they are; anything nested as compact JSON text so the table stays flat."""
    out: dict[str, Any] = {}
    for key, value in summary.items():
        if key == "status":
            continue
        out[key] = value if value is None or isinstance(value, (bool, int, float, str)) else json.dumps(value)
    return out


def _find_folder(trials_dir: Path, experiment: str, key: str) -> str | None:
    """The newest run folder of trial ``key`` (run folder names end in the config hash)."""
    found = [p for p in (trials_dir / experiment).glob(f"*-{key}*") if (p / RUN_INFO).exists()]
    return str(max(found, key=lambda p: p.stat().st_mtime)) if found else None


def stopped_folder(trials_dir: Path, experiment: str, key: str) -> Path | None:
    """Trial ``key``'s newest run folder if it stopped (interrupted or killed) after saving a
    snapshot, so that it continues there; None when the trial starts afresh (a failed run
    starts again too: its cause may lie in what the snapshot holds)."""
    found = _find_folder(trials_dir, experiment, key)
    if found is None:
        return None
    try:
        stopped = current_info(Path(found)).get("status") in ("interrupted", "killed")
        return Path(found) if stopped and read_manifest(Path(found)).get("latest") else None
    except TrainlabError:  # an unreadable run.json or manifest: that folder cannot be continued
        return None


def latest(records: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Trial key -> its last record (a failed trial that was rerun shows its rerun)."""
    out: dict[str, dict[str, Any]] = {}
    for record in records:
        if "key" in record:
            out[str(record["key"])] = dict(record)
    return out


def finished_keys(records: Iterable[Mapping[str, Any]]) -> set[str]:
    """Keys of trials that resume must not run again."""
    return {key for key, rec in latest(records).items() if rec.get("status") in FINISHED}


def table_rows(
    trials: Sequence[Trial], records: Iterable[Mapping[str, Any]], sweep_dir: Path
) -> tuple[list[dict[str, Any]], list[str]]:
    """The combined table in grid order (the same whatever order trials finished in) and its columns."""
    last = latest(records)
    rows: list[dict[str, Any]] = []
    metric_cols: list[str] = []
    for trial in trials:
        rec = last.get(trial.key)
        row: dict[str, Any] = {"trial": trial.index, **trial.params}
        if rec is None:
            row["status"] = "pending"
        else:
            row["status"] = rec.get("status", "?")
            for key, value in (rec.get("summary") or {}).items():
                if key not in metric_cols and key not in row:
                    metric_cols.append(key)
                row.setdefault(key, value)
            row["seconds"] = rec.get("seconds")
            row["error"] = rec.get("error", "")
            row["folder"] = _relative(rec.get("path"), sweep_dir)
        row["key"] = trial.key
        rows.append(row)
    swept = list(trials[0].params) if trials else []
    columns = ["trial", *swept, "status", *metric_cols, "seconds", "key", "folder"]
    if any(row.get("error") for row in rows):
        columns.append("error")
    return rows, columns


def _relative(path: str | None, base: Path) -> str:
    if not path:
        return ""
    if not Path(path).is_absolute():  # already relative to the sweep folder
        return str(path)
    try:
        return str(Path(path).resolve().relative_to(Path(base).resolve()))
    except ValueError:  # a trial folder on another machine (Ray cluster without shared storage)
        return str(path)


def counts(rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """How many trials are done, diverged, failed and pending."""
    out = {"trials": len(rows), "done": 0, "diverged": 0, "failed": 0, "pending": 0}
    for row in rows:
        status = row.get("status")
        if status in out:
            out[status] += 1
    return out
