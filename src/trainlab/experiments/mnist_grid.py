"""MNIST MLP study, Q2 (its Tables 2 and 3): a grid over a one-hidden-layer MLP on all ten digits.

The study trained ``784 -> hidden -> 10`` with a sigmoid (Table 2) and a ReLU
(Table 3) hidden layer for every batch size {64, 128, 1024}, optimizer
{Adam lr 1e-3, SGD lr 1e-2} and hidden width {4, 32, 64, 128}, one model after
another (~15 min per activation). Here the trials that share a batch size are
trained together as one stacked model (``trainlab.train.stack``), each with its
own width, activation, optimizer and learning rate; ``stacked=false`` trains
them one at a time and gives the same numbers up to float rounding.

Checkpoints (:mod:`trainlab.checkpoints`): every trial that did not diverge (the default
grid's 48 models hold 2.2 M weights, 8.7 MB), named
``<activation>_bs<batch size>_<optimizer>_lr<lr>_h<width>_seed<seed>``
(``relu_bs64_adam_lr0.001_h32_seed0``); rebuild one with ``MLP(**info["architecture"])``
and ``load_checkpoint``.

Tuning (``trainlab tune mnist-grid ... --metric val_acc``): every trial's validation accuracy is
measured after each epoch and reported per trial of the grid (``Run.report_epoch(members=)``),
so a tune prunes the grid's trials one by one: a trial the pruner gives up on stops training
(its row says ``pruned`` and the epochs it reached) while the others go on. The run's
``val_acc`` (a tune's objective) is its best row's validation accuracy; a run whose every trial
was pruned ends ``pruned``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, List

import numpy as np
import torch

from trainlab.checkpoints import save_checkpoint
from trainlab.config import check, one_of, positive
from trainlab.data import describe_splits
from trainlab.experiments._data import SplitDataConfig, load_splits
from trainlab.nn.mlp import MLP
from trainlab.report.figures import new_figure
from trainlab.report.tables import mean_std, rows_to_markdown, with_std
from trainlab.nn.activations import ACTIVATION_NAMES
from trainlab.runs import Pruned, Run
from trainlab.train.stack import TrialSpec, train_trials
from trainlab.train.loop import OPTIMIZERS, check_lr
from trainlab.train.result import combined_status

NAME = "mnist-grid"
STUDY = "mlp"
QUESTION = "Q2"
SUMMARY = "MLP grid (activation x batch size x optimizer x width) on 10 digits, trained as stacks"
RUNTIME = "~32 s"  # bench/runtimes.py, 2026-12-06 (31.5 s), one at a time on the 2-core machine
QUICK = {"dataset": "digits", "epochs": 20, "hiddens": [4, 32], "batch_sizes": [64, 1024]}

STUDY_LRS = {"adam": 1e-3, "sgd": 1e-2}
"""The study's learning rate of each optimizer (what ``lrs=[]`` gives)."""
KEY = ["activation", "batch_size", "optimizer", "lr", "hidden"]
VALUES = ["train_time_s", "train_acc", "val_acc", "test_acc", "epochs"]

STUDY_TABLE = """The study's best and worst rows (one run each, MNIST, Apple M1 CPU, epochs not stated):

| activation | batch_size | optimizer | lr | hidden | train_acc | val_acc | test_acc | |
|---|---|---|---|---|---|---|---|---|
| sigmoid | 64 | adam | 0.001 | 128 | 98.10 | 96.59 | 96.87 | best adam |
| sigmoid | 64 | sgd | 0.01 | 128 | 90.04 | 89.85 | 90.69 | best sgd |
| sigmoid | 1024 | sgd | 0.01 | 4 | 20.58 | 22.00 | 23.66 | worst |
| relu | 64 | adam | 0.001 | 64 | 97.19 | 96.53 | 96.80 | best adam |
| relu | 64 | sgd | 0.01 | 128 | 93.89 | 93.61 | 94.10 | best sgd |
| relu | 64 | adam | 0.001 | 4 | 33.36 | 33.99 | 34.13 | worst |

Each of its configurations took 17-25 s of training, about 15 minutes per activation."""


@dataclass
class Config(SplitDataConfig):
    RENAMED: ClassVar[dict[str, str]] = {"batched": "stacked"}
    activations: List[str] = field(default_factory=lambda: ["sigmoid", "relu"])
    """Hidden activations, one table panel each (the study's Tables 2 and 3)."""
    batch_sizes: List[int] = field(default_factory=lambda: [64, 128, 1024])
    """Batch sizes of the grid."""
    optimizers: List[str] = field(default_factory=lambda: ["adam", "sgd"])
    """Optimizers of the grid (adam, sgd)."""
    lrs: List[float] = field(default_factory=lambda: [1e-3, 1e-2])
    """Learning rate of each optimizer, in the same order (the study's Adam 1e-3, SGD 1e-2); an empty
    list gives each optimizer the study's (so a tune may search ``optimizers=choice([adam],[sgd])``)."""
    hiddens: List[int] = field(default_factory=lambda: [4, 32, 64, 128])
    """Hidden-layer widths of the grid."""
    epochs: int = 5
    """Passes over the training split for every trial (the study does not state its number)."""
    seeds: int = 1
    """Repeats of the whole grid with seeds seed, seed+1, ...; more than 1 adds std columns."""
    stacked: bool = True
    """Train the trials that share a batch size as one stacked model; false trains one at a time."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(len(self.activations) > 0, "activations must list at least one activation")
        for name in self.activations:
            one_of("activations", name, ACTIVATION_NAMES)
        for name in self.optimizers:
            one_of("optimizers", name, OPTIMIZERS)
        check(len(self.optimizers) > 0, "optimizers must list at least one optimizer")
        check(len(self.lrs) in (0, len(self.optimizers)),
              "lrs needs one learning rate per optimizer, e.g. lrs=[1e-3,1e-2], or [] for the study's")
        for optimizer, lr in self.optimizer_lrs():
            check_lr(optimizer, lr, "lrs")

    def optimizer_lrs(self) -> list[tuple[str, float]]:
        """(optimizer, learning rate) pairs of the grid."""
        return list(zip(self.optimizers, self.lrs or [STUDY_LRS[name] for name in self.optimizers]))
        check(len(self.batch_sizes) > 0, "batch_sizes must list at least one batch size")
        positive("batch_sizes", self.batch_sizes)
        check(len(self.hiddens) > 0, "hiddens must list at least one width")
        positive("hiddens", self.hiddens)
        positive("epochs", self.epochs)
        positive("seeds", self.seeds)


def run(cfg: Config, out: Run) -> None:
    device = out.device

    # Data: all ten classes, training images split 80/20 with the run's seed.
    data, split = load_splits(cfg, device)
    out.text("data", f"{describe_splits(data, split)}, {data.num_classes} classes.", title="Data")

    # The grid, one trial per (seed, activation, batch size, optimizer, width).
    specs = [
        TrialSpec(hidden=h, activation=act, optimizer=opt, lr=lr, batch_size=bs, seed=cfg.seed + r)
        for r in range(cfg.seeds) for act in cfg.activations for bs in cfg.batch_sizes
        for opt, lr in cfg.optimizer_lrs() for h in cfg.hiddens
    ]
    names = [checkpoint_name(spec) for spec in specs]

    def watch(epoch: int, records: dict[int, dict[str, float]]) -> list[int]:
        """Report every trial's validation accuracy; a tune may give up on some (they stop here)."""
        given_up = out.report_epoch(epoch, members={names[i]: {"val_acc": r["val_acc"]} for i, r in records.items()})
        return [i for i in records if names[i] in given_up]

    results = train_trials(specs, *split["train"], epochs=cfg.epochs, n_classes=data.num_classes,
                           evals=split, eval_every_epoch=["val"], stacked=cfg.stacked, on_epoch=watch)

    rows = []
    for spec, result in zip(specs, results):
        row = {"activation": spec.activation, "batch_size": spec.batch_size, "optimizer": spec.optimizer,
               "lr": spec.lr, "hidden": spec.hidden, "seed": spec.seed, "train_time_s": result.seconds,
               **result.metrics, "epochs": len(result.history), "status": result.status}
        rows.append(row)
        out.log(**row, history=result.history)
        if result.status == "done":  # a diverged model is no model to hand back
            save_checkpoint(out, checkpoint_name(spec), result.model, architecture=result.model.architecture(),
                            config=cfg)

    # Tables: the study's columns; the Markdown marks the best and worst rows as its colours did.
    table = _summarise(rows)
    columns = KEY + with_std(table, VALUES) + ["status"]
    columns += ["n"] if "n" in table[0] else []
    marks = _marks(table)
    out.table("grid", table, columns=columns, title="Grid: activation x batch size x optimizer x width",
              caption="Accuracy in percent. Marks: best row per activation and optimizer by validation "
                      "accuracy (bold), and the worst row per activation and optimizer.",
              markdown=rows_to_markdown(table, columns, bold=lambda i, r: marks.get(i, "").startswith("best"),
                                        marks=marks),
              row_classes={i: mark.split()[0] for i, mark in marks.items()})
    out.figure("test_acc_vs_hidden", _plot(table, cfg), title="Test accuracy against hidden width",
               caption="One line per optimizer (line style) and batch size (colour), one panel per activation.")
    out.text("model", str(MLP(split["train"][0].shape[1], cfg.hiddens[-1], data.num_classes, cfg.activations[0])),
             title="Model (print(model), widest trial)", code=True)
    out.text("training", _training_note(cfg, results, device), title="Training details")
    out.text("study_table", STUDY_TABLE, title="The study's numbers")

    best = {}
    for i, mark in marks.items():
        if mark.startswith("best"):
            r = table[i]
            best[f"test_acc_{r['activation']}_{r['optimizer']}"] = r["test_acc"]
    headline = max(best.values(), default=float("nan"))
    # The best row by validation accuracy: a tune's objective (its test number stays in test_acc_*).
    val_acc = max((r["val_acc"] for r in table if np.isfinite(r["val_acc"])), default=float("nan"))
    out.summary(headline="test_acc", test_acc=headline, val_acc=val_acc, **best,
                trials=len(specs), diverged=sum(r["status"] == "diverged" for r in rows),
                pruned=sum(r["status"] == "pruned" for r in rows),
                train_time_s=sum(r.stack_seconds / r.stack_size for r in results))
    if all(r["status"] == "pruned" for r in rows):  # a tune gave up on every trial: the run is pruned
        raise Pruned(max(r["epochs"] for r in rows))
    if not np.isfinite(headline):
        out.mark_diverged("every trial of the grid diverged (NaN/Inf loss or weights)")


def _summarise(rows: list[dict]) -> list[dict]:
    """One row per configuration: means over seeds (std columns with several seeds) and a status,
    ``diverged`` when any seed diverged (its means are then NaN; metrics.jsonl has every trial)."""
    table = mean_std(rows, by=KEY, values=VALUES)
    for rec in table:
        members = [r for r in rows if all(r[k] == rec[k] for k in KEY)]
        rec["status"] = combined_status(r["status"] for r in members)
    return table


def _marks(table: list[dict]) -> dict[int, str]:
    """Best and worst row (by validation accuracy) for each activation and optimizer."""
    marks: dict[int, str] = {}
    for act in dict.fromkeys(r["activation"] for r in table):
        for opt in dict.fromkeys(r["optimizer"] for r in table):
            members = [i for i, r in enumerate(table) if r["activation"] == act and r["optimizer"] == opt
                       and np.isfinite(r["val_acc"])]
            if not members:
                continue
            best = max(members, key=lambda i: table[i]["val_acc"])
            worst = min(members, key=lambda i: table[i]["val_acc"])
            marks[best] = f"best {opt}"
            if worst != best:
                marks[worst] = f"worst {opt}"
    return marks


def _training_note(cfg: Config, results: list, device: torch.device) -> str:
    how = ("Trials sharing a batch size and seed were trained together as one stacked model; a trial's "
           "train_time_s is its share of the stack's time, in proportion to its hidden width "
           f"({len({(r.spec.batch_size, r.spec.seed) for r in results})} stacks, "
           f"{sum(r.stack_seconds / r.stack_size for r in results):.1f} s of training in all)."
           if cfg.stacked else "Trials were trained one at a time; train_time_s is each trial's own training time.")
    return (f"Cross-entropy loss, {cfg.epochs} epochs per trial, "
            + ", ".join(f"{o} lr {lr:g}" for o, lr in cfg.optimizer_lrs())
            + f" (Adam with torch's default betas 0.9/0.999, plain SGD), on {device}. "
            "Initial weights are nn.Linear's, seeded per trial; batches are a seeded permutation per epoch, "
            "the same for every trial of a batch size. The best row is chosen by validation accuracy, "
            "not test accuracy, so the test column stays an unbiased estimate. Validation accuracy is also "
            "measured after every epoch (each trial's history in metrics.jsonl); epochs counts the epochs a "
            "trial trained (fewer for a trial a tune pruned). " + how)


def checkpoint_name(spec: TrialSpec) -> str:
    """``relu_bs64_adam_lr0.001_h32_seed0``: the checkpoint of one trial of the grid."""
    return f"{spec.activation}_bs{spec.batch_size}_{spec.optimizer}_lr{spec.lr:g}_h{spec.hidden}_seed{spec.seed}"


def _plot(table: list[dict], cfg: Config):
    fig, axes = new_figure(ncols=len(cfg.activations), sharey=True)
    styles = {opt: style for opt, style in zip(cfg.optimizers, ["-", "--", ":", "-."] * 4)}
    for ax, act in zip(axes[0], cfg.activations):
        for j, bs in enumerate(cfg.batch_sizes):
            for opt in cfg.optimizers:
                line = sorted((r for r in table if (r["activation"], r["batch_size"], r["optimizer"]) == (act, bs, opt)),
                              key=lambda r: r["hidden"])
                hidden = [r["hidden"] for r in line]
                acc = np.array([r["test_acc"] for r in line])
                std = np.nan_to_num(np.array([r.get("test_acc_std", 0.0) for r in line]))
                ax.errorbar(hidden, acc, yerr=std, marker="o", capsize=3, color=f"C{j}", linestyle=styles[opt],
                            label=f"{opt}, batch {bs}")
        ax.set(xscale="log", xlabel="hidden width", title=act)
        ax.set_xticks(cfg.hiddens, [str(h) for h in cfg.hiddens])
        ax.set_xticks([], minor=True)  # the log axis' minor labels (3x10^1) would overprint the widths
    axes[0, 0].set_ylabel("test accuracy (%)")
    axes[0, -1].legend(fontsize="small")
    return fig
