"""Shared test helpers (importable as ``helpers``: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from trainlab.execute import run_experiment


def run_quick(name: str, tmp_path: Path, **overrides: Any) -> Path:
    """Run experiment ``name`` with its quick profile on the CPU; return the run folder."""
    items = [f"{k}={_value(v)}" for k, v in overrides.items()]
    return run_experiment(name, [*items, "device=cpu"], quick=True, out=tmp_path)


def _value(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(map(str, v)) + "]"
    if v is None:
        return "null"
    return str(v)


def read_table(run_dir: Path, name: str) -> tuple[list[str], list[dict[str, str]]]:
    """Columns and rows of ``tables/<name>.csv``."""
    with open(run_dir / "tables" / f"{name}.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def read_summary(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "summary.json").read_text())
