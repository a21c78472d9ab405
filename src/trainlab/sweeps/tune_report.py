"""The tune folder's report: the search, the best trial, the trials table, the optimisation history,
what pruning saved and (when Optuna can compute them) the parameter importances."""

from __future__ import annotations

import math
import warnings
from typing import Any, Mapping, Sequence

from trainlab.files import read_jsonl
from trainlab.runs import Run
from trainlab.sweeps.space import parse_space
from trainlab.sweeps.trials import TRIALS_FILE, _relative
from trainlab.sweeps.tune_folder import STUDY_NAME, read_spec, study_url

BEST = "best"


def tune_rows(records: Sequence[Mapping[str, Any]], metric: str, tune_dir: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per ended trial in trial order: number, the searched values, status, the metric,
    epochs reached, every other summary number, seconds and the trial's folder."""
    rows: list[dict[str, Any]] = []
    params: list[str] = []
    extra: list[str] = []
    for rec in sorted(records, key=lambda r: r.get("trial", 0)):
        summary = rec.get("summary") or {}
        row = {"trial": rec.get("trial"), **(rec.get("params") or {}), "status": rec.get("status"),
               metric: summary.get(metric), "epochs": rec.get("epochs")}
        for key in rec.get("params") or {}:
            if key not in params:
                params.append(key)
        for key, value in summary.items():
            # Test numbers stay in each trial's own report: a table to choose from must not show them.
            if key not in row and not key.startswith("test"):
                row[key] = value
                if key not in extra:
                    extra.append(key)
        row.update(seconds=rec.get("seconds"), folder=_relative(rec.get("path"), tune_dir), error=rec.get("error", ""))
        rows.append(row)
    columns = ["trial", *params, "status", metric, "epochs", *extra, "seconds", "folder"]
    if any(row["error"] for row in rows):
        columns.append("error")
    return rows, columns


def best_row(rows: Sequence[Mapping[str, Any]], metric: str, mode: str) -> Mapping[str, Any] | None:
    """The done trial with the best finite ``metric`` (the first one on a tie), or None."""
    scored = [r for r in rows if r["status"] == "done" and isinstance(r.get(metric), (int, float))
              and math.isfinite(r[metric])]
    if not scored:
        return None
    sign = 1 if mode == "max" else -1
    return max(scored, key=lambda r: (sign * r[metric], -r["trial"]))


def epochs_saved(rows: Sequence[Mapping[str, Any]]) -> int:
    """Epochs pruned trials did not train: a full trial's epochs (the most any done trial reached)
    less the epochs each pruned trial reached."""
    full = max((r.get("epochs") or 0 for r in rows if r["status"] == "done"), default=0)
    return sum(max(full - (r.get("epochs") or 0), 0) for r in rows if r["status"] == "pruned")


def write_tune_report(tune_run: Run, status: str, seconds: float, error: str | None = None) -> None:
    """Tables, figure, text and summary of the tune folder; then report.md/html."""
    path = tune_run.path
    spec = read_spec(path)
    metric, mode = spec["metric"], spec["mode"]
    rows, columns = tune_rows(read_jsonl(path / TRIALS_FILE), metric, path)
    fixed, params = parse_space(spec["space"])
    search = "\n".join(f"- {p.describe()}" for p in params) + (f"\n- fixed: `{' '.join(fixed)}`" if fixed else "")
    command = " ".join(["trainlab tune", spec["experiment"], *spec["space"], f"--metric {metric} --mode {mode}"]
                       + (["--quick"] if spec["quick"] else []))
    tune_run.text("search", f"`{command}`: Optuna's TPE sampler (seed {spec.get('seed', 0)}), "
                  f"{mode}imising `{metric}` (a validation number).\n\n{search}\n\n"
                  f"The study is `study.db` in this folder: `optuna-dashboard {study_url(path)}`. "
                  f"`trainlab tune {spec['experiment']} --resume {path} --trials N` runs more trials in it.",
                  title="Search")
    best = best_row(rows, metric, mode)
    if best is not None:
        chosen = ", ".join(f"`{p.key}={best[p.key]}`" for p in params)
        tune_run.text(BEST, f"Trial {best['trial']}: {metric} = {best[metric]} with {chosen}. Its own report "
                      f"(test numbers included, shown here once) is `{best['folder']}/report.html`.", title="Best trial")
    tune_run.table("trials", rows, columns=columns, title="Trials",
                   caption="One row per ended trial; `epochs` is the last epoch reported (pruned trials stop there); "
                           "seconds is wall time.")
    if any(isinstance(r.get(metric), (int, float)) for r in rows):
        tune_run.figure("history", history_figure(rows, metric, mode), title="Optimisation history",
                        caption=f"Each done trial's {metric} and the best so far.")
    importances = _importances(path)
    if importances:
        tune_run.table("importances", [{"parameter": k, "importance": v} for k, v in importances.items()],
                       title="Parameter importances", caption="Optuna's fANOVA importances over the finished trials.")
    counts = {s: sum(r["status"] == s for r in rows) for s in ("done", "pruned", "failed", "diverged")}
    tune_run.summary(headline=metric, trials=len(rows), **counts, epochs_saved=epochs_saved(rows),
                     wall_s=round(seconds, 3), **({metric: best[metric], "best_trial": best["trial"]} if best else {}))
    tune_run.finish(status, seconds, error=error)


def history_figure(rows: Sequence[Mapping[str, Any]], metric: str, mode: str) -> Any:
    from trainlab.report.figures import new_figure

    done = [(r["trial"], r[metric]) for r in rows
            if r["status"] == "done" and isinstance(r.get(metric), (int, float)) and math.isfinite(r[metric])]
    fig, axes = new_figure()
    ax = axes[0, 0]
    if done:
        xs, ys = zip(*done)
        pick = max if mode == "max" else min
        best = [pick(ys[: i + 1]) for i in range(len(ys))]
        ax.plot(xs, ys, "o", label=metric)
        ax.step(xs, best, where="post", color="C3", label="best so far")
        ax.legend(fontsize="small")
    ax.set(xlabel="trial", ylabel=metric)
    return fig


def _importances(path: Any) -> dict[str, float]:
    """Optuna's parameter importances, or nothing where it cannot compute them (few trials, one value)."""
    import optuna

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "importances will be equal" for a flat study: the table shows it
            study = optuna.load_study(study_name=STUDY_NAME, storage=study_url(path))
            complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
            if len(complete) < 3:
                return {}
            return {k: round(float(v), 4) for k, v in optuna.importance.get_param_importances(study).items()}
    except Exception:  # importance is a bonus: a study it cannot fit must not fail the report
        return {}
