"""The run folders under an output folder as ``trainlab runs`` shows them: status (``killed`` for a
dead process), headline value, damaged folders skipped with the reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

from trainlab.files import read_json
from trainlab.processes import DEAD, ELSEWHERE, liveness
from trainlab.report.folder import RUN_INFO
from trainlab.report.numbers import format_value


def list_runs(out: Path, on_damaged: Callable[[Path, str], None] | None = None) -> list[dict[str, Any]]:
    """Every run folder under ``out`` with its run.json and headline value, newest first.

    A run whose process died (SIGKILL, out of memory, power) shows as ``killed``; one
    running on another host is shown ``running`` with a ``note`` (it cannot be checked
    from here). A folder whose run.json is damaged is skipped and passed to ``on_damaged``
    with the reason, so one bad folder never hides the others.
    """
    found = []
    # <out>/<name>/<run>/ and, for tours, <out>/tour-*/<name>/<run>/; a sweep's own trial
    # folders (<sweep>/trials/...) are shown through their sweep, not one by one.
    paths = [*Path(out).glob(f"*/*/{RUN_INFO}"), *Path(out).glob(f"tour-*/*/*/{RUN_INFO}")]
    for info_path in paths:
        info = read_json(info_path)
        problem = _damage(info)
        if problem is None:
            try:
                info["headline_value"] = _headline_value(info, read_json(info_path.parent / "summary.json", {}))
            except (TypeError, ValueError) as exc:
                problem = f"summary.json has a bad headline value ({exc})"
        if problem is not None:
            if on_damaged is not None:
                on_damaged(info_path.parent, problem)
            continue
        info["path"] = str(info_path.parent)
        info.update(shown_status(info))
        found.append(info)
    return sorted(found, key=lambda r: r["started"], reverse=True)


def _damage(info: Any) -> str | None:
    """Why run.json cannot be listed, or None."""
    if not isinstance(info, dict):
        return "run.json is missing, unreadable or not a JSON object"
    for key in ("experiment", "status", "started"):
        if not isinstance(info.get(key), str):
            return f"run.json's {key!r} is {info.get(key)!r}, not text"
    if not isinstance(info.get("headline", ""), (str, type(None))):
        return f"run.json's 'headline' is {info['headline']!r}, not text"
    return None


def _headline_value(info: Mapping[str, Any], summary: Any) -> str:
    key = info.get("headline")
    if not key or not isinstance(summary, dict) or key not in summary:
        return ""
    return f"{key}={format_value(summary[key], key)}"


def shown_status(info: Mapping[str, Any]) -> dict[str, Any]:
    """``killed`` for a ``running`` run whose process is gone; a note when it runs on another host."""
    if info["status"] != "running":
        return {}
    state = liveness(info)
    if state == DEAD:
        return {"status": "killed"}
    if state == ELSEWHERE:
        return {"note": f"running on {info.get('host')}; cannot check from here"}
    return {}
