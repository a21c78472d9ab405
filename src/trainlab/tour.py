"""``trainlab tour``: every experiment in quick mode, one index page linking the reports."""

from __future__ import annotations

import html
import json
import time
import traceback
from datetime import datetime
from pathlib import Path
from typing import Callable

from tqdm.auto import tqdm

from trainlab.execute import run_experiment
from trainlab.experiments.registry import all_experiments
from trainlab.runs import atomic_write


def run_tour(out: Path, only: list[str] | None = None, on_result: Callable[[dict], None] | None = None) -> Path:
    """Run the quick profile of every registered experiment under ``out/tour-<stamp>/``.

    One failing experiment does not stop the tour; its row says why. Returns the
    path of ``index.html``.
    """
    root = Path(out) / f"tour-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    root.mkdir(parents=True, exist_ok=False)
    experiments = all_experiments()
    names = [n for n in experiments if only is None or n in only]
    results = []
    for name in tqdm(names, desc="tour", disable=None):
        start = time.perf_counter()
        try:
            path = run_experiment(name, quick=True, out=root)
            row = {"name": name, "status": "done", "path": str(path)}
        except Exception as exc:  # noqa: BLE001 - the tour reports every failure and goes on
            row = {"name": name, "status": "failed", "error": f"{type(exc).__name__}: {exc}",
                   "traceback": traceback.format_exc()}
            found = sorted((root / name).glob("*/report.html"))
            if found:
                row["path"] = str(found[-1].parent)
        row["seconds"] = round(time.perf_counter() - start, 2)
        row["summary"] = experiments[name].title
        results.append(row)
        if on_result is not None:
            on_result(row)
    atomic_write(root / "tour.json", json.dumps(results, indent=2))
    atomic_write(root / "index.html", _index_html(root, results))
    return root / "index.html"


def _index_html(root: Path, results: list[dict]) -> str:
    rows = []
    for r in results:
        link = html.escape(r["name"])
        if r.get("path"):
            rel = Path(r["path"]).relative_to(root) / "report.html"
            link = f"<a href='{html.escape(str(rel))}'>{link}</a>"
        status = html.escape(r["status"] if r["status"] == "done" else f"{r['status']}: {r.get('error', '')}")
        rows.append(
            f"<tr><td style='text-align:left'>{link}</td><td style='text-align:left'>{html.escape(r['summary'])}</td>"
            f"<td>{status}</td><td>{r['seconds']:.1f}</td></tr>"
        )
    total = sum(r["seconds"] for r in results)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>trainlab tour</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em}</style></head><body>"
        f"<h1>trainlab tour</h1><p>Every experiment in quick mode on data that needs no download; "
        f"{len(results)} experiments in {total:.1f} s.</p>"
        "<table><thead><tr><th>experiment</th><th>what</th><th>status</th><th>seconds</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></body></html>"
    )
