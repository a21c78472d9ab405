"""Render report.md and a self-contained report.html from a run folder's files.

Both are rebuilt from the files alone (``trainlab report RUN_DIR``): run.json,
report.json (the order of the items), summary.json, tables/*.md, figures/*.png,
text/*.md. Numbers were rounded for reading when the table Markdown was written;
the summary is rounded here, by the same rule (:mod:`trainlab.report.numbers`).
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from trainlab.files import atomic_write
from trainlab.report import markdown
from trainlab.report.folder import (MANIFEST, RUN_INFO, inside, items_problem, read_checked, row_classes_problem, run_info_problem,
                                    summary_problem)
from trainlab.report.numbers import format_duration, with_unit
from trainlab.report.style import page


def render_report(path: Path) -> tuple[Path, Path]:
    """(Re)write ``report.md`` and ``report.html`` in run folder ``path``."""
    path = Path(path)
    run = _RunFiles(path)
    atomic_write(path / "report.md", _markdown(run))
    atomic_write(path / "report.html", _html(run))
    return path / "report.md", path / "report.html"


class _RunFiles:
    """What a run folder holds for its report."""

    def __init__(self, path: Path):
        self.path = path
        self.info: dict[str, Any] = read_checked(inside(path, RUN_INFO), {}, run_info_problem)
        self.items: list[dict[str, Any]] = read_checked(inside(path, MANIFEST), [], items_problem)
        self.summary: dict[str, Any] = read_checked(inside(path, "summary.json"), {}, summary_problem)
        self.env: Any = read_checked(inside(path, "env.json"), {}, lambda data: None)
        self.config = self.read(".", "config", ".yaml") or ""

    @property
    def title(self) -> str:
        return self.info.get("experiment", self.path.name)

    def file(self, folder: str, name: str, suffix: str) -> Path:
        """``folder/name+suffix`` of the run folder, confined to it (links included)."""
        return inside(self.path, f"{folder}/{name}{suffix}")

    def read(self, folder: str, name: str, suffix: str) -> str | None:
        file = self.file(folder, name, suffix)
        return file.read_text(errors="replace") if file.is_file() else None

    def row_classes(self, name: str) -> dict[int, str]:
        """Row index -> best/worst, as the recipe coloured its table's rows."""
        classes = read_checked(self.file("tables", name, ".rows.json"), {}, row_classes_problem)
        return {int(i): c for i, c in classes.items()}

    def summary_entries(self) -> list[tuple[str, str, bool]]:
        return summary_entries(self.summary, self.info.get("headline"))


def summary_entries(summary: dict[str, Any], headline: str | None) -> list[tuple[str, str, bool]]:
    """(key, value with unit, is the headline) in summary.json's order, the headline first."""
    keys = sorted(summary, key=lambda k: k != headline)
    return [(k, with_unit(summary[k], k), k == headline) for k in keys]


def summary_box(entries: list[tuple[str, str, bool]], more: str = "") -> str:
    """The summary numbers as a row of small cards, the headline's highlighted; ``more`` ends the row."""
    cards = "".join(
        f"<div class='kv{' headline' if head else ''}'><span class='k'>{html.escape(k)}</span>"
        f"<span class='v'>{html.escape(v)}</span></div>"
        for k, v, head in entries
    )
    return f"<div class='summary'>{cards}{more}</div>"


def _status_line(info: dict[str, Any]) -> list[str]:
    """Status, wall time and start, as Markdown pieces (the error gets a line of its own)."""
    lines = [f"Status: **{info.get('status', '?')}**"]
    if "seconds" in info:
        lines.append(f"Wall time: {format_duration(info['seconds'])}")
    if info.get("started"):
        lines.append(f"Started: {str(info['started']).replace('T', ' ')}")
    return lines


def _markdown(run: _RunFiles) -> str:
    out = [f"# {run.title}", ""]
    if run.info.get("title"):
        out += [run.info["title"], ""]
    out += [" · ".join(_status_line(run.info)), ""]
    if run.info.get("error"):
        out += [f"Error: `{run.info['error']}`", ""]
    if run.summary:
        out += ["## Summary", "", "| key | value |", "|:---|---:|"]
        out += [f"| {k} | {v} |" for k, v, _ in run.summary_entries()] + [""]
    for item in run.items:
        out += [f"## {item['title']}", ""]
        kind, name = item["kind"], item["name"]
        if kind == "table":
            out.append(run.read("tables", name, ".md") or f"(missing tables/{name}.md)")
        elif kind == "figure":
            out.append(f"![{item['title']}](figures/{name}.png)")
        elif kind in ("text", "code"):
            body = run.read("text", name, ".md") or ""
            out.append(f"```\n{body.rstrip()}\n```" if kind == "code" else body)
        if item.get("caption"):
            out += ["", f"*{item['caption']}*"]
        out.append("")
    out += ["## Config", "", "```yaml", run.config.rstrip(), "```", ""]
    out += ["## Environment", "", "```json", json.dumps(run.env, indent=2), "```", ""]
    return "\n".join(out)


def _item_html(run: _RunFiles, item: dict[str, Any]) -> str:
    kind, name = item["kind"], item["name"]
    caption = markdown.inline(item["caption"]) if item.get("caption") else ""
    if kind == "figure":
        return figure_html(run.file("figures", name, ".png"), item["title"], item.get("caption", ""))
    if kind == "table":
        body = run.read("tables", name, ".md")
        out = markdown.to_html(body, run.row_classes(name)) if body is not None else f"<p>(missing tables/{html.escape(name)}.md)</p>"
    elif kind == "code":
        out = f"<pre><code>{html.escape(run.read('text', name, '.md') or '')}</code></pre>"
    else:
        out = markdown.to_html(run.read("text", name, ".md") or "")
    return out + (f'<p class="caption">{caption}</p>' if caption else "")


def figure_html(png: Path, title: str, caption: str = "") -> str:
    """A figure with the PNG inlined (the page is one file) and its Markdown ``caption``."""
    if not png.is_file():
        return f"<p>(missing figures/{html.escape(png.name)})</p>"
    data = base64.b64encode(png.read_bytes()).decode()
    cap = f"<figcaption>{markdown.inline(caption)}</figcaption>" if caption else ""
    return f'<figure><img alt="{html.escape(title)}" src="data:image/png;base64,{data}">{cap}</figure>'


def header_html(title: str, info: dict[str, Any]) -> list[str]:
    """The head of a run's page: ``title``, the study line, status badge, wall time, start and error."""
    status = html.escape(str(info.get("status", "?")))
    meta = [f'<span class="badge {status}">{status}</span>']
    meta += [markdown.inline(line) for line in _status_line(info)[1:]]
    parts = [f"<h1>{html.escape(title)}</h1>"]
    if info.get("title"):
        parts.append(f"<p class='subtitle'>{markdown.inline(info['title'])}</p>")
    parts.append(f"<p class='meta'>{' · '.join(meta)}</p>")
    if info.get("error"):
        parts.append(f"<p class='error'>{html.escape(info['error'])}</p>")
    return parts


def _html(run: _RunFiles) -> str:
    parts = header_html(run.title, run.info)
    if run.summary:
        parts.append(f"<h2>Summary</h2>{summary_box(run.summary_entries())}")
    for item in run.items:
        parts.append(f"<h2>{markdown.inline(item['title'])}</h2>")
        parts.append(_item_html(run, item))
    parts.append(f"<h2>Run details</h2><details><summary>Config</summary><pre>{html.escape(run.config)}</pre></details>")
    parts.append(
        f"<details><summary>Environment</summary><pre>{html.escape(json.dumps(run.env, indent=2))}</pre></details>"
    )
    return page(run.title, parts)
