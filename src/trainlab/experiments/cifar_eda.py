"""NumPy network study, Q4.1: a first look at CIFAR-10 (the study's two-class subset or all ten).

The study reshaped each 3072-value row to a 32 x 32 x 3 image, showed the first
16 images of its subset, plotted the images' 2-D PCA and counted the classes
(5000 / 5000). Here the same, plus each class's mean image, how much of the
pixel variance the two components keep, and how far apart the classes lie in
that plane (a nearest-class-mean classifier on the two components), so the
study's "the data is very well distributed" becomes numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np
from sklearn.decomposition import PCA

from trainlab.config import check, positive
from trainlab.data import keep_classes, load_images
from trainlab.data.subsets import random_subset
from trainlab.experiments._cifar import CifarDataConfig
from trainlab.report.figures import new_figure
from trainlab.runs import Run

NAME = "cifar-eda"
STUDY = "numpy"
QUESTION = "Q4.1"
SUMMARY = "sample grid, class counts, mean image per class and 2-D PCA of a class subset"
RUNTIME = "~6 s"
QUICK = {"dataset": "digits", "pca_points": 300}


@dataclass
class Config(CifarDataConfig):
    classes: Optional[List[int]] = field(default_factory=lambda: [0, 1])
    """Classes to look at (the study's airplane and automobile: [0,1]); null for all ten."""
    samples: int = 16
    """How many of the subset's first training images to show (the study's 16)."""
    pca_points: int = 2000
    """Training images drawn in the PCA scatter (the PCA itself is fitted on all of them)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.classes is None or len(self.classes) >= 1, "classes needs at least one class, or null for all")
        positive("samples", self.samples)
        positive("pca_points", self.pca_points)


def run(cfg: Config, out: Run) -> None:
    data = load_images(cfg.dataset, cfg.data_dir)
    classes = list(range(data.num_classes)) if cfg.classes is None else list(cfg.classes)
    names = [data.class_names[c] for c in classes]
    train_x, train_y = keep_classes(data.train_images, data.train_labels, classes)
    test_x, test_y = keep_classes(data.test_images, data.test_labels, classes)
    keep = random_subset(len(train_y), cfg.train_limit, seed=cfg.seed)
    train_x, train_y = train_x[keep], train_y[keep]
    shape = "x".join(map(str, train_x.shape[1:]))
    out.text("data", f"{data.name} ({data.source}): classes {', '.join(f'{c} ({n})' for c, n in zip(classes, names))}; "
             f"{len(train_y)} training and {len(test_y)} test images of {shape} uint8; a training row is "
             f"{int(np.prod(train_x.shape[1:]))} values.", title="Data")

    # The first images of the subset, as the study showed them.
    k = min(cfg.samples, len(train_y))
    cols = int(np.ceil(np.sqrt(k)))
    rows = int(np.ceil(k / cols))
    fig, axes = new_figure(rows, cols, size=(1.3, 1.45))
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < k:
            ax.imshow(train_x[i], cmap="gray" if train_x.ndim == 3 else None, vmin=0, vmax=255,
                      interpolation="nearest")
            ax.set_title(names[train_y[i]], fontsize=7)
    out.figure("samples", fig, title=f"The first {k} training images of the subset")

    # Class counts per split.
    train_counts = np.bincount(train_y, minlength=len(classes))
    test_counts = np.bincount(test_y, minlength=len(classes))
    counts = [{"class": c, "name": n, "train": int(a), "train_share_pct": 100.0 * a / len(train_y),
               "test": int(b)} for c, n, a, b in zip(classes, names, train_counts, test_counts)]
    out.table("class_counts", counts, title="Images per class",
              caption=f"{len(train_y)} training images; the study's subset had 5000 / 5000.")

    # Mean image per class.
    means = np.stack([train_x[train_y == i].mean(axis=0) for i in range(len(classes))]).round().astype(np.uint8)
    fig, axes = new_figure(1, len(classes), size=(1.4, 1.6))
    for ax, img, n in zip(axes[0], means, names):
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(n, fontsize=8)
        ax.axis("off")
    out.figure("mean_images", fig, title="Mean training image of each class")

    # 2-D PCA of the flattened pixels, fitted on every training image of the subset.
    flat = train_x.reshape(len(train_x), -1).astype(np.float32) / 255.0
    pca = PCA(n_components=2, random_state=cfg.seed).fit(flat)
    coords = pca.transform(flat)
    centres = np.stack([coords[train_y == i].mean(axis=0) for i in range(len(classes))])
    test_coords = pca.transform(test_x.reshape(len(test_x), -1).astype(np.float32) / 255.0)
    nearest = np.argmin(((test_coords[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
    ncm_acc = 100.0 * float((nearest == test_y).mean())
    chance = 100.0 * float(np.bincount(test_y).max() / len(test_y))
    shown = np.random.default_rng(cfg.seed).permutation(len(coords))[: cfg.pca_points]
    fig, axes = new_figure(size=(5, 4))
    ax = axes[0, 0]
    for i, n in enumerate(names):
        pick = shown[train_y[shown] == i]
        ax.scatter(coords[pick, 0], coords[pick, 1], s=4, alpha=0.5, label=n, color=f"C{i % 10}")
    ax.set(xlabel=f"PC 1 ({100 * pca.explained_variance_ratio_[0]:.1f} % of variance)",
           ylabel=f"PC 2 ({100 * pca.explained_variance_ratio_[1]:.1f} % of variance)",
           title=f"2-D PCA of {len(classes)} classes ({len(shown)} images shown)")
    ax.legend(markerscale=3, fontsize=7)
    out.figure("pca", fig, title="Training images on their first two principal components")

    kept = 100.0 * float(pca.explained_variance_ratio_.sum())
    balanced = train_counts.min() == train_counts.max()
    out.text("reading", (
        f"Class counts: {', '.join(f'{n} {a}' for n, a in zip(names, train_counts))} of {len(train_y)} training "
        f"images ({'exactly balanced' if balanced else f'from {train_counts.min()} to {train_counts.max()} per class'}). "
        f"The first two principal components keep {kept:.1f} % of the pixel variance. Classifying the test images "
        f"by the nearest class mean in that plane gives {ncm_acc:.1f} % accuracy against {chance:.1f} % for always "
        f"guessing the largest class: the classes {_separation(ncm_acc, chance)} in two linear dimensions. "
        "The study read its PCA plot as \"very well distributed\"; what such a plot can show is how far the "
        "classes spread and overlap, which the nearest-mean accuracy measures."), title="What the numbers say")
    out.summary(headline="pca_nearest_mean_acc", pca_nearest_mean_acc=ncm_acc, chance_acc=chance,
                pca_variance_kept_pct=kept, train_images=len(train_y),
                **{f"train_count_{n}": int(a) for n, a in zip(names, train_counts)})


def _separation(acc: float, chance: float) -> str:
    if acc >= 95:
        return "separate almost completely"
    return "overlap heavily" if acc < chance + 15 else "separate partly"
