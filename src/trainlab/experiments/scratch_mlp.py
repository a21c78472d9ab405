"""NumPy network study, Q2: the NumPy network with four hidden activations, against scikit-learn.

The study trained its from-scratch MLP [784, 256, 128, 64, 10] with learning rate
0.1 for 100 epochs once per hidden activation (ReLU, sigmoid, tanh, linear),
plotted training and test error against epoch, drew a t-SNE map of the last
hidden layer of the best model, and trained scikit-learn's MLPClassifier with
the same settings for comparison. Here both networks get the same data, batch
size, learning rate, epochs, initialisation family and no weight decay, and both
are timed.

Checkpoints (:mod:`trainlab.checkpoints`): one per activation that did not diverge,
named by the activation (``relu``, ``sigmoid``, ``tanh``, ``identity``); rebuild one with
``state, info = read_checkpoint(run_dir, "relu")`` and
``NeuralNetwork.from_state_dict(state, info["architecture"])``.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import List

import numpy as np

from trainlab.analysis.embedding import tsne
from trainlab.checkpoints import save_checkpoint
from trainlab.config import check, one_of, positive
from trainlab.data import describe_splits
from trainlab.experiments._data import SplitDataConfig, load_splits
from trainlab.experiments._resume import Checkpointing
from trainlab.report.figures import new_figure
from trainlab.nn.activations import activation_name
from trainlab.runs import Pruned, Run
from trainlab.scratch.activations import ACTIVATIONS
from trainlab.scratch.init import INITS
from trainlab.scratch.network import NeuralNetwork
from trainlab.train.result import StopTraining, training_flops
from trainlab.train.snapshots import ClockedSlot, SnapshotSlot, pack, unpack
from trainlab.workers import run_independent

NAME = "scratch-mlp"
STUDY = "numpy"
QUESTION = "Q2"
SUMMARY = "NumPy MLP with relu/sigmoid/tanh/identity vs scikit-learn, error curves, t-SNE"
RUNTIME = "~90 s"  # bench/runtimes.py, 2026-12-06 (92.3 s; 90.1 s with its t-SNE on the idle cores), one at a time
QUICK = {"dataset": "digits", "epochs": 8, "tsne_points": 200}

SKLEARN_NAMES = {"relu": "relu", "sigmoid": "logistic", "tanh": "tanh", "identity": "identity"}

STUDY_NOTE = """The study's numbers (MNIST, 100 epochs, one run each, hardware not stated):
scratch test accuracy relu 0.9388, sigmoid 0.9036, tanh 0.9100, linear 0.8163;
scikit-learn relu 0.9767, logistic 0.9644, tanh 0.9667, and "identity 0.9767" —
that last figure is a copy-paste slip in the study (`s4 = clf.score(...)` scores the
ReLU classifier again), so the study reports no figure for scikit-learn's linear network.
The study says only that scikit-learn ran "with the same parameters"; MLPClassifier's
defaults would add weight decay (alpha=1e-4), Adam instead of SGD and its own initialisation.
Here both networks use plain SGD, Glorot/Xavier uniform weights and no weight decay, so the
table compares implementations, not settings."""

TUNING = """Validation and tuning: the study trained on all training images and drew its error curve on the
test set; here ``val_fraction`` of the training images (default 0.2, the other studies' 80/20 split)
is held out, both networks train on the rest, and the curve and the run's ``val_acc`` (the best
activation's final validation accuracy, a tune's objective) come from that held-out part; the test
set is scored once, after training. Each activation's network reports its validation accuracy after
every epoch, so a tune prunes the activations one by one."""


@dataclass
class Config(Checkpointing, SplitDataConfig):
    hidden: List[int] = field(default_factory=lambda: [256, 128, 64])
    """Hidden layer widths; the input size comes from the data and the output is one unit per class."""
    activations: List[str] = field(default_factory=lambda: ["relu", "sigmoid", "tanh", "identity"])
    """Hidden activations to compare (relu, sigmoid, tanh, identity; the study's "linear" reads as identity)."""
    lr: float = 0.1
    """SGD learning rate for both networks (the study's 0.1)."""
    batch_size: int = 64
    """Minibatch size for both networks."""
    epochs: int = 20
    """Passes over the training set (the study used 100; 20 keeps the default run at minutes)."""
    weight_init: str = "xavier"
    """NumPy network initialisation: zero, random, normal, he or xavier (xavier = scikit-learn's)."""
    sklearn: bool = True
    """Also train scikit-learn's MLPClassifier with the same settings."""
    tsne_points: int = 2000
    """Test images embedded by t-SNE (openTSNE, one thread); 0 skips the plot."""

    def __post_init__(self) -> None:
        super().__post_init__()
        one_of("weight_init", self.weight_init, INITS)
        check(len(self.activations) > 0, "activations must list at least one of relu, sigmoid, tanh, identity")
        self.activations = [activation_name(name) for name in self.activations]  # "linear" still reads
        for name in self.activations:
            one_of("activations", name, ACTIVATIONS)
        check(len(self.hidden) > 0, "hidden must list at least one layer width, e.g. hidden=[256,128,64]")
        positive("hidden", self.hidden)
        positive("lr", self.lr)
        positive("batch_size", self.batch_size)
        positive("epochs", self.epochs)
        check(self.tsne_points == 0 or self.tsne_points >= 20, "tsne_points must be 0 (skip) or >= 20")


def run(cfg: Config, out: Run) -> None:
    # Data: flattened float32 pixels in [0, 1]; the training images split 80/20 (train / validation).
    data, split = load_splits(cfg, "cpu")
    (X_train, y_train), (X_val, y_val), (X_test, y_test) = (
        (x.numpy(), y.numpy()) for x, y in (split["train"], split["val"], split["test"]))
    sizes = [X_train.shape[1], *cfg.hidden, data.num_classes]
    out.text(
        "data",
        f"{describe_splits(data, split)}; network {sizes}, lr {cfg.lr}, batch {cfg.batch_size}, "
        f"{cfg.epochs} epochs, {cfg.weight_init} initialisation. The validation images are evaluated "
        "after every epoch to draw the error curve (they are never used for training).",
        title="Data and settings",
    )
    out.text("study", STUDY_NOTE, title="The study's numbers")
    out.text("tuning", TUNING, title="Validation and tuning")

    # The fits (NumPy and scikit-learn, per activation) are independent single-threaded jobs:
    # they run side by side on the cores workers.run_independent gives, each on one BLAS thread,
    # each with its snapshot slot (a stopped run continues the NumPy fits from their last epoch).
    snapshots = out.snapshots(cfg.checkpoint_every)
    kinds = ("scratch", "sklearn") if cfg.sklearn else ("scratch",)
    fits = [(kind, activation) for activation in cfg.activations for kind in kinds]
    flops = training_flops(sum(a * b for a, b in zip(sizes, sizes[1:])), len(y_train) * cfg.epochs)
    ran_alone: list[bool] = []

    def fit_one(job: tuple[str, str], alone: bool):
        kind, activation = job
        ran_alone.append(alone)
        slot = snapshots.slot(f"{kind}_{activation}")
        if kind == "sklearn":
            return fit_sklearn_once(cfg, activation, X_train, y_train, X_test, y_test, slot)
        net = NeuralNetwork(sizes, activation, cfg.lr, cfg.weight_init, cfg.batch_size, cfg.epochs, cfg.seed)
        timer = ClockedSlot(slot, time.perf_counter)

        def watch(record: dict[str, float]) -> None:
            """Report this network's validation accuracy; a tune may give up on it (pruned here)."""
            if out.report_epoch(record["epoch"], members={activation: {"val_acc": record["val_acc"]}}):
                raise StopTraining({})

        net.fit(X_train, y_train, X_val, y_val, progress=f"scratch {activation}" if alone else None,
                snapshot=timer, on_epoch=watch)
        return net, timer.seconds()

    from sklearn.exceptions import ConvergenceWarning  # here: scikit-learn takes seconds to import

    # max_iter is reached on purpose. Set here, not in the workers: warning filters are
    # process-wide and catch_warnings is not thread-safe.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        results = dict(zip(fits, run_independent(
            fit_one, fits, costs=[flops] * len(fits), device="cpu", tell_alone=True,
            step_flops=flops / max(1, len(y_train) // cfg.batch_size) / cfg.epochs)))
    side_by_side = not all(ran_alone)

    rows, nets = [], {}
    for activation in cfg.activations:
        net, scratch_s = results[("scratch", activation)]
        nets[activation] = net
        if net.result.status == "done":  # a diverged or pruned network's weights are no model
            save_checkpoint(out, activation, net, architecture=net.architecture(), config=cfg,
                            status=net.result.status, history=net.result.history)
        for epoch, (tl, ta, vl, va) in enumerate(zip(*(net.history[k] for k in ("train_loss", "train_acc", "val_loss", "val_acc"))), 1):
            out.log(activation=activation, epoch=epoch, train_loss=tl, train_acc=ta, val_loss=vl, val_acc=va)
        # scikit-learn with the same architecture and plain SGD (not run: no status)
        sk_acc, sk_s, sk_status = results.get(("sklearn", activation), (float("nan"), float("nan"), None))
        rows.append(
            {
                "activation": activation,
                "scratch_val_acc": net.score(X_val, y_val) if net.result.status == "done" else float("nan"),
                "scratch_test_acc": net.score(X_test, y_test) if net.result.status == "done" else float("nan"),
                "sklearn_test_acc": sk_acc,
                "scratch_fit_s": scratch_s,
                "sklearn_fit_s": sk_s,
                "scratch_status": net.result.status,
                "sklearn_status": sk_status,
            }
        )

    out.table(
        "activations",
        rows,
        title="Test accuracy and training time per hidden activation",
        caption=f"Both networks: {sizes}, SGD lr {cfg.lr} without momentum or weight decay, batch "
        f"{cfg.batch_size}, {cfg.epochs} epochs, one BLAS thread each. Times are whole fits (for the "
        "NumPy network including the per-epoch test evaluation)"
        + (", side by side, one per core (each a little slower than alone: they share memory bandwidth); "
           "bench/scratch_mlp.py times the two networks alone." if side_by_side else "."),
        columns=["activation", "scratch_test_acc", "sklearn_test_acc", "scratch_fit_s", "sklearn_fit_s",
                 "scratch_status", "sklearn_status", "scratch_val_acc"],
    )
    diverged = [f"{impl} {r['activation']}" for r in rows for impl in ("scratch", "sklearn") if r[f"{impl}_status"] == "diverged"]
    if diverged:
        out.text("diverged", f"Diverged (non-finite loss, training stopped): {', '.join(diverged)}. "
                 f"Plain SGD at lr {cfg.lr} can blow up, most often for the linear network, whose "
                 "activations are not bounded; a smaller lr or fewer layers avoids it.", title="Divergence")
    out.figure("error_curves", error_figure(nets), title="Training and validation error against epoch",
               caption="Training error averages each epoch's minibatches (taken as the weights move); "
               "validation error is measured after each epoch. Cross-entropy per epoch is in metrics.jsonl.")

    # The best model, chosen on the validation split (choosing by test accuracy would make the
    # reported test number optimistic): a t-SNE map of its last hidden layer.
    healthy = [r for r in rows if r["scratch_status"] == "done"]
    best = max(healthy, key=lambda r: r["scratch_val_acc"]) if healthy else None
    if best is not None:
        model = nets[best["activation"]]
        if cfg.tsne_points:
            pick = np.random.default_rng(cfg.seed).permutation(len(y_test))[: cfg.tsne_points]
            embedding = tsne(model.hidden_features(X_test[pick]), seed=cfg.seed)
            out.save_array("tsne/embedding.npy", embedding)
            out.figure("tsne", tsne_figure(embedding, y_test[pick], data.class_names, best["activation"]),
                       title=f"t-SNE of the last hidden layer ({best['activation']}, best validation accuracy)",
                       caption=f"{len(pick)} test images, openTSNE with perplexity {min(30.0, (len(pick) - 1) / 3):.0f}.")
    out.summary(
        headline="best_scratch_test_acc",
        best_activation=best["activation"] if best else None,
        best_scratch_test_acc=best["scratch_test_acc"] if best else float("nan"),
        **{f"scratch_test_acc_{r['activation']}": r["scratch_test_acc"] for r in rows},
        **{f"sklearn_test_acc_{r['activation']}": r["sklearn_test_acc"] for r in rows},
        # The best activation's validation accuracy (fraction): a tune's objective.
        val_acc=max((r["scratch_val_acc"] for r in healthy), default=float("nan")),
    )
    if all(r["scratch_status"] == "pruned" for r in rows):  # a tune gave up on every activation
        raise Pruned(max(len(net.history["val_acc"]) for net in nets.values()))
    if best is None:
        out.mark_diverged("the NumPy network diverged (NaN/Inf loss) with every activation")


def fit_sklearn_once(cfg: Config, activation: str, X, y, X_test, y_test, slot: SnapshotSlot) -> tuple:
    """:func:`fit_sklearn`, or its result from ``slot`` when a stopped run had finished it. scikit-learn's
    fit runs whole (its SGD state is not ours to save): one stopped half-way runs again from the start,
    with the same random_state and so the same result."""
    saved = slot.load()
    if saved is not None:
        done = unpack(saved)
        return done["test_acc"], done["seconds"], done["status"]
    acc, seconds, status = fit_sklearn(cfg, activation, X, y, X_test, y_test)
    slot.save(pack(finished=True, test_acc=acc, seconds=seconds, status=status))
    return acc, seconds, status


def fit_sklearn(cfg: Config, activation: str, X, y, X_test, y_test) -> tuple[float, float, str]:
    """scikit-learn's MLPClassifier with the NumPy network's settings: (test accuracy, fit seconds, status)."""
    # Imported here: `trainlab list` imports every recipe, and scikit-learn takes seconds to import.
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits

    clf = MLPClassifier(
        hidden_layer_sizes=tuple(cfg.hidden),
        activation=SKLEARN_NAMES[activation],
        solver="sgd",
        alpha=0.0,  # the NumPy network has no weight decay
        batch_size=cfg.batch_size,
        learning_rate="constant",
        learning_rate_init=cfg.lr,
        momentum=0.0,
        max_iter=cfg.epochs,
        n_iter_no_change=cfg.epochs + 1,  # never stop early: train exactly `epochs` epochs
        shuffle=True,
        random_state=cfg.seed,
    )
    # Same single BLAS thread as the NumPy network, so the times compare implementations.
    # ConvergenceWarning (max_iter reached, as asked) is silenced by the caller.
    with threadpool_limits(1, user_api="blas"), np.errstate(over="ignore", invalid="ignore"):
        start = time.perf_counter()
        try:
            clf.fit(X, y)
        except ValueError as exc:  # "Solver produced non-finite parameter weights"
            if "non-finite" not in str(exc):
                raise
            return float("nan"), time.perf_counter() - start, "diverged"
        seconds = time.perf_counter() - start
        acc = float(clf.score(X_test, y_test))
    return acc, seconds, "done"


def error_figure(nets: dict[str, NeuralNetwork]):
    fig, axes = new_figure(1, len(nets), size=(3.2, 3.0), sharey=True)
    for ax, (name, net) in zip(axes[0], nets.items()):
        epochs = np.arange(1, len(net.history["train_acc"]) + 1)
        ax.plot(epochs, 1 - np.array(net.history["train_acc"]), label="train")
        ax.plot(epochs, 1 - np.array(net.history["val_acc"]), label="validation")
        ax.set(xlabel="epoch", title=name, yscale="log")
    axes[0, 0].set_ylabel("error (1 - accuracy)")
    axes[0, 0].legend()
    return fig


def tsne_figure(embedding: np.ndarray, labels: np.ndarray, class_names: list[str], activation: str):
    fig, axes = new_figure(1, 1, size=(5.5, 4.8))
    ax = axes[0, 0]
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    for k, name in enumerate(class_names):
        mask = labels == k
        ax.scatter(embedding[mask, 0], embedding[mask, 1], s=6, color=cmap(k % 10), label=name)
    ax.set(xticks=[], yticks=[], title=f"last hidden layer, {activation}")
    ax.legend(markerscale=2, fontsize=7, loc="best", ncols=2)
    return fig
