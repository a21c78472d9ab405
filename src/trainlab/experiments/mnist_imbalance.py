"""MNIST MLP study, Question 3: one class thinned to one sample in N, and what keeps F1 up.

The study kept every '0' and one '1' in N (N = 100, 250, 500, ..., 2000),
trained the binary MLP 784 -> 4 ReLU -> 2 (Adam lr 1e-2, batch 64, 10 epochs)
and reported accuracy and F1 on a test set thinned the same way and on the
original one; then it weighted the loss and resampled the training data with
weight factors [1, N/10, N/2, n0/n1]. Each of its numbers came from one run.
Here every N, strategy and weight runs over several seeds (each seed draws its
own rare samples), with the methods used today added (focal loss, logit
adjustment, a tuned threshold), and all of the models, several hundred by
default, train together as one stacked model (``train_per_trial``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import List

import numpy as np
import torch
from scipy import stats

from trainlab.config import check, one_of, positive
from trainlab.data import imbalanced_split, keep_classes, random_subset, sparsify, to_tensor
from trainlab.device import thread_limit
from trainlab.errors import DataError
from trainlab.experiments._data import SplitDataConfig, load_data
from trainlab.report import numbers
from trainlab.report.figures import new_figure
from trainlab.report.tables import mean_std, rows_to_markdown
from trainlab.train.imbalance import (
    POSTHOC,
    STRATEGIES,
    WEIGHTED,
    posthoc_threshold,
    scores,
    strategy_data,
    weight_factor,
)
from trainlab.train.metrics import best_f1_threshold, binary_metrics_stacked
from trainlab.train.pertrial import logits_many, train_alone_on, train_per_trial
from trainlab.train.stacked import TrialSpec

NAME = "mnist-imbalance"
STUDY = "mlp"
QUESTION = "Q3"
SUMMARY = ("One class thinned to 1 in N: F1 over seeds for loss weights, resampling, focal loss, logit adjustment, "
           "thresholds")
RUNTIME = "~2 min"
QUICK = {"dataset": "digits", "Ns": [2, 5, 10, 25, 50], "seeds": 3, "epochs": 10}

KEY = ["N", "n_rare_train", "n_rare_test", "strategy", "weight"]
VALUES = ["train_time_s", "train_acc", "val_acc", "test_acc", "f1_val", "f1_test", "ap_test", "balanced_acc_test",
          "mcc_test"]
METRICS = ("acc", "f1", "ap", "balanced_acc", "mcc", "precision", "recall")

SEED_TABLE = """The study's F1 on the original test set (MNIST, one run per cell; Figures 2, 4 and 6):

| N | none | loss weight 1 | N/10 | N/2 | n0/n1 | resample 1 | N/10 | N/2 | n0/n1 |
|---|---|---|---|---|---|---|---|---|---|
| 100 | 0.983 | 0.000 | 0.993 | 0.000 | 0.995 | 0.989 | 0.997 | 0.999 | 0.995 |
| 500 | 0.970 | 0.936 | 0.979 | 0.985 | 0.986 | 0.000 | 0.955 | 0.994 | 0.998 |
| 1000 | 0.940 | 0.615 | 0.863 | 0.742 | 0.996 | 0.000 | 0.789 | 0.981 | 0.914 |
| 1500 | 0.280 | 0.000 | 0.937 | 0.901 | 0.994 | 0.000 | 0.709 | 0.881 | 0.917 |
| 2000 | 0.000 | 0.000 | 0.998 | 0.636 | 0.692 | 0.000 | 0.405 | 0.841 | 0.939 |

On the thinned test sets it reported F1 0 or 0.000001 for N > 1000, where those sets hold no '1'
at all: its F1 swapped its arguments and replaced undefined values by 1e-6."""


@dataclass
class Config(SplitDataConfig):
    classes: List[int] = field(default_factory=lambda: [0, 1])
    """Two classes: the first is kept whole, the second (the positive class of F1) is thinned to one in N."""
    Ns: List[int] = field(default_factory=lambda: [100] + [250 * i for i in range(1, 9)])
    """Sparsities N: the rare class keeps count // N of its samples (the study's 100, 250, 500, ..., 2000)."""
    strategies: List[str] = field(default_factory=lambda: list(STRATEGIES))
    """Any of none, loss_weight, resample, focal, logit_adjust, posthoc_adjust, threshold."""
    weights: List[str] = field(default_factory=lambda: ["1", "N/10", "N/2", "n0/n1"])
    """Weight factors of the rare class for loss_weight and resample: numbers, N, N/<k> or n0/n1."""
    seeds: int = 5
    """Repeats with seeds seed, seed+1, ...: each draws its own rare samples, split, initial weights and batches."""
    epochs: int = 10
    """Passes over each training set (the study's 10)."""
    lr: float = 1e-2
    """Adam learning rate (the study's 1e-2)."""
    batch_size: int = 64
    """Minibatch size (the study's 64)."""
    hidden: int = 4
    """Hidden ReLU units (the study's 4)."""
    focal_gamma: float = 2.0
    """Focal loss exponent (Lin et al.'s 2)."""
    tau: float = 1.0
    """Logit adjustment strength, for the logit-adjusted loss and the post-hoc adjustment (Menon et al.'s 1)."""
    batched: bool = True
    """Train all models as one stacked model; false trains them one at a time (the reference, slow)."""
    workers: int = 2
    """Stacks trained at once on the CPU, one thread each (2 uses both cores of a 2-core machine)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(len(self.classes) == 2 and self.classes[0] != self.classes[1],
              "classes needs two different classes, e.g. classes=[0,1] (the second is thinned)")
        check(len(self.Ns) > 0, "Ns must list at least one N")
        positive("Ns", self.Ns)
        check(len(self.strategies) > 0, "strategies must list at least one strategy")
        for name in self.strategies:
            one_of("strategies", name, STRATEGIES)
        check(not any(s in WEIGHTED for s in self.strategies) or len(self.weights) > 0,
              "weights must list at least one factor for loss_weight and resample")
        for expr in self.weights:
            weight_factor(expr, 100, (100, 1))  # syntax check; the values depend on N and the split
        for name in ("seeds", "epochs", "lr", "batch_size", "hidden", "workers"):
            positive(name, getattr(self, name))
        check(self.focal_gamma >= 0, f"focal_gamma must be >= 0 (got {self.focal_gamma})")
        positive("tau", self.tau)


def run(cfg: Config, run) -> None:
    device = run.device

    # Data: the two classes, labels 0 (kept whole) and 1 (thinned); all of it on the device once.
    data = load_data(cfg)
    train_images, train_labels = keep_classes(data.train_images, data.train_labels, cfg.classes)
    keep = random_subset(len(train_labels), cfg.train_limit, cfg.seed)
    train_images, train_labels = train_images[keep], train_labels[keep]
    test_images, test_labels = keep_classes(data.test_images, data.test_labels, cfg.classes)
    x, y = to_tensor(train_images, device), torch.as_tensor(train_labels, device=device).long()
    x_test, y_test = to_tensor(test_images, device), torch.as_tensor(test_labels, device=device).long()

    # Every (seed, N): its thinned train / validation / test rows, then one trial per strategy and weight.
    trained = [s for s in STRATEGIES if s not in POSTHOC
               and (s in cfg.strategies or (s == "none" and set(POSTHOC) & set(cfg.strategies)))]
    groups, specs, trials = [], [], []
    for repeat in range(cfg.seeds):
        seed = cfg.seed + repeat
        spec = TrialSpec(hidden=cfg.hidden, activation="relu", optimizer="adam", lr=cfg.lr,
                         batch_size=cfg.batch_size, seed=seed)
        for n in cfg.Ns:
            train, val = imbalanced_split(train_labels, 1, n, seed, cfg.val_fraction)
            counts = tuple(np.bincount(train_labels[train], minlength=2).tolist())
            if counts[1] == 0:
                raise DataError(f"N={n} leaves no training sample of class {cfg.classes[1]} "
                                f"({int(np.sum(train_labels == 1))} // {n} = {int(np.sum(train_labels == 1)) // n} "
                                "before the split); lower the largest N")
            rows = torch.as_tensor(train, device=device)
            group = {"N": n, "seed": seed, "counts": counts, "train": rows, "val": torch.as_tensor(val, device=device),
                     "sparse": torch.as_tensor(sparsify(test_labels, 1, n, seed), device=device), "trials": []}
            for strategy in trained:
                for expr in (cfg.weights if strategy in WEIGHTED else ["-"]):
                    factor = weight_factor(expr, n, counts) if strategy in WEIGHTED else 1.0
                    group["trials"].append((strategy, expr, factor, len(specs)))
                    specs.append(spec)
                    trials.append(strategy_data(strategy, rows, y[rows], factor, gamma=cfg.focal_gamma, tau=cfg.tau))
            groups.append(group)

    with thread_limit(1, device):  # tiny models: a second thread only spin-waits (see trainlab.device)
        start = time.perf_counter()
        if cfg.batched:
            results = train_per_trial(specs, trials, x, y, epochs=cfg.epochs, n_classes=2, workers=cfg.workers)
        else:
            results = [train_alone_on(s, t, x, y, epochs=cfg.epochs, n_classes=2) for s, t in zip(specs, trials)]
        train_seconds = time.perf_counter() - start
        rows, eval_seconds = _evaluate(cfg, groups, results, x, y, x_test, y_test)
    for row in rows:
        run.log(**{k: v for k, v in row.items() if k not in ("sparse", "test")}, sparse_test=row["sparse"],
                original_test=row["test"])

    # Tables: the study's columns plus the new ones, mean and std over seeds, for both test sets.
    tables = {}
    for test_name, title in (("sparse", "Test set thinned like training (the study's Figures 1, 3, 5)"),
                             ("test", "Original test set (the study's Figures 2, 4, 6)")):
        per_run = [{**{k: v for k, v in r.items() if k not in ("sparse", "test")}, **r[test_name]} for r in rows]
        table = _aggregate(per_run)
        tables[test_name] = (per_run, table)
        name = "sparsed_test" if test_name == "sparse" else "original_test"
        columns = KEY + [c for v in VALUES for c in (v, f"{v}_std")] + ["n", "n_undefined"]
        run.table(name, _nan_as_text(table, columns), columns=columns, title=title,
                  markdown=_markdown(table), caption="Mean ± std over seeds; accuracy in percent; F1, AP and MCC "
                  "of the thinned class; n_rare_train / n_rare_test: its samples in the training and this test "
                  "set. n/a: undefined in every run (F1: no positive label and none predicted); n_undefined "
                  "counts the runs whose test F1 is undefined, and means are over the others.")

    per_run, table = tables["test"]
    n_ref = min(cfg.Ns, key=lambda n: abs(n - 1000))
    best = _best_weights(per_run, cfg)
    run.figure("f1_vs_N", _plot_vs_n(per_run, best, cfg, "f1_test", "F1"), title="F1 on the original test set "
               "against N", caption="Mean over seeds, bars one std (cut at 0 and 1); loss_weight and resample at the "
               "weight with the best mean validation F1 at each N (ties: validation AP).")
    run.figure("ap_vs_N", _plot_vs_n(per_run, best, cfg, "ap_test", "average precision"),
               title="Average precision on the original test set against N",
               caption="Post-hoc strategies only move the baseline's threshold, so their AP is the baseline's.")
    if any(s in WEIGHTED for s in cfg.strategies):
        run.figure("f1_vs_weight", _plot_vs_weight(per_run, cfg, n_ref), title=f"F1 against the weight factor at "
                   f"N = {n_ref}", caption="Mean over seeds, bars one std (cut at 0 and 1), original test set.")
    run.text("verdict", _verdict(per_run, best, tables["sparse"][0], cfg), title="Verdict")
    n_models = len(specs)
    run.text("training", f"{n_models} models trained ({len(cfg.Ns)} N x {cfg.seeds} seeds x "
             f"{n_models // (len(cfg.Ns) * cfg.seeds)} trained strategy/weight settings; post-hoc strategies reuse "
             f"the baseline model) in {train_seconds:.1f} s on {device} "
             + ("as stacked models (trials that share batches share one step; resampled ones draw their own)"
                if cfg.batched else "one at a time") + f", evaluated in {eval_seconds:.1f} s. MLP {x.shape[1]} -> "
             f"{cfg.hidden} ReLU -> 2, Adam lr {cfg.lr:g}, batch {cfg.batch_size}, {cfg.epochs} epochs, focal "
             f"gamma {cfg.focal_gamma:g}, logit adjustment tau {cfg.tau:g}. Data: {data.name} ({data.source}), "
             f"classes {cfg.classes}: {int(np.sum(train_labels == 0))} / {int(np.sum(train_labels == 1))} training "
             f"and {int(np.sum(test_labels == 0))} / {int(np.sum(test_labels == 1))} test images before thinning; "
             "each class split (1 - val_fraction) / val_fraction on its own. train_time_s is a model's share of "
             "its stack's training time." + _same_data_note(train_labels, cfg.Ns), title="Training details")
    run.text("seed_table", SEED_TABLE, title="The study's numbers")

    medians = {(r["strategy"], r["weight"]): float(np.median(_runs(per_run, n_ref, r["strategy"], r["weight"],
                                                                   "f1_test")))
               for r in table if r["N"] == n_ref}  # the original test set always has positives: F1 is defined
    top = max(medians, key=lambda k: medians[k])
    run.summary(headline=f"median_f1_test_N{n_ref}", **{f"median_f1_test_N{n_ref}": medians[top]},
                best_at_N=f"{top[0]} {top[1]}".strip(" -"), models=n_models, train_seconds=train_seconds,
                eval_seconds=eval_seconds, diverged=sum(r.status != "done" for r in results),
                undefined_f1_val=sum(math.isnan(r["f1_val"]) for r in per_run),
                undefined_f1_sparse_test=sum(math.isnan(r["f1_test"]) for r in tables["sparse"][0]))


def _evaluate(cfg: Config, groups: list[dict], results: list, x: torch.Tensor, y: torch.Tensor,
              x_test: torch.Tensor, y_test: torch.Tensor) -> tuple[list[dict], float]:
    """One row per (seed, N, strategy, weight): every model's score z1 - z0 on every set, post-hoc strategies
    moving the baseline's threshold; returns the rows and the seconds it took."""
    device = x.device
    start = time.perf_counter()
    test_scores = scores(logits_many([r.model for r in results], x_test))
    rows = []
    for group in groups:
        members = [i for *_, i in group["trials"]]
        local = {i: j for j, i in enumerate(members)}
        models = [results[i].model for i in members]
        sets = {"train": (scores(logits_many(models, x[group["train"]])), y[group["train"]]),
                "val": (scores(logits_many(models, x[group["val"]])), y[group["val"]]),
                "sparse": (test_scores[members][:, group["sparse"]], y_test[group["sparse"]]),
                "test": (test_scores[members], y_test)}
        decisions = [(strategy, expr, factor, local[i], 0.0) for strategy, expr, factor, i in group["trials"]
                     if strategy in cfg.strategies]
        base = next((local[i] for strategy, *_, i in group["trials"] if strategy == "none"), None)
        if "posthoc_adjust" in cfg.strategies:
            decisions.append(("posthoc_adjust", "-", 1.0, base, posthoc_threshold(group["counts"], cfg.tau)))
        if "threshold" in cfg.strategies:
            tuned = best_f1_threshold(sets["val"][1], sets["val"][0][base : base + 1])
            decisions.append(("threshold", "-", 1.0, base, float(tuned[0])))
        pick = torch.tensor([d[3] for d in decisions], device=device)
        thresholds = torch.tensor([d[4] for d in decisions], device=device)
        measured = {name: binary_metrics_stacked(target, s[pick], thresholds) for name, (s, target) in sets.items()}
        for k, (strategy, expr, factor, j, threshold) in enumerate(decisions):
            result = results[members[j]]
            row = {"N": group["N"], "seed": group["seed"], "strategy": strategy, "weight": expr,
                   "weight_value": factor, "threshold": threshold, "status": result.status,
                   "train_time_s": result.seconds, "n_rare_train": group["counts"][1],
                   "train_acc": measured["train"]["acc"][k], "val_acc": measured["val"]["acc"][k],
                   "f1_val": measured["val"]["f1"][k], "ap_val": measured["val"]["ap"][k]}
            for test_name in ("sparse", "test"):
                row[test_name] = {("test_acc" if m == "acc" else f"{m}_test"): measured[test_name][m][k]
                                  for m in METRICS}
                row[test_name]["n_rare_test"] = int(sets[test_name][1].sum())
            rows.append(row)
    return rows, time.perf_counter() - start


def _aggregate(per_run: list[dict]) -> list[dict]:
    """Mean and std over seeds of every value (undefined runs left out), with n_undefined (test F1 undefined)."""
    table = mean_std(per_run, by=KEY, values=VALUES, skip_nan=True)
    for rec in table:
        rec["n_undefined"] = sum(math.isnan(r["f1_test"]) for r in per_run
                                 if (r["N"], r["strategy"], r["weight"]) == (rec["N"], rec["strategy"], rec["weight"]))
    return table


def _nan_as_text(table: list[dict], columns: list[str]) -> list[dict]:
    """NaN written as the text NaN (the CSV writer would leave the cell empty)."""
    return [{c: ("NaN" if isinstance(r.get(c), float) and math.isnan(r[c]) else r.get(c, "")) for c in columns}
            for r in table]


def _markdown(table: list[dict]) -> str:
    """One 'mean ± std' cell per value, rounded by the report's rule; n/a where no run is defined."""
    def cell(r: dict, v: str) -> str:
        percent = numbers.is_percent(v, [r[v]])
        std = r.get(f"{v}_std", math.nan)
        std = 0.0 if abs(std) <= 1e-12 * abs(r[v]) else std  # equal values: no float dust
        text = numbers.format_number(r[v], percent)
        return text if math.isnan(r[v]) or math.isnan(std) else f"{text} ± {numbers.format_number(std, percent)}"

    cells = [{**{k: r[k] for k in KEY}, **{v: cell(r, v) for v in VALUES}, "n_undefined": r["n_undefined"]}
             for r in table]
    return rows_to_markdown(cells, [*KEY, *VALUES, "n_undefined"])


def _mean(values: list[float]) -> float:
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else -math.inf


def _best_weights(per_run: list[dict], cfg: Config) -> dict[tuple[int, str], str]:
    """For loss_weight and resample at each N, the weight with the best mean validation F1 (then AP)."""
    best = {}
    for strategy in (s for s in cfg.strategies if s in WEIGHTED):
        for n in cfg.Ns:
            def score(expr: str) -> tuple[float, float]:
                runs = [r for r in per_run if (r["N"], r["strategy"], r["weight"]) == (n, strategy, expr)]
                return _mean([r["f1_val"] for r in runs]), _mean([r["ap_val"] for r in runs])
            best[(n, strategy)] = max(cfg.weights, key=score)
    return best


def _runs(per_run: list[dict], n: int, strategy: str, weight: str, key: str) -> np.ndarray:
    runs = sorted((r for r in per_run if (r["N"], r["strategy"], r["weight"]) == (n, strategy, weight)),
                  key=lambda r: r["seed"])
    return np.array([r[key] for r in runs], dtype=float)


def _chosen(per_run: list[dict], best: dict, n: int, strategy: str, key: str) -> np.ndarray:
    return _runs(per_run, n, strategy, best.get((n, strategy), "-"), key)


def _bars(values: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Means over seeds and error bars of one std, cut at 0 and 1 (F1 and AP live in [0, 1])."""
    mean = np.array([np.mean(v) for v in values])
    std = np.array([np.std(v, ddof=1) if len(v) > 1 else 0.0 for v in values])
    return mean, np.stack([np.minimum(std, mean), np.minimum(std, 1.0 - mean)])


def _plot_vs_n(per_run: list[dict], best: dict, cfg: Config, key: str, label: str):
    fig, axes = new_figure(size=(6.4, 4.2))
    ax = axes[0, 0]
    for i, strategy in enumerate(cfg.strategies):
        mean, err = _bars([_chosen(per_run, best, n, strategy, key) for n in cfg.Ns])
        shift = 1 + 0.015 * (i - (len(cfg.strategies) - 1) / 2)  # a little sideways, so the bars stay apart
        ax.errorbar(np.array(cfg.Ns) * shift, mean, yerr=err, marker="o", capsize=3, label=strategy)
    ax.set_xscale("log")
    ax.set_xticks(cfg.Ns, [str(n) for n in cfg.Ns], rotation=45)
    ax.minorticks_off()
    ax.set(xlabel="N (the rare class keeps one sample in N)", ylabel=f"{label}, original test set")
    ax.legend(fontsize="small")
    return fig


def _plot_vs_weight(per_run: list[dict], cfg: Config, n: int):
    fig, axes = new_figure()
    ax = axes[0, 0]
    for strategy in (s for s in cfg.strategies if s in WEIGHTED):
        mean, err = _bars([_runs(per_run, n, strategy, w, "f1_test") for w in cfg.weights])
        ax.errorbar(range(len(cfg.weights)), mean, yerr=err, marker="o", capsize=3, label=strategy)
    if "none" in cfg.strategies:
        ax.axhline(np.mean(_runs(per_run, n, "none", "-", "f1_test")), color="grey", linestyle=":", label="none")
    ax.set_xticks(range(len(cfg.weights)), cfg.weights)
    ax.set(xlabel="weight factor of the rare class", ylabel="F1, original test set", title=f"N = {n}")
    ax.legend(fontsize="small")
    return fig


def _verdict(per_run: list[dict], best: dict, sparse_runs: list[dict], cfg: Config) -> str:
    """Which strategies beat the baseline beyond the seed-to-seed spread, and how the study's claims fare."""
    if cfg.seeds < 2 or "none" not in cfg.strategies:
        return "A verdict needs the baseline (strategy none) and at least two seeds."
    lines = ["Paired over seeds (same rare samples, split, initial weights and batches per seed), a strategy "
             "beats the baseline at an N when the 95 % t-interval of its F1 minus the baseline's on the original "
             "test set lies above zero, loses when it lies below, and is otherwise within the seed-to-seed spread.",
             ""]
    t = stats.t.ppf(0.975, cfg.seeds - 1)

    def compare(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
        d = a - b
        half = t * np.std(d, ddof=1) / math.sqrt(len(d))
        return float(np.mean(d)), (1 if np.mean(d) - half > 0 else -1 if np.mean(d) + half < 0 else 0)

    base = {n: _runs(per_run, n, "none", "-", "f1_test") for n in cfg.Ns}
    for strategy in (s for s in cfg.strategies if s != "none"):
        verdicts = {n: compare(_chosen(per_run, best, n, strategy, "f1_test"), base[n]) for n in cfg.Ns}
        wins = [n for n, (_, v) in verdicts.items() if v > 0]
        losses = [n for n, (_, v) in verdicts.items() if v < 0]
        lines.append(f"- **{strategy}** beats the baseline at N = {_list(wins)}, loses at N = {_list(losses)}, "
                     f"and is within the spread at the other {len(cfg.Ns) - len(wins) - len(losses)} N "
                     f"(mean F1 gain {np.mean([d for d, _ in verdicts.values()]):+.3f} over all N).")
    spread = np.median([np.std(_chosen(per_run, best, n, s, "f1_test"), ddof=1) for n in cfg.Ns for s in
                        cfg.strategies])
    median_base = {n: float(np.median(v)) for n, v in base.items()}
    fell = [n for n in cfg.Ns if median_base[n] < 0.9]
    lines += ["", f"The typical seed-to-seed std of one setting's test F1 is {spread:.3f} (median over N and "
              f"strategies), so single-run differences of that size, which the study read into its tables, are "
              f"noise. The baseline's median F1 is below 0.9 at N = {_list(fell)} (median "
              + ", ".join(f"{median_base[n]:.2f}" for n in cfg.Ns) + f" for N = {_list(cfg.Ns)}); the study saw it "
              "fall apart above N = 1000 (a single run).", ""]
    if {"loss_weight", "resample"} <= set(cfg.strategies):
        verdicts = {n: compare(_chosen(per_run, best, n, "resample", "f1_test"),
                               _chosen(per_run, best, n, "loss_weight", "f1_test")) for n in cfg.Ns}
        wins = [n for n, (_, v) in verdicts.items() if v > 0]
        losses = [n for n, (_, v) in verdicts.items() if v < 0]
        outcome = ("is within the noise" if not wins and not losses else "holds" if not losses else
                   "is reversed" if not wins else "holds at some N and is reversed at others")
        lines.append(f"- The study found resampling better and steadier than loss weighting. Here resampling "
                     f"(best weight on validation) beats loss weighting at N = {_list(wins)} and loses at N = "
                     f"{_list(losses)}: the claim {outcome}.")
    large = [n for n in cfg.Ns if n > np.median(cfg.Ns)]
    if "loss_weight" in cfg.strategies and {"n0/n1", "N/10"} <= set(cfg.weights) and large:
        verdicts = {n: compare(_runs(per_run, n, "loss_weight", "N/10", "f1_test"),
                               _runs(per_run, n, "loss_weight", "n0/n1", "f1_test")) for n in large}
        wins = [n for n, (_, v) in verdicts.items() if v > 0]
        lines.append(f"- The study found the largest loss weight (n0/n1) falling behind N/10 at large N. Here N/10 "
                     f"beats n0/n1 beyond the spread at N = {_list(wins)} of N = {_list(large)}: the claim "
                     + ("holds" if len(wins) == len(large) else "holds in part" if wins else "is noise") + ".")
    empty = sorted({r["N"] for r in sparse_runs if r["n_rare_test"] == 0})
    undefined = sum(math.isnan(r["f1_test"]) for r in sparse_runs)
    lines.append(f"- On the thinned test sets, {undefined} of {len(sparse_runs)} runs have an undefined F1 "
                 "(no positive label and none predicted); the study wrote 0 or 1e-6 for these, numbers that were "
                 "never measured." + (f" The thinned test sets hold no rare sample at N = {_list(empty)}." if empty
                                      else ""))
    return "\n".join(lines)


def _same_data_note(train_labels: np.ndarray, ns: list[int]) -> str:
    """Ns that keep the same number of rare samples train on the same data (the kept samples are nested)."""
    rare = int(np.sum(train_labels == 1))
    by_count: dict[int, list[int]] = {}
    for n in ns:
        by_count.setdefault(rare // n, []).append(n)
    same = [f"N = {_list(group)} keep the same {count}" for count, group in by_count.items() if len(group) > 1]
    if not same:
        return ""
    return (" " + "; ".join(same) + f" rare samples ({rare} // N), so for one seed they train on the same data and "
            "strategies whose weight does not involve N give the same models there.")


def _list(values: list) -> str:
    return ", ".join(map(str, values)) if values else "none"
