"""MNIST MLP study, Q1: digits 0 vs 1 with a one-hidden-layer MLP at several batch sizes.

The study trained the same small MLP (784 -> 5 sigmoid -> 2) with batch sizes
2, 16, 128 and 1024 and reported training time and train/validation/test
accuracy. Here every batch size can be repeated over several seeds so the
differences come with error bars.

Checkpoints (:mod:`trainlab.checkpoints`): every trained model that did not diverge,
named ``bs<batch size>_seed<seed>`` (``bs16_seed0``), also when a sweep trains its trials
as one stack (each member is saved as the plain ``MLP`` it equals); rebuild one with
``MLP(**info["architecture"])`` and ``load_checkpoint``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

import numpy as np
from torch import nn

from trainlab.checkpoints import save_checkpoint
from trainlab.config import check, one_of, positive
from trainlab.data import describe_splits
from trainlab.device import global_seed, torch_generator
from trainlab.experiments._data import SplitDataConfig, load_splits
from trainlab.experiments._resume import Checkpointing
from trainlab.nn.mlp import ACTIVATIONS, MLP
from trainlab.report.figures import new_figure
from trainlab.report.tables import mean_std, with_std
from trainlab.runs import Run
from trainlab.train.stack import TrialSpec, train_trials
from trainlab.train.loop import OPTIMIZERS, check_lr, evaluate, fit, make_optimizer
from trainlab.train.result import TrainResult, combined_status

NAME = "mnist-binary"
STUDY = "mlp"
QUESTION = "Q1"
SUMMARY = "MLP on digits 0 vs 1, time and accuracy against batch size"
RUNTIME = "~14 s"  # bench/runtimes.py, 2026-12-06 (13.6 s), one at a time on the 2-core machine
QUICK = {"dataset": "digits", "epochs": 5, "lr": 0.01, "train_limit": 1000}

STUDY_TABLE = """The study's Table 1 (one run each, MNIST, Apple M1 CPU):

| batch_size | train_time_s | train_acc | val_acc | test_acc |
|---|---|---|---|---|
| 2 | 16.72 | 99.91 | 99.68 | 99.67 |
| 16 | 5.80 | 99.96 | 99.84 | 99.95 |
| 128 | 4.36 | 99.89 | 99.88 | 99.91 |
| 1024 | 3.94 | 99.60 | 99.53 | 99.57 |

The study does not state its optimizer, learning rate or epochs for this question;
our defaults (Adam, lr 1e-3, 5 epochs) are stated in the config below."""


@dataclass
class Config(Checkpointing, SplitDataConfig):
    classes: List[int] = field(default_factory=lambda: [0, 1])
    """The two (or more) classes to keep; labels become their index in this list."""
    hidden: int = 5
    """Width of the single hidden layer."""
    activation: str = "sigmoid"
    """Hidden activation: sigmoid, relu, tanh or identity."""
    optimizer: str = "adam"
    """adam or sgd."""
    lr: float = 1e-3
    """Learning rate."""
    epochs: int = 5
    """Passes over the training split for every batch size."""
    batch_sizes: List[int] = field(default_factory=lambda: [2, 16, 128, 1024])
    """Batch sizes to compare (the study's 2, 16, 128, 1024)."""
    seeds: int = 1
    """Repeats per batch size with seeds seed, seed+1, ...; more than 1 adds std columns."""

    def __post_init__(self) -> None:
        super().__post_init__()
        one_of("activation", self.activation, ACTIVATIONS)
        one_of("optimizer", self.optimizer, OPTIMIZERS)
        check(len(self.classes) >= 2, "classes needs at least two classes, e.g. classes=[0,1]")
        check(len(set(self.classes)) == len(self.classes), "classes must not repeat")
        positive("hidden", self.hidden)
        check_lr(self.optimizer, self.lr)
        positive("epochs", self.epochs)
        positive("seeds", self.seeds)
        check(len(self.batch_sizes) > 0, "batch_sizes must list at least one batch size")
        positive("batch_sizes", self.batch_sizes)


BATCHABLE = ("hidden", "activation", "optimizer", "lr")
"""Fields a sweep may vary inside one batch: trials that differ only in these train as stacks (run_batch)."""


def run(cfg: Config, out: Run) -> None:
    device = out.device

    # Data: keep the chosen classes, split the training images 80/20 with the run's seed.
    data, split = load_splits(cfg, device, classes=cfg.classes)
    in_dim, n_classes = split["train"][0].shape[1], len(cfg.classes)
    loss_fn = nn.CrossEntropyLoss()
    snapshots = out.snapshots(cfg.checkpoint_every)
    trained = []
    for repeat in range(cfg.seeds):
        seed = cfg.seed + repeat
        for position, batch_size in enumerate(cfg.batch_sizes):
            # Epochs counted over the whole run, so a tune's pruner compares trials at the same
            # (repeat, batch size, epoch): the step means the same training in every trial.
            first_step = (repeat * len(cfg.batch_sizes) + position) * cfg.epochs
            with global_seed(seed):  # same initial weights for every batch size of a repeat
                model = MLP(in_dim, cfg.hidden, n_classes, cfg.activation).to(device)
            optimizer = make_optimizer(cfg.optimizer, model.parameters(), cfg.lr)

            def validate(epoch: int, first_step: int = first_step) -> dict[str, float]:
                values = {"val_acc": evaluate(model, *split["val"])["acc"]}
                out.report_epoch(first_step + epoch, **values)  # a tune may stop the run here (Pruned)
                return values

            result = fit(
                model, *split["train"],
                optimizer=optimizer, loss_fn=loss_fn, epochs=cfg.epochs, batch_size=batch_size,
                generator=torch_generator(seed), on_epoch=validate, desc=f"batch {batch_size}",
                snapshot=snapshots.slot(f"bs{batch_size}_seed{seed}"),
            )
            trained.append((batch_size, seed, model, result))
    report(cfg, out, data, split, trained)


def run_batch(cfgs: list[Config], runs: list[Run]) -> None:
    """Sweep trials that differ only in ``BATCHABLE`` fields, trained together: every (batch size, seed)
    of every trial in one stacked model (:mod:`trainlab.train.stack`), each trial reported as ``run``
    would report it (the same tables up to float rounding; its time is its share of the stack's)."""
    cfg = cfgs[0]
    data, split = load_splits(cfg, runs[0].device, classes=cfg.classes)
    specs = [TrialSpec(hidden=c.hidden, activation=c.activation, optimizer=c.optimizer, lr=c.lr,
                       batch_size=batch_size, seed=c.seed + repeat)
             for c in cfgs for repeat in range(c.seeds) for batch_size in c.batch_sizes]
    results = iter(train_trials(specs, *split["train"], epochs=cfg.epochs, n_classes=len(cfg.classes),
                                evals={"val": split["val"]}, eval_every_epoch=True))
    for c, out in zip(cfgs, runs, strict=True):
        trained = [(r.spec.batch_size, r.spec.seed, r.model, r)
                   for r in (next(results) for _ in range(c.seeds * len(c.batch_sizes)))]
        report(c, out, data, split, trained)


def report(cfg: Config, out, data, split, trained: list[tuple[int, int, MLP, TrainResult]]) -> None:
    """The tables, figure and summary of one trial from its trained (batch size, seed, model, result)."""
    out.text("data", f"{describe_splits(data, split)}; classes {cfg.classes}.", title="Data")
    rows = []
    for batch_size, seed, model, result in trained:
        for record in result.history:
            out.log(batch_size=batch_size, seed=seed, **record)
        if result.status == "done":  # a diverged model is no model to hand back
            save_checkpoint(out, f"bs{batch_size}_seed{seed}", model, architecture=model.architecture(), config=cfg)
        # a diverged model's accuracy is no result (a frozen or NaN model still predicts some class)
        accs = {f"{name}_acc": evaluate(model, *split[name])["acc"] if result.status == "done" else float("nan")
                for name in split}
        rows.append({"batch_size": batch_size, "seed": seed, "train_time_s": result.seconds,
                     **accs, "status": result.status})

    out.text("model", str(trained[-1][2]), title="Model (print(model))", code=True)
    out.text(
        "training",
        f"Optimizer {cfg.optimizer}, lr {cfg.lr}, {cfg.epochs} epochs, cross-entropy loss, "
        f"hidden width {cfg.hidden} ({cfg.activation}). Training time counts the training loop only "
        "(validation after each epoch is excluded). Accuracies are in percent.",
        title="Training details",
    )
    values = ["train_time_s", "train_acc", "val_acc", "test_acc"]
    table = mean_std(rows, by=["batch_size"], values=values)
    for rec in table:  # diverged when any seed did (its means are then NaN)
        rec["status"] = combined_status(r["status"] for r in rows if r["batch_size"] == rec["batch_size"])
    columns = ["batch_size"] + with_std(table, values) + ["status"]
    columns += ["n"] if "n" in table[0] else []
    out.table("batch_sizes", table, columns=columns, title="Batch size against time and accuracy",
              caption="Accuracy in percent; time in seconds of training on " + str(out.device) + ".")
    if cfg.seeds > 1:
        out.table("batch_sizes_per_seed", rows, title="Every run")
    out.text("study_table", STUDY_TABLE, title="The study's numbers")
    out.figure("batch_sizes", _plot(table), title="Accuracy and training time against batch size")

    finished = [r for r in table if np.isfinite(r["val_acc"])]
    best = max(finished, key=lambda r: r["val_acc"], default=None)
    out.summary(
        headline="test_acc",
        test_acc=best["test_acc"] if best else float("nan"),
        # The best batch size's validation accuracy: what picks best_batch_size, and a tune's objective.
        val_acc=best["val_acc"] if best else float("nan"),
        best_batch_size=best["batch_size"] if best else None,
        diverged=sum(r["status"] == "diverged" for r in table),  # batch sizes whose training diverged (the table names them)
        **{f"test_acc_bs{r['batch_size']}": r["test_acc"] for r in table},
        **{f"train_time_s_bs{r['batch_size']}": r["train_time_s"] for r in table},
    )
    if best is None:
        out.mark_diverged(f"training diverged (NaN/Inf loss or weights) at every batch size; lr {cfg.lr}")


def _plot(table: list[dict]) -> "object":
    fig, axes = new_figure(ncols=2)
    sizes = np.array([r["batch_size"] for r in table])
    for split_name in ("train", "val", "test"):
        mean = np.array([r[f"{split_name}_acc"] for r in table])
        std = np.array([r.get(f"{split_name}_acc_std", 0.0) for r in table])
        axes[0, 0].errorbar(sizes, mean, yerr=np.nan_to_num(std), marker="o", capsize=3, label=split_name)
    axes[0, 0].set(xscale="log", xlabel="batch size", ylabel="accuracy (%)", title="Accuracy")
    axes[0, 0].legend()
    time_mean = np.array([r["train_time_s"] for r in table])
    time_std = np.array([r.get("train_time_s_std", 0.0) for r in table])
    axes[0, 1].errorbar(sizes, time_mean, yerr=np.nan_to_num(time_std), marker="o", capsize=3, color="C3")
    axes[0, 1].set(xscale="log", yscale="log", xlabel="batch size", ylabel="seconds", title="Training time")
    return fig
