"""Rows of dicts to CSV and Markdown, and summarising repeats as mean and std."""

from __future__ import annotations

import csv
import io
import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from tabulate import tabulate


def rows_to_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: _csv_value(row.get(c, "")) for c in columns})
    return buf.getvalue()


def _csv_value(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return ""
    if isinstance(value, (list, tuple)):
        return " ".join(map(str, value))
    return value


def read_csv(path: Any) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def rows_to_markdown(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    floatfmt: str = ".4g",
    bold: Callable[[int, Mapping[str, Any]], bool] | None = None,
    marks: Mapping[int, str] | None = None,
) -> str:
    """A GitHub Markdown table; ``bold(i, row)`` makes row i bold, ``marks[i]`` appends a note."""
    body = []
    for i, row in enumerate(rows):
        cells = [_fmt(row.get(c, ""), floatfmt) for c in columns]
        if bold is not None and bold(i, row):
            cells = [f"**{c}**" if c != "" else c for c in cells]
        if marks is not None:
            cells.append(marks.get(i, ""))
        body.append(cells)
    headers = list(columns) + ([""] if marks is not None else [])
    return tabulate(body, headers=headers, tablefmt="github", disable_numparse=True) + "\n"


def _fmt(value: Any, floatfmt: str) -> str:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return format(value, floatfmt)
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


def mean_std(
    rows: Sequence[Mapping[str, Any]], by: Sequence[str], values: Sequence[str]
) -> list[dict[str, Any]]:
    """Group ``rows`` by the ``by`` columns and replace each value column by its mean.

    With more than one repeat in a group, ``<value>_std`` (sample std, ddof=1)
    columns are added and ``n`` counts the repeats.
    """
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in by), []).append(row)
    several = any(len(g) > 1 for g in groups.values())
    out = []
    for key, members in groups.items():
        rec: dict[str, Any] = dict(zip(by, key))
        for v in values:
            arr = np.array([float(m[v]) for m in members], dtype=float)
            rec[v] = float(np.mean(arr))
            if several:
                rec[f"{v}_std"] = float(np.std(arr, ddof=1)) if len(arr) > 1 else float("nan")
        if several:
            rec["n"] = len(members)
        out.append(rec)
    return out
