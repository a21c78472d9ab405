"""The sweep folder's report: the grid, the combined table, failures and a headline figure."""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from trainlab.files import read_jsonl
from trainlab.runs import Run
from trainlab.sweeps.grid import Trial, describe_grid
from trainlab.sweeps.trials import SPEC_FILE, TRIALS_FILE, counts, table_rows


def write_report(
    sweep_run: Run, trials: Sequence[Trial], status: str, seconds: float, error: str | None = None
) -> None:
    """The combined table, the grid, the failures and the summary; then report.md/html."""
    path = sweep_run.path
    records = read_jsonl(path / TRIALS_FILE)
    rows, columns = table_rows(trials, records, path)
    spec = json.loads((path / SPEC_FILE).read_text())
    command = " ".join(["trainlab sweep", spec["experiment"], *spec["overrides"]] + (["--quick"] if spec["quick"] else []))
    sweep_run.text(
        "grid",
        f"`{command}`: {len(trials)} trials.\n\n{describe_grid(spec['swept'], spec['fixed'])}\n\n"
        "Each trial's own report is in its folder (column `folder`). `trainlab sweep "
        f"{spec['experiment']} --resume {path}` runs the trials not yet done or diverged.",
        title="Grid",
    )
    sweep_run.table(
        "trials",
        rows,
        columns=columns,
        title="Trials",
        caption="One row per trial in grid order; numbers are each trial's summary.json; seconds is wall time.",
    )
    failures = [r for r in rows if r["status"] in ("failed", "diverged")]
    if failures:
        body = "\n".join(f"- trial {r['trial']} ({r['key']}): **{r['status']}** {r.get('error', '')}" for r in failures)
        sweep_run.text("failures", body, title="Failed and diverged trials")
    headline = next((r.get("headline") for r in records if r.get("headline")), None)
    fig = headline_figure(rows, list(spec["swept"]), headline)
    if fig is not None:
        sweep_run.figure("headline", fig, title=f"{headline} against the swept values",
                         caption="Finished trials only (failed and diverged trials have no point).")
    sweep_run.summary(headline="done", **counts(rows))
    sweep_run.finish(status, seconds, error=error)


def headline_figure(rows: Sequence[Mapping[str, Any]], swept: Sequence[str], headline: str | None) -> Any:
    """The trials' headline number against the first numeric swept key, one line per other combination."""
    def numeric(key: str) -> bool:
        values = [r.get(key) for r in rows]
        return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)

    if not headline or not rows:
        return None
    x_key = next((k for k in swept if numeric(k)), None)
    if x_key is None:
        return None
    from trainlab.report.figures import new_figure

    others = [k for k in swept if k != x_key]
    lines: dict[str, list[tuple[float, float]]] = {}
    for row in rows:
        y = row.get(headline)
        if row.get("status") != "done" or not isinstance(y, (int, float)):
            continue
        label = ", ".join(f"{k}={row[k]}" for k in others)
        lines.setdefault(label, []).append((row[x_key], y))
    if not lines:
        return None
    fig, axes = new_figure()
    ax = axes[0, 0]
    for label, points in lines.items():
        xs, ys = zip(*sorted(points))
        ax.plot(xs, ys, marker="o", label=label or None)
    xs_all = [r[x_key] for r in rows]
    if min(xs_all) > 0 and max(xs_all) / min(xs_all) >= 100:
        ax.set_xscale("log")
    ax.set(xlabel=x_key, ylabel=headline)
    if any(lines):
        ax.legend(fontsize="small")
    return fig
