"""The tune folder's report: the search, the best trial, the chosen settings' test numbers (shown
once: the best trial's own, or its refit's), the trials table, the optimisation history, wall time
and what pruning saved, and (when Optuna can compute them) the parameter importances."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

from trainlab.files import read_jsonl
from trainlab.runs import Run
from trainlab.sweeps.space import parse_space
from trainlab.sweeps.trials import TRIALS_FILE, _relative
from trainlab.sweeps.tune_folder import STUDY_NAME, read_spec, study_url

BEST = "best"
MIN_IMPORTANCE_TRIALS = 3
"""Finished trials Optuna's importance evaluator needs before its numbers mean anything."""


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


def write_tune_report(tune_run: Run, status: str, seconds: float, error: str | None = None,
                      refit: Path | None = None) -> None:
    """Tables, figure, text and summary of the tune folder; then report.md/html. ``refit`` is the
    run folder that retrained the best settings (its test numbers are then the ones shown)."""
    path = tune_run.path
    spec = read_spec(path)
    metric, mode = spec["metric"], spec["mode"]
    records = read_jsonl(path / TRIALS_FILE)
    rows, columns = tune_rows(records, metric, path)
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
    test: dict[str, Any] = {}
    if best is not None:
        chosen = ", ".join(f"`{p.key}={best[p.key]}`" for p in params)
        tune_run.text(BEST, f"Trial {best['trial']}: {metric} = {best[metric]} with {chosen}. Its own report "
                      f"is `{best['folder']}/report.html`.", title="Best trial")
        test = chosen_test_numbers(records, best, refit, path)
        tune_run.table("test", [{k: v for k, v in test.items() if k != "test_folder"}], title="Test numbers (shown once)",
                       caption=_test_caption(test, metric))
    tune_run.table("trials", rows, columns=columns, title="Trials",
                   caption="One row per ended trial; `epochs` is the last epoch reported (pruned trials stop there); "
                           "seconds is wall time. Test numbers are left out: settings are chosen on validation.")
    if any(isinstance(r.get(metric), (int, float)) for r in rows):
        tune_run.figure("history", history_figure(rows, metric, mode), title="Optimisation history",
                        caption=f"Each done trial's {metric} and the best so far.")
    counts = {s: sum(r["status"] == s for r in rows) for s in ("done", "pruned", "failed", "diverged")}
    saved, run = epochs_saved(rows), sum(int(r.get("epochs") or 0) for r in rows)
    tune_run.text("time", f"Wall time {seconds:.1f} s for {len(rows)} ended trials ({counts['done']} done, "
                  f"{counts['pruned']} pruned, {counts['failed']} failed, {counts['diverged']} diverged). "
                  f"The trials ran {run} epochs; pruning saved {saved} more: for each pruned trial, the epochs a "
                  "full trial reports (the most any done trial reached) less the epochs it reached.",
                  title="Time and pruning")
    importances, why_not = importances_of(path)
    if importances:
        tune_run.table("importances", [{"parameter": k, "importance": v} for k, v in importances.items()],
                       title="Parameter importances",
                       caption="Optuna's fANOVA importances (seed 0) over the finished trials.")
    else:
        tune_run.text("importances", f"Not computed: {why_not}.", title="Parameter importances")
    tune_run.summary(headline=metric, trials=len(rows), **counts, epochs_run=run, epochs_saved=saved,
                     wall_s=round(seconds, 3),
                     **({metric: best[metric], "best_trial": best["trial"], **test} if best else {}))
    tune_run.finish(status, seconds, error=error)


def chosen_test_numbers(records: Sequence[Mapping[str, Any]], best: Mapping[str, Any], refit: Path | None,
                        tune_dir: Path) -> dict[str, Any]:
    """The ``test*`` numbers of the chosen settings: the refit run's when there is one, else the best
    trial's own summary's; ``test_from`` says which and ``test_folder`` where they were read."""
    if refit is not None:
        summary = _read_summary(Path(refit))
        source, folder = "refit", _relative(str(refit), tune_dir)
    else:
        record = next(r for r in records if r.get("trial") == best["trial"] and r.get("status") == "done")
        summary, source, folder = record.get("summary") or {}, "best trial", best["folder"]
    numbers = {k: v for k, v in summary.items() if k.startswith("test") and isinstance(v, (int, float))}
    return {"test_from": source, **numbers, "test_folder": folder}


def _test_caption(test: Mapping[str, Any], metric: str) -> str:
    if test["test_from"] == "refit":
        return (f"The best settings retrained on the training and validation images (`--refit`), run "
                f"`{test['test_folder']}`. Its validation numbers measure images it trained on; only these test "
                f"numbers count. The search never saw them ({metric} chose the settings).")
    return (f"The best trial's own run (trained on the training split only), `{test['test_folder']}`. The search "
            f"never saw them ({metric} chose the settings); `--refit` would retrain on training + validation.")


def _read_summary(folder: Path) -> dict[str, Any]:
    try:
        summary = json.loads((folder / "summary.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return summary if isinstance(summary, dict) else {}


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


def importances_of(path: Any) -> tuple[dict[str, float], str]:
    """Optuna's fANOVA parameter importances (seeded, so the report is the same each time it is
    written), or nothing and one line saying why (few finished trials, a study it cannot fit)."""
    import optuna

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "importances will be equal" for a flat study: the table shows it
            study = optuna.load_study(study_name=STUDY_NAME, storage=study_url(path))
            complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
            if len(complete) < MIN_IMPORTANCE_TRIALS:
                return {}, (f"Optuna needs at least {MIN_IMPORTANCE_TRIALS} finished trials to fit importances; "
                            f"this tune has {len(complete)}")
            evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
            found = optuna.importance.get_param_importances(study, evaluator=evaluator)
            return {k: round(float(v), 4) for k, v in found.items()}, ""
    except Exception as exc:  # importance is a bonus: a study it cannot fit must not fail the report
        return {}, f"Optuna could not fit importances ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
