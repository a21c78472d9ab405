"""Reading a run folder's report files as untrusted input: checked shapes, confined paths.

``trainlab report RUN_DIR`` may be pointed at a folder someone else wrote, or one a
crash or an editor damaged. Every JSON file it reads must have the shape the writer
(:class:`trainlab.runs.Run`) gives it, and every file it opens must lie inside the
folder: an item named ``../../secret`` would otherwise embed a file from anywhere.
A damaged file is one :class:`~trainlab.errors.DataError` line naming it, never a
traceback and never a silently empty report.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

import yaml

from trainlab.errors import DataError

RUN_INFO = "run.json"
"""A run folder's status, times, process and headline key (written by :class:`trainlab.runs.Run`)."""
MANIFEST = "report.json"
"""The report's items in order, so ``trainlab report`` re-renders from the files alone."""

KINDS = ("table", "figure", "text", "code")
SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.=+-]{0,199}")
"""Names the writer gives items: no separators, no leading dot, so never ``..``."""

# run.json fields the report shows, with the JSON types each may have.
RUN_FIELDS: dict[str, tuple[type, ...]] = {
    "experiment": (str,), "title": (str,), "status": (str,), "started": (str,),
    "error": (str, type(None)), "headline": (str, type(None)), "seconds": (int, float),
}


def read_checked(path: Path, default: Any, check: Callable[[Any], str | None]) -> Any:
    """The JSON in ``path`` (``default`` when it is missing); ``check`` returns what is wrong or None."""
    if not path.exists():
        return default
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path} is not readable JSON ({str(exc).splitlines()[0]}); "
                        "re-run the experiment or restore the file") from None
    problem = check(data)
    if problem:
        raise DataError(f"{path} is damaged: {problem}; re-run the experiment or restore the file")
    return data


def run_info_problem(data: Any) -> str | None:
    if not isinstance(data, dict):
        return f"expected an object, found {_kind(data)}"
    for key, types in RUN_FIELDS.items():
        if key in data and (not isinstance(data[key], types) or isinstance(data[key], bool)):
            return f"{key} is {_kind(data[key])}, expected {' or '.join(_TYPE_NAMES[t] for t in types)}"
    return None


def summary_problem(data: Any) -> str | None:
    if not isinstance(data, dict):
        return f"expected an object of name: number, found {_kind(data)}"
    for key, value in data.items():
        if not isinstance(value, (int, float, str, bool, type(None))):
            return f"{key} is {_kind(value)}, expected a number or a string"
    return None


def items_problem(data: Any) -> str | None:
    if not isinstance(data, list):
        return f"expected a list of items, found {_kind(data)}"
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            return f"item {i} is {_kind(item)}, expected an object"
        if item.get("kind") not in KINDS:
            return f"item {i} has kind {item.get('kind')!r}, expected one of {', '.join(KINDS)}"
        name = item.get("name")
        if not isinstance(name, str) or not SAFE_NAME.fullmatch(name):
            return f"item {i} has name {name!r}, expected letters, digits and _.=+- (no folders)"
        if not isinstance(item.get("title"), str):
            return f"item {i} has title {_kind(item.get('title'))}, expected a string"
        if not isinstance(item.get("caption", ""), str):
            return f"item {i} has caption {_kind(item['caption'])}, expected a string"
    return None


def row_classes_problem(data: Any) -> str | None:
    if not isinstance(data, dict) or not all(k.isdigit() and isinstance(v, str) for k, v in data.items()):
        return "expected an object of row index: class name"
    return None


def config_values(folder: Path) -> dict[str, Any]:
    """A run's config.yaml as plain data, not validated (a run of an older version still lists);
    empty when the file is missing or damaged."""
    try:
        values = yaml.safe_load(inside(folder, "config.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return values if isinstance(values, dict) else {}


def inside(folder: Path, relpath: str) -> Path:
    """``folder / relpath``, refused in one line unless it resolves (links followed) inside ``folder``."""
    target = (folder / relpath).resolve()
    if not target.is_relative_to(folder.resolve()):
        raise DataError(f"{folder / relpath} leads outside the run folder {folder}; the report reads only its own files")
    return target


_TYPE_NAMES = {str: "a string", int: "a number", float: "a number", type(None): "null"}


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number")
