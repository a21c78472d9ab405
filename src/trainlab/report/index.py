"""The tour's ``index.html``: every experiment of a tour, grouped by study, on one page.

Built from the tour folder's files alone (``tour.json`` and each run folder), with
relative links only, so the page still works after the folder is moved or zipped.
Per experiment: its report link, study question, summary, status and time, its
headline numbers with units, and a thumbnail of its first figure.
"""

from __future__ import annotations

import html
from datetime import datetime
from pathlib import Path
from typing import Any

from trainlab.files import read_json
from trainlab.report import markdown
from trainlab.report.folder import MANIFEST, RUN_INFO
from trainlab.report.html import summary_box, summary_entries
from trainlab.report.numbers import format_duration
from trainlab.report.style import page

MAX_NUMBERS = 5
"""Headline numbers shown per experiment; the report has the rest."""

INDEX_CSS = """
.card{display:flex;gap:1em;border:1px solid var(--line);border-radius:8px;padding:.8em;margin:.7em 0}
.thumb{flex:0 0 260px;display:flex;align-items:center;justify-content:center;background:#fff;
  border:1px solid #eee;border-radius:4px;height:170px;overflow:hidden}
.thumb img{max-width:100%;max-height:100%;border:0}
.thumb.none{color:var(--muted);font-size:.85em;background:var(--soft)}
.card .body{flex:1;min-width:0}
.card h3{margin:0 0 .2em;display:flex;flex-wrap:wrap;gap:.5em;align-items:baseline}
.card h3 .q{color:var(--muted);font-weight:normal}
.card h3 .time{color:var(--muted);font-weight:normal;font-size:.85em;margin-left:auto}
.card p{margin:.2em 0 .4em}
.more{color:var(--muted);font-size:.85em;align-self:center}
.failed-count{color:#a40e26}
"""


def render_index(root: Path) -> str:
    """The HTML of ``root/index.html`` from ``root/tour.json`` and the run folders under ``root``."""
    root = Path(root)
    rows: list[dict[str, Any]] = read_json(root / "tour.json", [])
    studies: dict[str, list[dict[str, Any]]] = {}
    for row in rows:  # tour.json lists experiments study by study
        studies.setdefault(row.get("study") or "Other", []).append(row)
    failed = sum(r.get("status") != "done" for r in rows)
    total = sum(r.get("seconds", 0.0) for r in rows)
    stamp = _when(root)
    meta = [f"{len(rows)} experiments", f"{len(rows) - failed} done"]
    meta += [f"<strong class='failed-count'>{failed} failed</strong>"] if failed else []
    meta += [f"{format_duration(total)} in all"] + ([stamp] if stamp else [])
    parts = [
        "<h1>trainlab tour</h1>",
        "<p class='subtitle'>Every experiment in its quick profile: seconds each, on data that needs no "
        "download (scikit-learn's 8x8 digits, toy point sets). The numbers show that each study runs end "
        "to end; they are not the study's results - <code>trainlab run NAME</code> runs the full "
        "configuration.</p>",
        f"<p class='meta'>{' · '.join(meta)}</p>",
    ]
    for study, members in studies.items():
        parts.append(f"<h2>{html.escape(study)}</h2>")
        parts += [_card(root, row) for row in members]
    return page("trainlab tour", parts, INDEX_CSS)


def _when(root: Path) -> str:
    # The folder is named tour-YYYYmmdd-HHMMSS; its name survives a move, its mtime may not.
    try:
        return datetime.strptime(root.name, "tour-%Y%m%d-%H%M%S").strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return ""


def _card(root: Path, row: dict[str, Any]) -> str:
    name = html.escape(row["name"])
    status = html.escape(str(row.get("status", "?")))
    run = root / row["path"] if row.get("path") else None
    report = f"{row['path']}/report.html" if run is not None and (run / "report.html").is_file() else None
    link = f"<a href='{html.escape(report)}'>{name}</a>" if report else name
    head = (
        f"<h3>{link}<span class='q'>{html.escape(row.get('question', ''))}</span>"
        f"<span class='badge {status}'>{status}</span>"
        f"<span class='time'>{format_duration(row.get('seconds', 0.0))}</span></h3>"
    )
    body = [head]
    if row.get("summary"):
        body.append(f"<p>{markdown.inline(row['summary'])}</p>")
    if row.get("status") != "done" and row.get("error"):
        body.append(f"<p class='error'>{html.escape(_one_line(row['error']))}</p>")
    if run is not None:
        body.append(_numbers(run, report))
    return f"<div class='card'>{_thumbnail(root, row, report)}<div class='body'>{''.join(body)}</div></div>"


def _thumbnail(root: Path, row: dict[str, Any], report: str | None) -> str:
    items = read_json(root / row["path"] / MANIFEST, []) if row.get("path") else []
    figure = next((i for i in items if i.get("kind") == "figure"), None)
    png = f"{row['path']}/figures/{figure['name']}.png" if figure else None
    if png is None or not (root / png).is_file():
        return "<div class='thumb none'>no figure</div>"
    img = f"<img src='{html.escape(png)}' alt='{html.escape(figure.get('title', ''))}' loading='lazy'>"
    return f"<a class='thumb' href='{html.escape(report)}'>{img}</a>" if report else f"<div class='thumb'>{img}</div>"


def _numbers(run: Path, report: str | None) -> str:
    summary = read_json(run / "summary.json", {})
    if not isinstance(summary, dict) or not summary:
        return ""
    entries = summary_entries(summary, read_json(run / RUN_INFO, {}).get("headline"))
    more = ""
    if len(entries) > MAX_NUMBERS:
        text = f"+{len(entries) - MAX_NUMBERS} more in the report"
        more = f"<a class='more' href='{html.escape(report)}'>{text}</a>" if report else f"<span class='more'>{text}</span>"
    return summary_box(entries[:MAX_NUMBERS], more)


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
