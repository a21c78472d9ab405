"""Train / validation / test tensors on the device, the way the MNIST recipes split their data."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from trainlab.data.images import ImageDataset, to_tensor
from trainlab.data.subsets import keep_classes, random_subset, train_val_split

Split = tuple[torch.Tensor, torch.Tensor]


def device_splits(
    data: ImageDataset,
    device: torch.device,
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    classes: Sequence[int] | None = None,
    train_limit: int | None = None,
    train_on_val: bool = False,
) -> dict[str, Split]:
    """``{"train", "val", "test"}`` -> (x float32 (N, H*W) in [0, 1], y int64), all on ``device``.

    ``classes`` keeps only those classes (labels become their index in ``classes``);
    ``train_limit`` keeps a seeded random subset of that many training images before
    the training images are split ``1 - val_fraction`` / ``val_fraction`` with ``seed``.
    ``train_on_val`` trains on both parts (a refit after tuning); ``val`` is still the held-out part,
    now seen in training.
    """
    train_images, train_labels = data.train_images, data.train_labels
    test_images, test_labels = data.test_images, data.test_labels
    if classes is not None:
        train_images, train_labels = keep_classes(train_images, train_labels, classes)
        test_images, test_labels = keep_classes(test_images, test_labels, classes)
    keep = random_subset(len(train_labels), train_limit, seed)
    train_images, train_labels = train_images[keep], train_labels[keep]
    train_idx, val_idx = train_val_split(len(train_labels), val_fraction, seed=seed)
    x_all = to_tensor(train_images, device)
    y_all = torch.as_tensor(train_labels, device=device).long()
    if train_on_val:
        train_idx = np.concatenate([train_idx, val_idx])
    return {
        "train": (x_all[train_idx], y_all[train_idx]),
        "val": (x_all[val_idx], y_all[val_idx]),
        "test": (to_tensor(test_images, device), torch.as_tensor(test_labels, device=device).long()),
    }


def describe_splits(data: ImageDataset, splits: dict[str, Split]) -> str:
    """One line for a report: dataset, where it came from, images per split."""
    counts = ", ".join(f"{len(y)} {'validation' if name == 'val' else name}" for name, (_, y) in splits.items())
    return f"{data.name} ({data.source}): {counts} images"
