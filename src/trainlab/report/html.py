"""Render report.md and a self-contained report.html from a run folder's files."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from trainlab.report.tables import read_csv

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{border-bottom:2px solid #ddd;padding-bottom:.3em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}
tr.best td{background:#fff6c2;font-weight:600}
tr.worst td{background:#ffd9d9}
pre{background:#f6f8fa;padding:.8em;overflow-x:auto;font-size:.85em}
img{max-width:100%;border:1px solid #eee}
.caption{color:#555;font-size:.9em}
details{margin:1em 0}
"""


def _load(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any], dict[str, Any], str]:
    info = json.loads((path / "run.json").read_text()) if (path / "run.json").exists() else {}
    items = json.loads((path / "report.json").read_text()) if (path / "report.json").exists() else []
    summary = json.loads((path / "summary.json").read_text()) if (path / "summary.json").exists() else {}
    env = json.loads((path / "env.json").read_text()) if (path / "env.json").exists() else {}
    config = (path / "config.yaml").read_text() if (path / "config.yaml").exists() else ""
    return info, items, summary, env, config


def render_report(path: Path) -> tuple[Path, Path]:
    """(Re)write ``report.md`` and ``report.html`` in run folder ``path``."""
    from trainlab.runs import atomic_write

    path = Path(path)
    info, items, summary, env, config = _load(path)
    atomic_write(path / "report.md", _markdown(path, info, items, summary, env, config))
    atomic_write(path / "report.html", _html(path, info, items, summary, env, config))
    return path / "report.md", path / "report.html"


def _header_lines(info: dict[str, Any]) -> list[str]:
    lines = [f"Status: **{info.get('status', '?')}**"]
    if "seconds" in info:
        lines.append(f"Wall time: {info['seconds']:.1f} s")
    if info.get("started"):
        lines.append(f"Started: {info['started']}")
    if info.get("error"):
        lines.append(f"Error: {info['error']}")
    return lines


def _markdown(path, info, items, summary, env, config) -> str:
    out = [f"# {info.get('experiment', path.name)}", "", " · ".join(_header_lines(info)), ""]
    if summary:
        out += ["## Summary", "", "| key | value |", "|---|---|"]
        out += [f"| {k} | {v} |" for k, v in summary.items()] + [""]
    for item in items:
        out += [f"## {item['title']}", ""]
        kind, name = item["kind"], item["name"]
        if kind == "table":
            md = path / "tables" / f"{name}.md"
            out.append(md.read_text() if md.exists() else f"(missing tables/{name}.md)")
        elif kind == "figure":
            out.append(f"![{item['title']}](figures/{name}.png)")
        elif kind in ("text", "code"):
            body = (path / "text" / f"{name}.md").read_text()
            out.append(f"```\n{body.rstrip()}\n```" if kind == "code" else body)
        if item.get("caption"):
            out += ["", f"*{item['caption']}*"]
        out.append("")
    out += ["## Config", "", "```yaml", config.rstrip(), "```", ""]
    out += ["## Environment", "", "```json", json.dumps(env, indent=2), "```", ""]
    return "\n".join(out)


def _table_html(path: Path, name: str) -> str:
    csv_path = path / "tables" / f"{name}.csv"
    if not csv_path.exists():
        return f"<p>(missing tables/{name}.csv)</p>"
    columns, rows = read_csv(csv_path)
    marks_path = path / "tables" / f"{name}.rows.json"
    # Optional per-row CSS classes ("best", "worst") written by recipes that highlight rows.
    classes = json.loads(marks_path.read_text()) if marks_path.exists() else {}
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for i, row in enumerate(rows):
        cls = classes.get(str(i), "")
        cells = "".join(f"<td>{html.escape(_short(row.get(c, '')))}</td>" for c in columns)
        body.append(f'<tr class="{cls}">{cells}</tr>' if cls else f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _short(value: str) -> str:
    try:
        f = float(value)
    except ValueError:
        return value
    if f.is_integer() and "." not in value and "e" not in value.lower():
        return value
    return format(f, ".4g")


def _paragraphs(text: str) -> str:
    return "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in text.split("\n\n") if p.strip())


def _html(path, info, items, summary, env, config) -> str:
    title = html.escape(info.get("experiment", path.name))
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{title}</title><style>{CSS}</style></head><body>",
        f"<h1>{title}</h1><p>{' · '.join(html.escape(l.replace('**', '')) for l in _header_lines(info))}</p>",
    ]
    if summary:
        rows = "".join(
            f"<tr><td style='text-align:left'>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
            for k, v in summary.items()
        )
        parts.append(f"<h2>Summary</h2><table><tbody>{rows}</tbody></table>")
    for item in items:
        parts.append(f"<h2>{html.escape(item['title'])}</h2>")
        kind, name = item["kind"], item["name"]
        if kind == "table":
            parts.append(_table_html(path, name))
        elif kind == "figure":
            png = path / "figures" / f"{name}.png"
            if png.exists():
                data = base64.b64encode(png.read_bytes()).decode()
                parts.append(f"<img alt='{html.escape(item['title'])}' src='data:image/png;base64,{data}'>")
        elif kind == "code":
            parts.append(f"<pre>{html.escape((path / 'text' / f'{name}.md').read_text())}</pre>")
        elif kind == "text":
            parts.append(_paragraphs((path / "text" / f"{name}.md").read_text()))
        if item.get("caption"):
            parts.append(f"<p class='caption'>{html.escape(item['caption'])}</p>")
    parts.append(f"<details><summary>Config</summary><pre>{html.escape(config)}</pre></details>")
    parts.append(
        f"<details><summary>Environment</summary><pre>{html.escape(json.dumps(env, indent=2))}</pre></details>"
    )
    parts.append("</body></html>")
    return "\n".join(parts)
