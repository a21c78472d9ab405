"""MNIST MLP study, Question 3: one class thinned to one sample in N, and what keeps F1 up.

The study kept every '0' and one '1' in N (N = 100, 250, ..., 2000), trained 784 -> 4 ReLU -> 2
(Adam lr 1e-2, batch 64, 10 epochs), reported accuracy and F1 on a thinned and on the original
test set, then weighted the loss and resampled with factors [1, N/10, N/2, n0/n1], one run per
number. Here every setting runs over seeds (each drawing its own rare samples), today's fixes are
added (focal loss, logit adjustment, a tuned threshold), and the hundreds of models train as one
stacked model (``train_per_trial``).

Checkpoints (:mod:`trainlab.checkpoints`): every trained model that did not diverge (the
default's 495 models hold 1.6 M weights, 6.2 MB; post-hoc strategies reuse ``none``'s),
named ``N<N>_<strategy>[_<weight>]_seed<seed>`` with ``/`` in a weight read as ``_over_``
(``N100_none_seed0``, ``N100_loss_weight_N_over_10_seed0``); rebuild one with
``MLP(**info["architecture"])`` and ``load_checkpoint``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import ClassVar, List

import numpy as np
import torch

from trainlab.checkpoints import save_checkpoint
from trainlab.config import check, one_of, positive
from trainlab.data import imbalanced_split, keep_classes, random_subset, sparsify, to_tensor
from trainlab.device import thread_limit
from trainlab.errors import DataError
from trainlab.experiments._data import SplitDataConfig, load_data
from trainlab.report.figures import mean_std_lines, new_figure
from trainlab.report.stats import paired_difference
from trainlab.report.tables import mean_std, mean_std_markdown
from trainlab.runs import Run
from trainlab.train.imbalance import (POSTHOC, STRATEGIES, WEIGHTED, posthoc_decision, scores, strategy_grid,
                                      weight_factor)
from trainlab.train.metrics import binary_metrics_stacked
from trainlab.train.stack import TrialSpec, logits_many, train_alone, train_per_trial

NAME = "mnist-imbalance"
STUDY = "mlp"
QUESTION = "Q3"
SUMMARY = ("One class thinned to 1 in N: F1 over seeds for loss weights, resampling, focal loss, logit adjustment, "
           "thresholds")
RUNTIME = "~16 s"  # bench/runtimes.py, 2026-12-06 (16.0 s), one at a time on the 2-core machine
QUICK = {"dataset": "digits", "Ns": [2, 5, 10, 25, 50], "seeds": 3, "epochs": 10}

KEY = ["N", "n_rare_train", "n_rare_test", "strategy", "weight"]
VALUES = ["train_time_s", "train_acc", "val_acc", "test_acc", "f1_val", "f1_test", "ap_test", "balanced_acc_test",
          "mcc_test", "ap_val"]
METRICS = ("acc", "f1", "ap", "balanced_acc", "mcc", "precision", "recall")

STUDY_TABLE = """The study's F1 on the original test set (MNIST, one run per cell; Figures 2, 4 and 6):

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
    RENAMED: ClassVar[dict[str, str]] = {"batched": "stacked"}
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
    stacked: bool = True
    """Train all models as one stacked model; false trains them one at a time (the reference, slow)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(len(self.classes) == 2 and self.classes[0] != self.classes[1],
              "classes needs two different classes, e.g. classes=[0,1] (the second is thinned)")
        # Its validation rows fit the post-hoc decision rules, so they cannot also be trained on.
        check(not self.train_on_val, "mnist-imbalance keeps its validation split apart; set train_on_val=false")
        check(len(self.Ns) > 0, "Ns must list at least one N")
        positive("Ns", self.Ns)
        check(len(self.strategies) > 0, "strategies must list at least one strategy")
        for name in self.strategies:
            one_of("strategies", name, STRATEGIES)
        check(not any(s in WEIGHTED for s in self.strategies) or len(self.weights) > 0,
              "weights must list at least one factor for loss_weight and resample")
        for expr in self.weights:
            weight_factor(expr, 100, (100, 1))  # syntax check; the values depend on N and the split
        for name in ("seeds", "epochs", "lr", "batch_size", "hidden"):
            positive(name, getattr(self, name))
        check(self.focal_gamma >= 0, f"focal_gamma must be >= 0 (got {self.focal_gamma})")
        positive("tau", self.tau)


def run(cfg: Config, out: Run) -> None:
    device = out.device

    # Data: the two classes, labels 0 (kept whole) and 1 (thinned); all of it on the device once.
    data = load_data(cfg)
    train_images, train_labels = keep_classes(data.train_images, data.train_labels, cfg.classes)
    keep = random_subset(len(train_labels), cfg.train_limit, cfg.seed)
    train_images, train_labels = train_images[keep], train_labels[keep]
    test_images, test_labels = keep_classes(data.test_images, data.test_labels, cfg.classes)
    x, y = to_tensor(train_images, device), torch.as_tensor(train_labels, device=device).long()
    x_test, y_test = to_tensor(test_images, device), torch.as_tensor(test_labels, device=device).long()

    # Every (seed, N): its thinned train / validation / test rows, then one trial per strategy and weight.
    groups, specs, trials = [], [], []
    for seed in range(cfg.seed, cfg.seed + cfg.seeds):
        spec = TrialSpec(hidden=cfg.hidden, activation="relu", optimizer="adam", lr=cfg.lr,
                         batch_size=cfg.batch_size, seed=seed)
        for n in cfg.Ns:
            train, val = (torch.as_tensor(i, device=device) for i in imbalanced_split(train_labels, 1, n, seed,
                                                                                       cfg.val_fraction))
            counts = tuple(torch.bincount(y[train], minlength=2).tolist())
            if counts[1] == 0:
                raise DataError(f"N={n} leaves no training sample of class {cfg.classes[1]}; lower the largest N")
            grid = strategy_grid(cfg.strategies, cfg.weights, n, train, y[train], gamma=cfg.focal_gamma, tau=cfg.tau)
            groups.append({"N": n, "seed": seed, "counts": counts, "train": train, "val": val,
                           "sparse": torch.as_tensor(sparsify(test_labels, 1, n, seed), device=device),
                           "trials": [(s, w, f, len(specs) + i) for i, (s, w, f, _) in enumerate(grid)]})
            specs += [spec] * len(grid)
            trials += [d for *_, d in grid]

    with thread_limit(1, device):  # tiny models: a second thread only spin-waits (see trainlab.device)
        start = time.perf_counter()
        if cfg.stacked:
            results = train_per_trial(specs, trials, x, y, epochs=cfg.epochs, n_classes=2)
        else:
            results = [train_alone(s, x, y, data=t, epochs=cfg.epochs, n_classes=2) for s, t in zip(specs, trials)]
        train_seconds = time.perf_counter() - start
        runs, eval_seconds = _evaluate(cfg, groups, results, x, y, x_test, y_test)
    for group in groups:
        for strategy, expr, factor, i in group["trials"]:
            if results[i].status == "done":  # a diverged model is no model to hand back
                save_checkpoint(out, checkpoint_name(group["N"], strategy, expr, group["seed"]), results[i].model,
                                architecture=results[i].model.architecture(), config=cfg, weight_value=factor)
    for test_set, per_run in runs.items():
        for r in per_run:
            out.log(test_set=test_set, **r)

    # Tables: the study's columns plus the new ones, mean and std over seeds, for both test sets.
    tables = {test_set: _aggregate(per_run) for test_set, per_run in runs.items()}
    columns = KEY + [c for v in VALUES for c in (v, f"{v}_std")] + ["n", "n_undefined"]
    for test_set, title in (("sparsed", "Test set thinned like training (the study's Figures 1, 3, 5)"),
                            ("original", "Original test set (the study's Figures 2, 4, 6)")):
        out.table(f"{test_set}_test", _nan_as_text(tables[test_set], columns), columns=columns, title=title,
                  markdown=mean_std_markdown(tables[test_set], KEY, VALUES + ["n_undefined"]),
                  caption="Mean ± std over seeds; accuracy in percent; F1, AP and MCC of the thinned class, which "
                  "has n_rare_train / n_rare_test samples in training / this test set. n/a: undefined in every run; "
                  "n_undefined counts the runs whose test F1 is undefined (no positive, none predicted).")

    per_run, table = runs["original"], tables["original"]
    n_ref = min(cfg.Ns, key=lambda n: abs(n - 1000))
    best = _best_weights(table, cfg)
    for key, label in (("f1_test", "F1"), ("ap_test", "average precision")):
        lines = {s: [_runs(per_run, n, s, best.get((n, s), "-"), key) for n in cfg.Ns] for s in cfg.strategies}
        out.figure(f"{key[:-5]}_vs_N", _plot(lines, cfg.Ns, "N (the rare class keeps one sample in N)",
                                             f"{label}, original test set", log=True),
                   title=f"{label} on the original test set against N",
                   caption="Mean over seeds, bars one std (cut at 0 and 1); loss_weight and resample at the weight "
                   "with the best mean validation F1 at each N (ties: validation AP). Post-hoc strategies only move "
                   "the baseline's threshold: their AP is the baseline's.")
    if any(s in WEIGHTED for s in cfg.strategies):
        lines = {s: [_runs(per_run, n_ref, s, w, "f1_test") for w in cfg.weights] for s in cfg.strategies
                 if s in WEIGHTED}
        base = _runs(per_run, n_ref, "none", "-", "f1_test") if "none" in cfg.strategies else None
        out.figure("f1_vs_weight", _plot(lines, cfg.weights, "weight factor of the rare class",
                                         f"F1, original test set, N = {n_ref}", baseline=base),
                   title=f"F1 against the weight factor at N = {n_ref}",
                   caption="Mean over seeds, bars one std (cut at 0 and 1); dotted: the baseline's mean.")
    out.text("verdict", _verdict(per_run, best, runs["sparsed"], cfg), title="Verdict")
    n_models, how = len(specs), "as stacked models" if cfg.stacked else "one at a time"
    out.text("training", f"{n_models} models ({len(cfg.Ns)} N x {cfg.seeds} seeds x {n_models // len(groups)} trained "
             f"settings; post-hoc strategies reuse the baseline's model) trained in {train_seconds:.1f} s on {device} "
             f"{how}, evaluated in {eval_seconds:.1f} s. MLP {x.shape[1]} -> {cfg.hidden} ReLU -> 2, Adam lr "
             f"{cfg.lr:g}, batch {cfg.batch_size}, {cfg.epochs} epochs, focal gamma {cfg.focal_gamma:g}, logit "
             f"adjustment tau {cfg.tau:g}. {data.name} ({data.source}), classes {cfg.classes}: "
             f"{' / '.join(map(str, np.bincount(train_labels)))} training and "
             f"{' / '.join(map(str, np.bincount(test_labels)))} test images before thinning, "
             "each class split on its own; "
             "train_time_s is a model's share of its stack's time." + _same_data_note(train_labels, cfg.Ns),
             title="Training details")
    out.text("study_table", STUDY_TABLE, title="The study's numbers")

    medians = {(r["strategy"], r["weight"]): float(np.median(_runs(per_run, n_ref, r["strategy"], r["weight"],
                                                                   "f1_test"))) for r in table if r["N"] == n_ref}
    top = max(medians, key=lambda k: -math.inf if math.isnan(medians[k]) else medians[k])  # NaN: diverged
    out.summary(headline=f"median_f1_test_N{n_ref}", **{f"median_f1_test_N{n_ref}": medians[top]},
                best_at_N=f"{top[0]} {top[1]}".strip(" -"), models=n_models, train_seconds=train_seconds,
                eval_seconds=eval_seconds, diverged=sum(r.status != "done" for r in results),
                undefined_f1_val=sum(math.isnan(r["f1_val"]) for r in per_run),
                undefined_f1_sparse_test=sum(math.isnan(r["f1_test"]) for r in runs["sparsed"]))
    if all(r.status != "done" for r in results):
        out.mark_diverged("every model diverged (NaN/Inf loss or weights)")


def checkpoint_name(n: int, strategy: str, weight: str, seed: int) -> str:
    """``N100_loss_weight_N_over_10_seed0``: the checkpoint of one trained model (weight ``-``: none)."""
    weight = "" if weight == "-" else "_" + weight.replace(" ", "").replace("/", "_over_")
    return f"N{n}_{strategy}{weight}_seed{seed}"


def _evaluate(cfg: Config, groups: list[dict], results: list, x: torch.Tensor, y: torch.Tensor,
              x_test: torch.Tensor, y_test: torch.Tensor) -> tuple[dict[str, list[dict]], float]:
    """Per test set, one row per (seed, N, strategy, weight), from every model's score z1 - z0 on every set
    (post-hoc strategies move the baseline's threshold); and the seconds it took."""
    device = x.device
    start = time.perf_counter()
    test_scores = scores(logits_many([r.model for r in results], x_test))
    runs: dict[str, list[dict]] = {"sparsed": [], "original": []}
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
        decisions += [(name, "-", 1.0, base, posthoc_decision(name, group["counts"], sets["val"][1],
                                                               sets["val"][0][base], cfg.tau))
                      for name in POSTHOC if name in cfg.strategies]
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
            for test_set, name in (("sparsed", "sparse"), ("original", "test")):
                runs[test_set].append({**row, "n_rare_test": int(sets[name][1].sum()), **{
                    ("test_acc" if m == "acc" else f"{m}_test"): measured[name][m][k] for m in METRICS}})
    return runs, time.perf_counter() - start


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


def _best_weights(table: list[dict], cfg: Config) -> dict[tuple[int, str], str]:
    """For loss_weight and resample at each N, the weight with the best mean validation F1 (then AP)."""
    def score(r: dict) -> tuple[float, float]:
        return tuple(-math.inf if math.isnan(r[k]) else r[k] for k in ("f1_val", "ap_val"))
    best = {}
    for r in sorted((r for r in table if r["strategy"] in WEIGHTED), key=score, reverse=True):
        best.setdefault((r["N"], r["strategy"]), r["weight"])  # sorted is stable: ties keep the listed order
    return best


def _runs(per_run: list[dict], n: int, strategy: str, weight: str, key: str) -> np.ndarray:
    runs = sorted((r for r in per_run if (r["N"], r["strategy"], r["weight"]) == (n, strategy, weight)),
                  key=lambda r: r["seed"])
    return np.array([r[key] for r in runs], dtype=float)


def _plot(lines: dict[str, list[np.ndarray]], x: list, xlabel: str, ylabel: str, log: bool = False,
          baseline: np.ndarray | None = None):
    fig, axes = new_figure(size=(6.4, 4.2))
    mean_std_lines(axes[0, 0], lines, x, log=log, clip=(0.0, 1.0))  # F1 and AP live in [0, 1]
    if baseline is not None:
        axes[0, 0].axhline(np.mean(baseline), color="grey", linestyle=":", label="none")
    axes[0, 0].set(xlabel=xlabel, ylabel=ylabel)
    axes[0, 0].legend(fontsize="small")
    return fig


def _verdict(per_run: list[dict], best: dict, sparse_runs: list[dict], cfg: Config) -> str:
    """Which strategies beat the baseline beyond the seed-to-seed spread, and how the study's claims fare."""
    if cfg.seeds < 2 or "none" not in cfg.strategies:
        return "A verdict needs the baseline (strategy none) and at least two seeds."

    def f1(n: int, strategy: str, weight: str | None) -> np.ndarray:  # weight None: the one chosen on validation
        return _runs(per_run, n, strategy, weight or best.get((n, strategy), "-"), "f1_test")

    def compare(ns: list[int], a: tuple[str, str | None], b: tuple[str, str | None]) -> tuple[list, list, float]:
        """Ns where a beats b and where it loses beyond the spread, and the mean gain."""
        out = {n: paired_difference(f1(n, *a), f1(n, *b)) for n in ns}
        return ([n for n, (_, v) in out.items() if v > 0], [n for n, (_, v) in out.items() if v < 0],
                float(np.mean([d for d, _ in out.values()])))

    lines = ["Paired over seeds (same rare samples, split, initial weights and batches per seed), a strategy "
             "beats the baseline at an N when the 95 % t-interval of its F1 minus the baseline's on the original "
             "test set lies above zero, loses when it lies below, and is otherwise within the seed-to-seed spread.",
             ""]
    for strategy in (s for s in cfg.strategies if s != "none"):
        wins, losses, gain = compare(cfg.Ns, (strategy, None), ("none", "-"))
        lines.append(f"- **{strategy}** beats the baseline at N = {_list(wins)}, loses at N = {_list(losses)}, "
                     f"and is within the spread at the other {len(cfg.Ns) - len(wins) - len(losses)} N "
                     f"(mean F1 gain {gain:+.3f} over all N).")
    spread = np.median([np.std(f1(n, s, None), ddof=1) for n in cfg.Ns
                        for s in cfg.strategies])
    median_base = {n: float(np.median(_runs(per_run, n, "none", "-", "f1_test"))) for n in cfg.Ns}
    lines += ["", f"The typical seed-to-seed std of one setting's test F1 is {spread:.3f} (median over N and "
              "strategies): single-run differences of that size, which the study read into its tables, are noise. "
              f"The baseline's median F1 is below 0.9 at N = {_list([n for n in cfg.Ns if median_base[n] < 0.9])} "
              "(median " + ", ".join(f"{median_base[n]:.2f}" for n in cfg.Ns) + f" for N = {_list(cfg.Ns)}); the "
              "study saw it fall apart above N = 1000 (one run).", ""]
    if {"loss_weight", "resample"} <= set(cfg.strategies):
        wins, losses, _ = compare(cfg.Ns, ("resample", None), ("loss_weight", None))
        outcome = ("is within the noise at every N" if not wins and not losses else
                   ("holds at every N" if len(wins) == len(cfg.Ns) else "holds there and is noise elsewhere")
                   if not losses else "is reversed there" if not wins else "holds at some N and is reversed at others")
        lines.append(f"- The study found resampling better and steadier than loss weighting. Here resampling "
                     f"(best weight on validation) beats loss weighting at N = {_list(wins)} and loses at N = "
                     f"{_list(losses)}: the claim {outcome}.")
    large = [n for n in cfg.Ns if n > np.median(cfg.Ns)]
    if "loss_weight" in cfg.strategies and {"n0/n1", "N/10"} <= set(cfg.weights) and large:
        wins, _, _ = compare(large, ("loss_weight", "N/10"), ("loss_weight", "n0/n1"))
        lines.append(f"- The study found the largest loss weight (n0/n1) falling behind N/10 at large N. Here N/10 "
                     f"beats n0/n1 beyond the spread at N = {_list(wins)} of N = {_list(large)}: the claim "
                     + ("holds" if len(wins) == len(large) else "holds in part" if wins else "is noise") + ".")
    empty = sorted({r["N"] for r in sparse_runs if r["n_rare_test"] == 0})
    lines.append(f"- On the thinned test sets, {sum(math.isnan(r['f1_test']) for r in sparse_runs)} of "
                 f"{len(sparse_runs)} runs have an undefined F1 (no positive label and none predicted); the study "
                 "wrote 0 or 1e-6 for these, numbers that were never measured."
                 + (f" The thinned test sets hold no rare sample at N = {_list(empty)}." if empty else ""))
    return "\n".join(lines)


def _same_data_note(train_labels: np.ndarray, ns: list[int]) -> str:
    """Ns that keep the same number of rare samples train on the same data (the kept samples are nested)."""
    rare, by_count = int(np.sum(train_labels == 1)), {}
    for n in ns:
        by_count.setdefault(rare // n, []).append(n)
    same = [f"N = {_list(group)} keep the same {count}" for count, group in by_count.items() if len(group) > 1]
    return (" " + "; ".join(same) + f" rare samples ({rare} // N): for one seed they train on the same data, and "
            "strategies whose weight does not involve N give the same models there.") if same else ""


def _list(values: list) -> str:
    return ", ".join(map(str, values)) if values else "none"
