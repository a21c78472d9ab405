"""Many runs as one table: :func:`list_runs` (what ran) and :func:`compare` (how runs differ)."""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from trainlab.api.configs import value_text
from trainlab.api.folder import Run, config_values
from trainlab.config import one_of, to_dict
from trainlab.errors import ConfigError
from trainlab.experiments.registry import find_experiment
from trainlab.runs import STATUSES
from trainlab.run_list import list_runs as run_infos

LIST_COLUMNS = ["name", "started", "status", "seconds", "overrides", "headline", "path", "note"]


def list_runs(out: str | Path = "runs", name: str | None = None, status: str | None = None) -> pd.DataFrame:
    """The runs under ``out``, newest first, as ``trainlab runs`` lists them, one row each.

    ``overrides`` holds the config values that differ from the experiment's defaults as
    ``key=value`` text (what to type to get the run again), ``headline`` the number the
    recipe named, ``note`` why a ``running`` status cannot be checked (a run on another host),
    or the command that resumes a stopped run with snapshots,
    or "". ``name`` and ``status`` keep only the runs of one experiment or status (a status not
    in :data:`trainlab.runs.STATUSES` is refused). A folder with a damaged run.json is skipped
    with a warning.
    """
    if status is not None:
        one_of("status", status, STATUSES)

    def skip(folder: Path, problem: str) -> None:
        warnings.warn(f"skipped {folder}: {problem}", stacklevel=3)

    @functools.cache
    def defaults(experiment: str) -> dict[str, Any]:
        # Only the experiments that have runs here are imported (all of them take seconds);
        # a folder of something else (a sweep) shows every value it recorded.
        exp = find_experiment(experiment)
        return to_dict(exp.config_cls()) if exp is not None else {}

    rows = []
    for info in run_infos(Path(out), on_damaged=skip):
        if (name is not None and info["experiment"] != name) or (status is not None and info["status"] != status):
            continue
        values = config_values(Path(info["path"]))
        rows.append({"name": info["experiment"], "started": info["started"], "status": info["status"],
                     "seconds": info.get("seconds"),
                     "overrides": overrides_text(values, defaults(info["experiment"])),
                     "headline": info.get("headline_value", ""), "path": info["path"],
                     "note": info.get("note") or _resumable(info)})
    return pd.DataFrame(rows, columns=LIST_COLUMNS)


def _resumable(info: Mapping[str, Any]) -> str:
    """How to continue a stopped run that has snapshots (:mod:`trainlab.resume`), else ""."""
    stopped = info["status"] in ("interrupted", "killed", "failed")
    has_snapshot = (Path(info["path"]) / "state" / "resume.json").is_file()
    return f"resume: trainlab run --resume {info['path']}" if stopped and has_snapshot else ""


def overrides_text(values: Mapping[str, Any], defaults: Mapping[str, Any]) -> str:
    """``"k=v k=v"``: the values that differ from ``defaults``, as command-line items."""
    return " ".join(f"{k}={value_text(v)}" for k, v in values.items() if k not in defaults or defaults[k] != v)


def compare(*runs: Run | str | Path) -> pd.DataFrame:
    """The config fields that differ between ``runs`` and every summary number, one column per run.

    Rows are indexed by (``"config"``, field) and (``"summary"``, key); a field or key a run
    does not have is None. Columns are the run folders' names (their full paths when two share a name).
    """
    if len(runs) < 2:
        raise ConfigError("compare needs at least two runs (Run objects or run folders)")
    loaded = [r if isinstance(r, Run) else Run(r) for r in runs]
    configs = [config_values(r.path) for r in loaded]
    summaries = [r.summary for r in loaded]
    fields = _union(configs)
    differing = [f for f in fields if len({value_text(c.get(f)) for c in configs}) > 1]
    index = [("config", f) for f in differing] + [("summary", k) for k in _union(summaries)]
    names = [r.path.name for r in loaded]
    columns = names if len(set(names)) == len(names) else [str(r.path) for r in loaded]
    table = {col: [(cfg if part == "config" else summ).get(key) for part, key in index]
             for col, cfg, summ in zip(columns, configs, summaries)}
    return pd.DataFrame(table, index=pd.MultiIndex.from_tuples(index, names=["part", "key"]), dtype=object)


def _union(mappings: list[dict[str, Any]]) -> list[str]:
    """Every key of ``mappings``, in first-seen order."""
    return list(dict.fromkeys(k for m in mappings for k in m))
