"""``trainlab tour``: every experiment in quick mode, one index page linking the reports."""

from __future__ import annotations

import json
import time
import traceback
from datetime import datetime
from pathlib import Path
from typing import Callable

from tqdm.auto import tqdm

from trainlab.execute import build_config, run_experiment
from trainlab.experiments.registry import all_experiments, by_study
from trainlab.files import atomic_write
from trainlab.report.index import render_index


def run_tour(out: Path, only: list[str] | None = None, on_result: Callable[[dict], None] | None = None) -> Path:
    """Run the quick profile of every registered experiment under ``out/tour-<stamp>/``.

    One failing experiment does not stop the tour; its row says why. ``tour.json``
    holds one row per experiment with paths relative to the tour folder, so the
    folder can be moved or zipped. Returns the path of ``index.html``.
    """
    root = Path(out) / f"tour-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    root.mkdir(parents=True, exist_ok=False)
    # Study by study, the order in which the index page shows them.
    chosen = {n: e for n, e in all_experiments().items() if only is None or n in only}
    ordered = [exp for members in by_study(chosen).values() for exp in members]
    results = []
    for exp in tqdm(ordered, desc="tour", disable=None):
        start = time.perf_counter()
        row = {"name": exp.name, "study": exp.study_title, "question": exp.question,
               "summary": exp.summary, "title": exp.title}
        try:
            path = run_experiment(exp, build_config(exp, quick=True), out=root)
            row.update(status="done", path=path.relative_to(root).as_posix())
        except Exception as exc:  # noqa: BLE001 - the tour reports every failure and goes on
            row.update(status="failed", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
            found = sorted((root / exp.name).glob("*/report.html"))
            if found:
                row["path"] = found[-1].parent.relative_to(root).as_posix()
        row["seconds"] = round(time.perf_counter() - start, 2)
        results.append(row)
        if on_result is not None:
            on_result(row)
    atomic_write(root / "tour.json", json.dumps(results, indent=2))
    atomic_write(root / "index.html", render_index(root))
    return root / "index.html"
