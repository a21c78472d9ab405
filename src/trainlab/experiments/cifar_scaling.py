"""Optimisation & CNN study, Q5.2: the Q5.1 network trained on 1, 10, 100, 1000 images per class and all.

The study retrained its CNN on subsets of the CIFAR-10 training set (1, 10, 100
and 1000 images per class, and the full set), kept the full test set, tuned
the hyperparameters per size, and plotted training and test accuracy against
the number of training images. Here every size is trained with several seeds,
each drawing a fresh subset, so the curve comes with error bars; the number
of epochs grows for small sets so that each still gets ``min_steps`` optimizer
steps of a full batch (a set smaller than a batch is repeated to fill it),
the other hyperparameters stay those of ``cifar-cnn``. With ``tune_trials=N`` every
size and seed is also tuned as the study asked: an Optuna search of learning rate,
weight decay, training length and augmentation on a validation split carved from
that subset (:mod:`trainlab.experiments._scaling_tune`), whose best settings then
train on the whole subset; the table and figure show tuned beside untuned.

Checkpoints (:mod:`trainlab.checkpoints`): every network that finished, named
``per_class<k>_seed<s>`` (``all_seed<s>`` for the full set), described as ``cifar-cnn``'s; a
tuned network's name starts ``tuned_``. Each tune's Optuna study is ``tunes/<that name>/study.db``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import ClassVar, List, Optional

import numpy as np
import torch
from tqdm.auto import tqdm

from trainlab.checkpoints import save_checkpoint
from trainlab.config import check, positive
from trainlab.data import per_class
from trainlab.data.subsets import random_subset
from trainlab.device import global_seed, torch_generator
from trainlab.experiments._cifar import CNNConfig, load_tensors
from trainlab.experiments._resume import Checkpointing
from trainlab.experiments._scaling_tune import SEARCHED, TUNES_DIR, search_space, tune, validation_split
from trainlab.nn.cnn import FastCNN, block_widths
from trainlab.nn.flops import training_flops_per_example
from trainlab.report.figures import new_figure
from trainlab.report.tables import mean_std, mean_std_markdown
from trainlab.runs import Run
from trainlab.train.cnn import evaluate_cnn, train_cnn
from trainlab.workers import run_independent

NAME = "cifar-scaling"
STUDY = "optim-cnn"
QUESTION = "Q5.2"
SUMMARY = "the Q5.1 CNN on 1, 10, 100, 1000 images per class and all: train/test accuracy against size"
RUNTIME = "~6 min"
QUICK = {"dataset": "digits", "per_class": [1, 10], "seeds": 2, "epochs": 6, "min_steps": 60, "width": 8,
         "batch_size": 64, "lr": 16.0, "translate": 1}


@dataclass
class Config(Checkpointing, CNNConfig):
    CPU_WIDTH: ClassVar[int] = 12  # the study's 15 trainings fit 10 min of 2 CPU cores (measured, README)

    width: Optional[int] = None
    """Base width w (blocks of w, 4w, 4w channels); None: 64 (airbench94) on a GPU, 12 on the CPU."""
    per_class: List[int] = field(default_factory=lambda: [1, 10, 100, 1000])
    """Training images per class of each subset size (the study's 1, 10, 100, 1000)."""
    full: bool = True
    """Also train on the whole training set."""
    seeds: int = 3
    """Runs per size; each seed draws its own subset and initial weights."""
    epochs: float = 3.0
    """Epochs of the full set; smaller sets get more (see min_steps)."""
    min_steps: int = 120
    """Every size trains for at least this many optimizer steps (its epochs are raised to reach it)."""
    tta_level: int = 0
    """Test-time augmentation of the test accuracy (0: none; 2 costs six forward passes per test image)."""
    train_eval_limit: int = 10000
    """Training accuracy is measured on at most this many of a size's training images."""
    tune_trials: int = 0
    """Optuna trials per size and seed (0: no tune, cifar-cnn's settings for every size); tuned beside untuned."""
    val_fraction: float = 0.2
    """Share of each class of a subset that the tune's trials are scored on (the chosen settings train on all)."""
    extra_val_per_class: int = 5
    """Validation images per class of a tune with one image per class, from the rest of the training set."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(len(self.per_class) > 0 or self.full, "give per_class sizes or full=true")
        positive("per_class", self.per_class)
        positive("seeds", self.seeds)
        positive("min_steps", self.min_steps)
        positive("train_eval_limit", self.train_eval_limit)
        check(self.tune_trials >= 0, f"tune_trials must be >= 0 (got {self.tune_trials})")
        check(0 < self.val_fraction < 1, f"val_fraction must be in (0, 1) (got {self.val_fraction})")
        positive("extra_val_per_class", self.extra_val_per_class)
        check(self.tune_trials == 0 or self.weight_decay > 0,
              "a tune searches weight decay on a log scale around weight_decay: give weight_decay > 0")


def run(cfg: Config, out: Run) -> None:
    device = out.device
    cfg = cfg.for_device(device)  # width and batch size for this hardware
    data = load_tensors(cfg, device)
    n_classes, n_full = len(data.class_names), len(data.train[1])
    width = cfg.width
    labels = data.train[1].cpu().numpy()
    smallest = int(np.bincount(labels, minlength=n_classes).min())
    sizes = [k for k in cfg.per_class if k <= smallest]
    skipped = [k for k in cfg.per_class if k > smallest]
    out.text("data", data.describe() + f"; the smallest class has {smallest} training images"
             + (f", so per_class {skipped} cannot be drawn and is skipped" if skipped else "") + ".", title="Data")
    tuning = cfg.tune_trials > 0
    if tuning:
        out.text("validation", _validation_note(cfg), title="How each size is tuned")

    def new_model(seed: int) -> FastCNN:
        with global_seed(seed):
            return FastCNN(data.channels, n_classes, block_widths(width), image_size=data.image_size).to(device)

    # One job per (size, seed), and with a tune one more that tunes first: its subset and its
    # initial weights (the same for both, so tuned and untuned differ in their settings only).
    jobs = []
    for k in sizes + ([None] if cfg.full else []):
        for repeat in range(cfg.seeds):
            seed = cfg.seed + repeat
            idx = np.arange(n_full) if k is None else per_class(labels, k, seed=seed)
            jobs += [_Job(k, seed, idx, new_model(seed), tuned) for tuned in ((False, True) if tuning else (False,))]

    snapshots = out.snapshots(cfg.checkpoint_every)

    def settings_for(idx: np.ndarray, values: dict | None = None) -> Config:
        """The training settings of a set: untuned, or with a tune's ``values``."""
        epochs = _epochs(len(_filled(idx, cfg)), cfg)
        if values is None:
            return replace(cfg, epochs=epochs)
        return replace(cfg, epochs=epochs * values["length"], lr=values["lr"], weight_decay=values["weight_decay"],
                       translate=int(values["translate"]))

    def train(model: FastCNN, idx: np.ndarray, settings: Config, seed: int, slot=None):
        filled = torch.as_tensor(_filled(idx, cfg), device=device)
        return train_cnn(model, (data.train[0][filled], data.train[1][filled]), settings,
                         generator=torch_generator(seed, device), progress=False, snapshot=slot)

    def choose(job: _Job) -> dict:
        """Tune ``job``'s settings on a validation split of its subset; the chosen values and scores."""
        split = validation_split(labels, job.idx, cfg.val_fraction, cfg.extra_val_per_class, seed=job.seed)
        val = torch.as_tensor(split.val, device=device)

        def score(values: dict) -> float:
            model = new_model(job.seed)  # the final network's initial weights
            train(model, split.fit, settings_for(split.fit, values), job.seed)
            return evaluate_cnn(model, data.train[0][val], data.train[1][val], flip=cfg.flip).acc

        untuned = {"lr": cfg.lr, "weight_decay": cfg.weight_decay, "length": 1.0, "translate": cfg.translate}
        tick = time.perf_counter()
        values, val_acc, untuned_val_acc = tune(score, search_space(cfg.lr, cfg.weight_decay, cfg.translate), untuned,
                                                cfg.tune_trials, out.path / TUNES_DIR / job.name, job.seed)
        return {"per_class": "all" if job.k is None else job.k, "seed": job.seed, **values,
                "val_acc": val_acc, "untuned_val_acc": untuned_val_acc, "val_images": len(split.val),
                "validation": "extra" if split.extra else "held out", "tune_s": time.perf_counter() - tick}

    def train_one(job: _Job) -> tuple[dict, dict | None]:
        chosen = choose(job) if job.tuned else None
        settings = settings_for(job.idx, chosen)
        result = train(job.model, job.idx, settings, job.seed, snapshots.slot(job.name))
        # A resumed run evaluates a finished network again (from its saved weights, to the same
        # numbers): a few percent of its training, not worth a second kind of snapshot.
        seen = torch.as_tensor(job.idx[random_subset(len(job.idx), cfg.train_eval_limit, seed=job.seed)], device=device)
        n_filled = len(_filled(job.idx, cfg))
        steps = _steps(n_filled, settings)
        row = {"per_class": "all" if job.k is None else job.k, "train_images": len(job.idx), "seed": job.seed,
               **({"settings": "tuned" if job.tuned else "untuned"} if tuning else {}),
               "epochs": steps * min(cfg.batch_size, n_filled) / len(job.idx), "steps": steps,
               "train_acc": evaluate_cnn(job.model, data.train[0][seen], data.train[1][seen], flip=cfg.flip).acc,
               "test_acc": evaluate_cnn(job.model, *data.test, tta_level=cfg.tta_level, flip=cfg.flip).acc,
               "train_time_s": result.seconds, "status": result.status}
        return row, chosen

    # On the CPU the trainings run side by side, one thread each, where the plan finds it pays:
    # small convolutions cannot keep two threads busy, two trainings can (the results do not
    # depend on it). Cost: every training step is a full batch; a tuned job trains once per trial too.
    per_image = training_flops_per_example(jobs[0].model, data.train[0][:1])
    costs = [_steps(len(_filled(j.idx, cfg)), settings_for(j.idx)) * cfg.batch_size * per_image
             * (1 + cfg.tune_trials * j.tuned) for j in jobs]
    with tqdm(total=len(jobs), desc="trainings", disable=None) as bar:
        def train_and_count(job: _Job) -> tuple[dict, dict | None]:
            result = train_one(job)
            bar.update()
            return result

        results = run_independent(train_and_count, jobs, costs=costs, step_flops=cfg.batch_size * per_image,
                                  device=device)
    for (row, chosen), job in zip(results, jobs, strict=True):
        out.log(**row)
        # every trained network, for reuse (from_run=) and the API; described as cifar-cnn's is,
        # a tuned one with the settings its tune chose
        if row["status"] == "done":
            save_checkpoint(out, job.name, job.model, config=cfg,
                            architecture={"in_channels": data.channels, "num_classes": n_classes,
                                          "widths": list(block_widths(width)), "image_size": data.image_size},
                            dataset=cfg.dataset, train_images=row["train_images"], seed=job.seed,
                            **({"tuned": {key: chosen[key] for key in SEARCHED}} if chosen else {}))
    rows = [row for row, _ in results]
    untuned_rows = [row for row, _ in results if row.get("settings", "untuned") == "untuned"]

    table = mean_std(untuned_rows, by=["per_class", "train_images", "epochs", "steps"],
                     values=["train_acc", "test_acc", "train_time_s"])
    out.table("sizes", table, title="Accuracy against the number of training images" + (" (untuned)" if tuning else ""),
              caption=f"Mean over {cfg.seeds} seed(s), each with its own subset; accuracy in percent, training "
                      f"accuracy on (at most {cfg.train_eval_limit} of) the subset itself, test accuracy on all "
                      f"{len(data.test[1])} test images" + (f" with TTA level {cfg.tta_level}" if cfg.tta_level else "")
                      + f"; width {width}.")
    compared = _tuned_beside_untuned(rows, out, [chosen for _, chosen in results if chosen]) if tuning else None
    out.table("runs", rows, title="Every run")
    out.figure("scaling", _plot(table, compared), title="Training and test accuracy against training-set size")

    first, last = table[0], table[-1]
    gap = first["train_acc"] - first["test_acc"]
    out.text("reading", (
        f"With {first['per_class']} image(s) per class ({first['train_images']} in all) the network reaches "
        f"{first['test_acc']:.1f} % test accuracy (chance: {100 / n_classes:.0f} %) while fitting "
        f"{first['train_acc']:.1f} % of its training images, a gap of {gap:.1f} points; with "
        f"{last['train_images']} images it reaches {last['test_acc']:.1f} % (training {last['train_acc']:.1f} %). "
        "Smaller sets train for more epochs so that each gets at least "
        f"{cfg.min_steps} steps of {cfg.batch_size} images (a set smaller than a batch is repeated to fill it, "
        "each copy augmented differently); learning rate, momentum, weight decay and augmentation are the same for every "
        "size" + (" untuned; the tuned networks' settings are chosen per size and seed (above)." if tuning else
                  " (the study tuned each size by hand; here only the length of training adapts; "
                  "tune_trials=N tunes each size).")),
        title="What the numbers say")

    def size_key(prefix: str, r: dict) -> str:
        return f"{prefix}_{r['per_class']}" if r["per_class"] != "all" else f"{prefix}_full"

    out.summary(headline="test_acc_full" if cfg.full else f"test_acc_{first['per_class']}",
                **{size_key("test_acc", r): r["test_acc"] for r in table},
                **{size_key("train_acc", r): r["train_acc"] for r in table},
                **{size_key("tuned_test_acc", r): r["tuned_test_acc"] for r in compared or []})


@dataclass
class _Job:
    """One training: a subset, its initial weights, and whether a tune chooses its settings first."""

    k: Optional[int]
    seed: int
    idx: np.ndarray
    model: FastCNN
    tuned: bool

    @property
    def name(self) -> str:
        """Its snapshot's, checkpoint's and study's name: ``[tuned_]per_class<k>_seed<s>`` or ``[tuned_]all_seed<s>``."""
        return f"{'tuned_' if self.tuned else ''}{'all' if self.k is None else f'per_class{self.k}'}_seed{self.seed}"


def _validation_note(cfg: Config) -> str:
    return (
        f"Every size and seed is tuned with {cfg.tune_trials} Optuna trials (TPE; the first trial is the untuned "
        "settings) of learning rate (1/4 to 4 times the untuned), weight decay (1/4 to 8 times), training length "
        "(0.5 to 2 times the untuned steps) and translation augmentation (0 to 4 pixels). Each trial trains on the "
        f"subset less {cfg.val_fraction:.0%} of each class and is scored by its accuracy on those held-out images; "
        "the best trial's settings then train on the whole subset, and only that network meets the test set. "
        "One image per class leaves nothing to hold out (a held-out image's class would be missing from training, so "
        f"leave-one-out and k-fold score nothing): that size is scored on {cfg.extra_val_per_class} other training "
        "images per class, labelled images beyond the 1 per class, disjoint from the subset and from the test set.")


def _tuned_beside_untuned(rows: list[dict], out: Run, chosen: list[dict]) -> list[dict]:
    """The tables of a tune: each size's chosen settings, and tuned beside untuned test accuracy
    (the gain paired by seed: same subset, same initial weights)."""
    out.table("chosen", chosen, title="The settings each tune chose",
              caption="val_acc: the chosen settings' validation accuracy; untuned_val_acc: the untuned settings' "
                      "(the first trial); validation: held out from the subset, or extra images (1 per class).")
    by_run = {(r["per_class"], r["seed"], r["settings"]): r for r in rows}
    pairs = [{"per_class": r["per_class"], "train_images": r["train_images"], "untuned_test_acc": r["test_acc"],
              "tuned_test_acc": by_run[r["per_class"], r["seed"], "tuned"]["test_acc"],
              "gain": by_run[r["per_class"], r["seed"], "tuned"]["test_acc"] - r["test_acc"]}
             for r in rows if r["settings"] == "untuned"]
    values = ["untuned_test_acc", "tuned_test_acc", "gain"]
    table = mean_std(pairs, by=["per_class", "train_images"], values=values)
    out.table("tuned", table, title="Test accuracy, tuned beside untuned",
              markdown=mean_std_markdown(table, ["per_class", "train_images"], values),
              caption="Mean ± std over seeds, in percent; gain = tuned - untuned, paired by seed (same subset, "
                      "same initial weights).")
    return table


def _filled(idx: np.ndarray, cfg: Config) -> np.ndarray:
    """A set smaller than a batch repeated to fill one: every step is then a full batch of
    differently augmented copies (a batch of 10 images would move the weights 50x less)."""
    return np.tile(idx, -(-cfg.batch_size // len(idx)))


def _steps(n: int, settings) -> int:
    return max(1, math.ceil((n // min(settings.batch_size, n)) * settings.epochs))


def _epochs(n: int, cfg: Config) -> float:
    """``cfg.epochs``, raised so that ``n`` images give at least ``cfg.min_steps`` steps."""
    steps_per_epoch = n // min(cfg.batch_size, n)
    return max(cfg.epochs, cfg.min_steps / steps_per_epoch)


def _plot(table: list[dict], compared: list[dict] | None = None):
    fig, axes = new_figure(size=(5.5, 3.8))
    ax = axes[0, 0]
    n = np.array([r["train_images"] for r in table])
    curves = [(table, "train_acc", "o", "train"), (table, "test_acc", "s", "test")]
    if compared:
        curves += [(compared, "tuned_test_acc", "^", "test, tuned")]
    for rows, key, marker, label in curves:
        mean = np.array([r[key] for r in rows])
        std = np.array([r.get(f"{key}_std", 0.0) for r in rows])
        ax.errorbar(n, mean, yerr=np.nan_to_num(std), marker=marker, capsize=3, label=label)
    ax.set(xscale="log", xlabel="training images", ylabel="accuracy (%)",
           title="Accuracy against training-set size (mean ± std over seeds)")
    ax.legend()
    return fig
