"""Rows of dicts to CSV and Markdown, and summarising repeats as mean and std."""

from __future__ import annotations

import csv
import io
import math
from typing import Any, Callable, Mapping, Sequence

from tabulate import tabulate

from trainlab.report import numbers
from trainlab.report.stats import mean_and_std


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
    floatfmt: str | None = None,
    bold: Callable[[int, Mapping[str, Any]], bool] | None = None,
    marks: Mapping[int, str] | None = None,
) -> str:
    """A Markdown table, numbers right-aligned and rounded by :mod:`trainlab.report.numbers`.

    ``floatfmt`` (e.g. ``".6g"``) overrides the rounding of floats where a recipe needs
    more digits; ``bold(i, row)`` makes row i bold; ``marks[i]`` appends a note column.
    """
    cells = [_column([row.get(c) for row in rows], c, floatfmt) for c in columns]
    numeric = [_numeric([row.get(c) for row in rows]) for c in columns]
    body = []
    for i, row in enumerate(rows):
        line = [col[i] for col in cells]
        if bold is not None and bold(i, row):
            line = [f"**{c}**" if c else c for c in line]
        if marks is not None:
            line.append(_escape(marks.get(i, "")))
        body.append(line)
    headers = [_escape(str(c)) for c in columns] + ([""] if marks is not None else [])
    align = ["right" if n else "left" for n in numeric] + (["left"] if marks is not None else [])
    # "pipe" is GitHub Markdown with alignment colons, which report.html turns into text-align.
    return tabulate(body, headers=headers, tablefmt="pipe", disable_numparse=True, colalign=align) + "\n"


def _column(values: Sequence[Any], name: str, floatfmt: str | None) -> list[str]:
    if floatfmt is None:
        return [_escape(v) if v is not None else "" for v in _format_present(values, name)]
    out = []
    for v in values:
        v = v.item() if hasattr(v, "item") else v
        if isinstance(v, float) and not isinstance(v, bool):
            out.append(numbers.MISSING if math.isnan(v) else format(v, floatfmt))
        else:
            out.append("" if v is None else _escape(numbers.format_number(v)))
    return out


def _numeric(values: Sequence[Any]) -> bool:
    present = [v for v in values if v is not None]
    return bool(present) and all(numbers.is_number(v) for v in present)


def _format_present(values: Sequence[Any], name: str) -> list[str | None]:
    # A cell the row does not have stays empty; a NaN the row has reads "n/a".
    formatted = numbers.format_column([v for v in values if v is not None], name)
    it = iter(formatted)
    return [None if v is None else next(it) for v in values]


def _escape(text: Any) -> str:
    # A "|" inside a cell would end the cell.
    return str(text).replace("|", "\\|")


def mean_std(
    rows: Sequence[Mapping[str, Any]], by: Sequence[str], values: Sequence[str], skip_nan: bool = False
) -> list[dict[str, Any]]:
    """Group ``rows`` by the ``by`` columns and replace each value column by its mean.

    Mean and std are :func:`trainlab.report.stats.mean_and_std`'s. Group order is first
    appearance. With more than one repeat in a group, ``<value>_std`` (sample std, ddof=1)
    columns are added and ``n`` counts the repeats. ``skip_nan`` leaves NaN values
    (undefined metrics) out of their group's mean and std; a group without one
    defined value stays NaN.
    """
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in by), []).append(row)
    several = any(len(g) > 1 for g in groups.values())
    out = []
    for key, members in groups.items():
        rec: dict[str, Any] = dict(zip(by, key))
        for v in values:
            rec[v], std = mean_and_std([m[v] for m in members], skip_nan)
            if several:
                rec[f"{v}_std"] = std
        if several:
            rec["n"] = len(members)
        out.append(rec)
    return out


def with_std(table: Sequence[Mapping[str, Any]], values: Sequence[str]) -> list[str]:
    """The columns of :func:`mean_std` output for ``values``: each value, then its std where there is one."""
    return [c for v in values for c in (v, f"{v}_std") if table and c in table[0]]


def mean_std_markdown(table: Sequence[Mapping[str, Any]], columns: Sequence[str], values: Sequence[str]) -> str:
    """A Markdown table of :func:`mean_std` output with one ``mean ± std`` cell per value.

    ``columns`` are shown as they are; each of ``values`` reads ``mean ± std``, rounded by
    :mod:`trainlab.report.numbers` (``n/a`` where the mean is NaN, the mean alone where the std is).
    """
    def cell(row: Mapping[str, Any], v: str) -> str:
        mean, std = row[v], row.get(f"{v}_std", math.nan)
        percent = numbers.is_percent(v, [mean])
        if abs(std) <= 1e-12 * abs(mean):  # equal repeats: no float dust
            std = 0.0
        text = numbers.format_number(mean, percent)
        return text if math.isnan(mean) or math.isnan(std) else f"{text} ± {numbers.format_number(std, percent)}"

    cells = [{**{c: row[c] for c in columns}, **{v: cell(row, v) for v in values}} for row in table]
    return rows_to_markdown(cells, [*columns, *values])
