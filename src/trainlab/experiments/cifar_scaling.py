"""Optimisation & CNN study, Q5.2: the Q5.1 network trained on 1, 10, 100, 1000 images per class and all.

The study retrained its CNN on subsets of the CIFAR-10 training set (1, 10, 100
and 1000 images per class, and the full set), kept the full test set, tuned
the hyperparameters per size, and plotted training and test accuracy against
the number of training images. Here every size is trained with several seeds,
each drawing a fresh subset, so the curve comes with error bars; the number
of epochs grows for small sets so that each still gets ``min_steps`` optimizer
steps of a full batch (a set smaller than a batch is repeated to fill it),
the other hyperparameters stay those of ``cifar-cnn``.

Checkpoints (:mod:`trainlab.checkpoints`): every network that finished, named
``per_class<k>_seed<s>`` (``all_seed<s>`` for the full set), described as ``cifar-cnn``'s.
"""

from __future__ import annotations

import math
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
from trainlab.nn.cnn import FastCNN, block_widths
from trainlab.nn.flops import training_flops_per_example
from trainlab.report.figures import new_figure
from trainlab.report.tables import mean_std
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

    def __post_init__(self) -> None:
        super().__post_init__()
        check(len(self.per_class) > 0 or self.full, "give per_class sizes or full=true")
        positive("per_class", self.per_class)
        positive("seeds", self.seeds)
        positive("min_steps", self.min_steps)
        positive("train_eval_limit", self.train_eval_limit)


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

    # One job per (size, seed): its subset and its initial weights, drawn here in a fixed order.
    jobs = []
    for k in sizes + ([None] if cfg.full else []):
        for repeat in range(cfg.seeds):
            seed = cfg.seed + repeat
            idx = np.arange(n_full) if k is None else per_class(labels, k, seed=seed)
            with global_seed(seed):
                model = FastCNN(data.channels, n_classes, block_widths(width), image_size=data.image_size).to(device)
            filled = _filled(idx, cfg)
            jobs.append((k, seed, idx, filled, replace(cfg, epochs=_epochs(len(filled), cfg)), model))

    snapshots = out.snapshots(cfg.checkpoint_every)

    def train_one(job) -> dict:
        k, seed, idx, filled, settings, model = job
        filled = torch.as_tensor(filled, device=device)
        result = train_cnn(model, (data.train[0][filled], data.train[1][filled]), settings,
                           generator=torch_generator(seed, device), progress=False,
                           snapshot=snapshots.slot(_job_name(k, seed)))
        # A resumed run evaluates a finished network again (from its saved weights, to the same
        # numbers): a few percent of its training, not worth a second kind of snapshot.
        seen = torch.as_tensor(idx[random_subset(len(idx), cfg.train_eval_limit, seed=seed)], device=device)
        steps = _steps(len(filled), settings)
        return {"per_class": "all" if k is None else k, "train_images": len(idx), "seed": seed,
                "epochs": steps * min(cfg.batch_size, len(filled)) / len(idx), "steps": steps,
                "train_acc": evaluate_cnn(model, data.train[0][seen], data.train[1][seen], flip=cfg.flip).acc,
                "test_acc": evaluate_cnn(model, *data.test, tta_level=cfg.tta_level, flip=cfg.flip).acc,
                "train_time_s": result.seconds, "status": result.status}

    # On the CPU the trainings run side by side, one thread each, where the plan finds it pays:
    # small convolutions cannot keep two threads busy, two trainings can (the results do not
    # depend on it). Cost: every training step is a full batch.
    per_image = training_flops_per_example(jobs[0][-1], data.train[0][:1])
    steps = [_steps(len(filled), settings) for _, _, _, filled, settings, _ in jobs]
    with tqdm(total=len(jobs), desc="trainings", disable=None) as bar:
        def train_and_count(job) -> dict:
            row = train_one(job)
            bar.update()
            return row

        rows = run_independent(train_and_count, jobs, costs=[n * cfg.batch_size * per_image for n in steps],
                               step_flops=cfg.batch_size * per_image, device=device)
    for row, (k, seed, *_, model) in zip(rows, jobs, strict=True):
        out.log(**row)
        # every trained network, for reuse (from_run=) and the API; described as cifar-cnn's is
        if row["status"] == "done":
            save_checkpoint(out, _job_name(k, seed), model, config=cfg,
                            architecture={"in_channels": data.channels, "num_classes": n_classes,
                                          "widths": list(block_widths(width)), "image_size": data.image_size},
                            dataset=cfg.dataset, train_images=row["train_images"], seed=seed)

    table = mean_std(rows, by=["per_class", "train_images", "epochs", "steps"],
                     values=["train_acc", "test_acc", "train_time_s"])
    out.table("sizes", table, title="Accuracy against the number of training images",
              caption=f"Mean over {cfg.seeds} seed(s), each with its own subset; accuracy in percent, training "
                      f"accuracy on (at most {cfg.train_eval_limit} of) the subset itself, test accuracy on all "
                      f"{len(data.test[1])} test images" + (f" with TTA level {cfg.tta_level}" if cfg.tta_level else "")
                      + f"; width {width}.")
    out.table("runs", rows, title="Every run")
    out.figure("scaling", _plot(table), title="Training and test accuracy against training-set size")

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
        "size (the study tuned each size by hand; here only the length of training adapts)."),
        title="What the numbers say")
    out.summary(headline="test_acc_full" if cfg.full else f"test_acc_{first['per_class']}",
                **{f"test_acc_{r['per_class']}" if r["per_class"] != "all" else "test_acc_full": r["test_acc"]
                   for r in table},
                **{f"train_acc_{r['per_class']}" if r["per_class"] != "all" else "train_acc_full": r["train_acc"]
                   for r in table})


def _job_name(k: int | None, seed: int) -> str:
    """The name of one training's snapshot and checkpoint: ``per_class<k>_seed<s>`` or ``all_seed<s>``."""
    return f"{'all' if k is None else f'per_class{k}'}_seed{seed}"


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


def _plot(table: list[dict]):
    fig, axes = new_figure(size=(5.5, 3.8))
    ax = axes[0, 0]
    n = np.array([r["train_images"] for r in table])
    for split, marker in (("train", "o"), ("test", "s")):
        mean = np.array([r[f"{split}_acc"] for r in table])
        std = np.array([r.get(f"{split}_acc_std", 0.0) for r in table])
        ax.errorbar(n, mean, yerr=np.nan_to_num(std), marker=marker, capsize=3, label=split)
    ax.set(xscale="log", xlabel="training images", ylabel="accuracy (%)",
           title="Accuracy against training-set size (mean ± std over seeds)")
    ax.legend()
    return fig
