"""Subsets of labelled data: class filters, imbalance thinning and splits, per-class samples.

Functions return index arrays (or filtered arrays) and take explicit seeds, so
the same call always selects the same samples. ``keep_classes`` works on NumPy
arrays and torch tensors alike (device tensors stay on their device).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

from trainlab.errors import ConfigError, DataError

ArrayT = TypeVar("ArrayT")


def keep_classes(images: ArrayT, labels: ArrayT, classes: Sequence[int]) -> tuple[ArrayT, ArrayT]:
    """Keep the samples of ``classes`` and relabel them 0..k-1 in the order given.

    ``keep_classes(x, y, [3, 8])`` turns 3 into 0 and 8 into 1; original order
    of the samples is kept.
    """
    classes = [int(c) for c in classes]
    if not classes:
        raise ConfigError("classes is empty; name at least one class, e.g. classes=[0,1]")
    if len(set(classes)) != len(classes):
        raise ConfigError(f"classes={classes} repeats a class; list each class once")
    masks = [labels == c for c in classes]
    keep = masks[0]
    for c, mask in zip(classes, masks):
        if not bool(mask.any()):
            raise DataError(f"class {c} has no samples in this split; pick classes that occur in the labels")
        keep = keep | mask
    relabelled = labels.clone() if hasattr(labels, "clone") else labels.copy()
    for new, mask in enumerate(masks):
        relabelled[mask] = new
    return images[keep], relabelled[keep]


def random_subset(n: int, k: int | None, seed: int = 0) -> np.ndarray:
    """Sorted indices of ``k`` of ``range(n)`` drawn by a seeded permutation (all of them when
    ``k`` is None or >= n); sorted, so the subset keeps the data's order."""
    if k is None or k >= n:
        return np.arange(n)
    if k < 1:
        raise ConfigError(f"a subset needs at least 1 sample (got {k})")
    return np.sort(np.random.default_rng(seed).permutation(n)[:k])


def train_val_split(n: int, val_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(n)`` into sorted train and validation indices by a seeded permutation.

    The validation set has ``round(n * val_fraction)`` samples.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"val_fraction={val_fraction} must lie strictly between 0 and 1")
    n_val = int(round(n * val_fraction))
    if n_val == 0 or n_val == n:
        raise ConfigError(f"val_fraction={val_fraction} of {n} samples leaves an empty split; change val_fraction")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def every_nth(labels: np.ndarray, cls: int, n: int, seed: int | None = None) -> np.ndarray:
    """Sorted indices keeping every sample of other classes and every ``n``-th sample of ``cls``.

    Class ``cls`` keeps ``count // n`` samples (the imbalance study's "every
    N-th point"): the n-th, 2n-th, ... in data order, or in a seeded shuffle
    of that class when ``seed`` is given.
    """
    if n < 1:
        raise ConfigError(f"n={n} must be >= 1")
    labels = np.asarray(labels)
    members = np.flatnonzero(labels == cls)
    if seed is not None:
        members = np.random.default_rng(seed).permutation(members)
    kept = members[n - 1 :: n]
    return np.sort(np.concatenate([np.flatnonzero(labels != cls), kept]))


def sparsify(labels: np.ndarray, cls: int, n: int, seed: int) -> np.ndarray:
    """Sorted indices keeping every sample of the other classes and ``count // n`` of class ``cls``.

    The kept samples of ``cls`` are the first ``count // n`` of a seeded
    permutation of that class (the imbalance study's shuffle-then-slice), so each
    seed draws its own samples, and for one seed a larger ``n`` keeps a subset of
    what a smaller ``n`` keeps (curves over ``n`` are not re-drawn at every point).
    """
    return np.sort(np.concatenate(_sparse_members(np.asarray(labels), cls, n, seed)))


def imbalanced_split(
    labels: np.ndarray, cls: int, n: int, seed: int, val_fraction: float = 0.2
) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation indices of ``sparsify(labels, cls, n, seed)``, split class by class.

    Every class sends ``int((1 - val_fraction) * count)`` of its kept samples to
    training and the rest to validation, as the study's per-class ``random_split``
    did, so the rare class is never all in one split by chance. The split of the
    other classes depends on ``seed`` only: for one seed, every ``n`` shares them.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"val_fraction={val_fraction} must lie strictly between 0 and 1")
    labels = np.asarray(labels)
    kept_cls, others = _sparse_members(labels, cls, n, seed)
    train, val = [], []
    for c in np.unique(labels):
        if c == cls:
            members = kept_cls  # already in seeded random order
        else:
            members = np.random.default_rng([seed, 1, int(c)]).permutation(others[labels[others] == c])
        k = int((1.0 - val_fraction) * len(members))
        train.append(members[:k])
        val.append(members[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def _sparse_members(labels: np.ndarray, cls: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(kept samples of ``cls`` in their seeded random order, every sample of the other classes)."""
    if n < 1:
        raise ConfigError(f"n={n} must be >= 1")
    members = np.flatnonzero(labels == cls)
    drawn = np.random.default_rng([seed, 0]).permutation(members)[: len(members) // n]
    return drawn, np.flatnonzero(labels != cls)


def per_class(labels: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of ``k`` samples drawn without replacement from each class present."""
    if k < 1:
        raise ConfigError(f"k={k} samples per class must be >= 1")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    chosen = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) < k:
            raise DataError(f"class {c} has only {len(members)} samples, fewer than k={k}; lower k")
        chosen.append(rng.choice(members, size=k, replace=False))
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)
