"""NumPy network study, Q3: the NumPy network's width and learning rate.

The study trained a one-hidden-layer version of its NumPy MLP with 5, 20, 50,
100 and 200 hidden units, then with learning rates 0.1, 0.01 and 0.001, for 100
epochs each (about ten minutes per model), and reported each model's average
training and validation loss with its loss curves. Here every width is trained
at every learning rate (the full grid), so the two effects can be read apart,
and the final-epoch losses are reported next to the study's epoch averages.
``trainlab tune scratch-sweep 'hidden=int(4,256,log)' 'lr=loguniform(1e-3,1)' --metric val_loss
--mode min`` searches the same question one network per trial (``hidden=50`` is ``hiddens=[50]``).

Checkpoints (:mod:`trainlab.checkpoints`): every network of the grid that did not
diverge (all of them: the default grid's 15 networks hold 0.9 M weights, 3.6 MB),
named ``h<width>_lr<learning rate>``, e.g. ``h50_lr0.01``; rebuild one with
``NeuralNetwork.from_state_dict(state, info["architecture"])`` from ``read_checkpoint``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import ClassVar, List

import numpy as np
from tqdm.auto import tqdm

from trainlab.checkpoints import save_checkpoint
from trainlab.config import check, one_of, positive
from trainlab.experiments._data import SplitDataConfig, load_splits
from trainlab.experiments._resume import Checkpointing
from trainlab.report.figures import log_scale_if_any, new_figure
from trainlab.nn.activations import activation_name
from trainlab.runs import Run
from trainlab.scratch.activations import ACTIVATIONS
from trainlab.scratch.init import INITS
from trainlab.scratch.network import NeuralNetwork
from trainlab.train.snapshots import ClockedSlot

NAME = "scratch-sweep"
STUDY = "numpy"
QUESTION = "Q3"
SUMMARY = "NumPy MLP, hidden units x learning rate, average train/validation loss and curves"
RUNTIME = "~75 s"  # bench/runtimes.py, 2026-12-06 (74.1 s), one at a time on the 2-core machine
QUICK = {"dataset": "digits", "epochs": 4, "hiddens": [5, 50], "lrs": [0.1, 0.01]}

STUDY_NOTE = """The study's numbers (MNIST, 100 epochs, one run each; 6-9 s per epoch, 10-15 min per model):

| hidden units | avg train loss | avg val loss |   | learning rate | avg train loss | avg val loss |
|---|---|---|---|---|---|---|
| 5 | 0.664 | 0.788 | | 0.1 | 0.766 | 0.874 |
| 20 | 0.292 | 0.562 | | 0.01 | 0.744 | 0.870 |
| 50 | 0.173 | 0.592 | | 0.001 | 1.229 | 1.298 |
| 100 | 0.118 | 0.523 | | | | |
| 200 | 0.089 | 0.523 | | | | |

The study does not state the activation, the batch size, the learning rate of the
width sweep or the width of the learning-rate sweep. "Average loss" there is the mean
of the per-epoch losses over all epochs, which mixes how fast a model learns with
where it ends; we report it the same way (avg_* columns) and add the last epoch's
losses (final_* columns), which are the ones to compare for over-fitting."""


@dataclass
class Config(Checkpointing, SplitDataConfig):
    RENAMED: ClassVar[dict[str, str]] = {"hidden_units": "hiddens", "learning_rates": "lrs"}
    hiddens: List[int] = field(default_factory=lambda: [5, 20, 50, 100, 200])
    """Widths of the single hidden layer (the study's 5, 20, 50, 100, 200)."""
    lrs: List[float] = field(default_factory=lambda: [0.1, 0.01, 0.001])
    """SGD learning rates (the study's 0.1, 0.01, 0.001); every width is trained at every rate."""
    activation: str = "relu"
    """Hidden activation: relu, sigmoid, tanh or identity (the study does not say which it used)."""
    weight_init: str = "he"
    """Initialisation: zero, random, normal, he or xavier."""
    batch_size: int = 64
    """Minibatch size."""
    epochs: int = 20
    """Passes over the training split per model (the study used 100)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.activation = activation_name(self.activation)  # "linear" still reads
        one_of("activation", self.activation, ACTIVATIONS)
        one_of("weight_init", self.weight_init, INITS)
        check(len(self.hiddens) > 0, "hiddens must list at least one width, e.g. hiddens=[5,50]")
        check(len(self.lrs) > 0, "lrs must list at least one rate, e.g. lrs=[0.1]")
        positive("hiddens", self.hiddens)
        positive("lrs", self.lrs)
        positive("batch_size", self.batch_size)
        positive("epochs", self.epochs)


def run(cfg: Config, out: Run) -> None:
    # Data: flattened float32 pixels in [0, 1], training images split into train and validation.
    data, split = load_splits(cfg, "cpu")  # the NumPy network reads NumPy arrays
    (X, y), (X_val, y_val) = ([t.numpy() for t in split[name]] for name in ("train", "val"))
    out.text(
        "data",
        f"{data.name} ({data.source}): {len(y)} training and {len(y_val)} validation images. "
        f"Network [{X.shape[1]}, h, {data.num_classes}] with {cfg.activation} hidden units, "
        f"{cfg.weight_init} initialisation, SGD with batch {cfg.batch_size} for {cfg.epochs} epochs.",
        title="Data and settings",
    )
    out.text("study", STUDY_NOTE, title="The study's numbers")

    # Train every (width, learning rate) pair; the outer bar counts models, fit() shows epochs.
    # Each network is one training job with its snapshot slot: a stopped run continues there.
    grid = [(h, lr) for h in cfg.hiddens for lr in cfg.lrs]
    snapshots = out.snapshots(cfg.checkpoint_every)
    rows, histories = [], {}
    finished_best = math.inf  # the lowest final validation loss of the models trained so far
    for i, (h, lr) in enumerate(tqdm(grid, desc="models", disable=None)):
        net = NeuralNetwork([X.shape[1], h, data.num_classes], cfg.activation, lr, cfg.weight_init,
                            cfg.batch_size, cfg.epochs, cfg.seed)
        timer = ClockedSlot(snapshots.slot(f"h{h}_lr{lr:g}"), time.perf_counter)

        def report(record: dict) -> None:  # called inside this model's fit: i and finished_best are this model's
            out.log(hidden_units=h, learning_rate=lr, epoch=record["epoch"], train_loss=record["train_loss"],
                    val_loss=record["val_loss"], val_acc=record["val_acc"])
            # A tune's pruner sees the run's metric so far: the lowest validation loss of the grid
            # (one model per trial: that model's loss after each epoch), on one step per epoch of the run.
            out.report_epoch(i * cfg.epochs + record["epoch"], val_loss=min(finished_best, record["val_loss"]))

        net.fit(X, y, X_val, y_val, progress=f"h={h} lr={lr}", snapshot=timer, on_epoch=report)
        seconds = timer.seconds()
        if not net.diverged:  # a diverged network's weights are no model
            save_checkpoint(out, f"h{h}_lr{lr:g}", net, architecture=net.architecture(), config=cfg,
                            status=net.result.status, history=net.result.history)
        hist = net.history
        histories[h, lr] = hist
        if net.result.status == "done":
            finished_best = min(finished_best, hist["val_loss"][-1])
        rows.append(
            {
                "hidden_units": h,
                "learning_rate": lr,
                "avg_train_loss": float(np.mean(hist["train_loss"])),
                "avg_val_loss": float(np.mean(hist["val_loss"])),
                "final_train_loss": hist["train_loss"][-1],
                "final_val_loss": hist["val_loss"][-1],
                "val_acc": hist["val_acc"][-1],
                "fit_s": seconds,
                "status": net.result.status,
            }
        )

    out.table("sweep", rows, title="Every model",
              caption="avg_* = mean of the per-epoch losses (the study's measure); final_* = last epoch. "
              "Training loss is the average over each epoch's minibatches.")
    for key, title in (("avg_train_loss", "Average training loss"), ("avg_val_loss", "Average validation loss")):
        out.table(key, pivot(rows, key, cfg.lrs), title=f"{title} (rows: hidden units, columns: learning rate)")
    out.figure("loss_curves", curves_figure(histories, cfg.hiddens, cfg.lrs),
               title="Training (solid) and validation (dashed) loss against epoch")
    out.figure("final_val_loss", width_figure(rows, cfg.lrs), title="Final validation loss against width")

    best = min((r for r in rows if r["status"] == "done"), key=lambda r: r["final_val_loss"], default=None)
    out.summary(  # val_loss and val_acc: the best model's (one model per trial of a tune: that one's)
        headline="val_loss",
        val_loss=best["final_val_loss"] if best else float("nan"),
        val_acc=best["val_acc"] if best else float("nan"),
        best_hidden_units=best["hidden_units"] if best else None,
        best_learning_rate=best["learning_rate"] if best else None,
        models=len(rows),
        diverged=sum(r["status"] == "diverged" for r in rows),
    )
    if best is None:
        out.mark_diverged("every width and learning rate diverged (NaN/Inf loss)")


def pivot(rows: list[dict], key: str, learning_rates: list[float]) -> list[dict]:
    """One row per width, one column per learning rate."""
    table: dict[int, dict] = {}
    for r in rows:
        table.setdefault(r["hidden_units"], {"hidden_units": r["hidden_units"]})[f"lr={r['learning_rate']:g}"] = r[key]
    return list(table.values())


def curves_figure(histories: dict, widths: list[int], learning_rates: list[float]):
    from matplotlib import colormaps

    fig, axes = new_figure(1, len(learning_rates), size=(3.6, 3.2), sharey=True)
    colours = colormaps["viridis"](np.linspace(0, 0.9, len(widths)))
    for ax, lr in zip(axes[0], learning_rates):
        for colour, h in zip(colours, widths):
            hist = histories[h, lr]
            epochs = np.arange(1, len(hist["train_loss"]) + 1)
            ax.plot(epochs, hist["train_loss"], color=colour, label=f"h={h}")
            ax.plot(epochs, hist["val_loss"], color=colour, linestyle="--")
        ax.set(xlabel="epoch", title=f"lr = {lr:g}", yscale=log_scale_if_any([histories[h, lr]["val_loss"] for h in widths]))
    axes[0, 0].set_ylabel("cross-entropy")
    axes[0, 0].legend(fontsize=7)
    return fig


def width_figure(rows: list[dict], learning_rates: list[float]):
    fig, axes = new_figure(1, 1)
    ax = axes[0, 0]
    for lr in learning_rates:
        pts = sorted((r["hidden_units"], r["final_val_loss"], r["final_train_loss"]) for r in rows if r["learning_rate"] == lr)
        line, = ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"val, lr={lr:g}")
        ax.plot([p[0] for p in pts], [p[2] for p in pts], marker=".", linestyle=":", color=line.get_color())
    ax.set(xscale="log", yscale=log_scale_if_any([[r["final_val_loss"] for r in rows]]), xlabel="hidden units",
           ylabel="final loss (dotted: train)")
    ax.legend(fontsize=7)
    return fig
