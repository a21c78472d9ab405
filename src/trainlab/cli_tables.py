"""The plain-text tables the command line prints, laid out from the Python API's DataFrames.

The API returns values and the CLI prints them: these functions only lay out what
:func:`trainlab.show`, :func:`trainlab.list_runs` and :func:`trainlab.compare` return,
so ``trainlab show``, ``runs`` and ``compare`` cannot disagree with the API.
"""

from __future__ import annotations

import shutil
import textwrap
from typing import TYPE_CHECKING, Sequence

from trainlab.api import show
from trainlab.api.configs import value_text
from trainlab.report.numbers import format_value

if TYPE_CHECKING:
    import pandas as pd

def text_width() -> int:
    """The width to wrap prose to: the terminal's, within 60..100 columns."""
    return min(max(shutil.get_terminal_size((100, 24)).columns, 60), 100)


def experiment_fields(name: str) -> str:
    """Experiment ``name``'s config fields under a line saying how to give them (``trainlab show NAME``,
    and the end of ``trainlab run NAME --help``); an unknown name raises the ConfigError ``run`` gives."""
    intro = (f"{name}'s config: give a field as key=value to trainlab run {name}; "
             "--quick starts from the quick column, blank where it keeps the default.")
    width = text_width()
    return "\n".join([*textwrap.wrap(intro, width), "", fields_text(show(name), width)])


def fields_text(fields: pd.DataFrame, width: int) -> str:
    """:func:`trainlab.show`'s table as text, a line per field in config order: name, type, default
    and the quick profile's value where it differs from the default (blank where equal), with the
    field's docstring wrapped beneath it, indented. Values are written as ``key=`` takes them."""
    rows = []
    for field in fields.to_dict("records"):
        default, quick = value_text(field["default"]), value_text(field["quick"])
        rows.append([field["name"], field["type"], default, "" if quick == default else quick])
    lines = aligned([["field", "type", "default", "quick"], *rows])
    out = [lines[0]]
    for line, doc in zip(lines[1:], fields["doc"]):
        out.append(line)
        out += textwrap.wrap(doc, width, initial_indent="    ", subsequent_indent="    ")
    return "\n".join(out)


def runs_text(table: pd.DataFrame) -> str:
    """:func:`trainlab.list_runs`'s table as text, a line per run: experiment, start, status, headline,
    run folder, then the overrides, last and whole (they are what to type after ``trainlab run NAME``
    to get the run again, and may be long), and the note in parentheses when there is one."""
    rows = [[run["name"], run["started"], run["status"], run["headline"], run["path"],
             run["overrides"], f"({run['note']})" if run["note"] else ""]
            for run in table.to_dict("records")]
    return "\n".join(aligned(rows))


def compare_text(table: pd.DataFrame) -> str:
    """:func:`trainlab.compare`'s table as text, a column per run: the config fields that differ
    (as ``key=`` takes them), then the summary numbers (rounded as reports show them); ``-`` where
    a run has no such field or number."""
    rows = [["", "", *map(str, table.columns)]]
    for (part, key), values in zip(table.index, table.itertuples(index=False)):
        shown = [value_text(v) if part == "config" else format_value(v, key) for v in values]
        rows.append([part, key, *("-" if v is None else s for v, s in zip(values, shown))])
    return "\n".join(aligned(rows))


def aligned(rows: Sequence[Sequence[str]]) -> list[str]:
    """``rows`` as lines of left-aligned columns two spaces apart; a column empty in every row is left out."""
    columns = [c for c in range(len(rows[0])) if any(row[c] for row in rows)] if rows else []
    widths = {c: max(len(row[c]) for row in rows) for c in columns}
    return ["  ".join(f"{row[c]:<{widths[c]}}" for c in columns).rstrip() for row in rows]
