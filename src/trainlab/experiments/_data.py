"""The data settings every recipe on MNIST-like image data shares, and loading them as configured.

One mixin instead of five copies: ``dataset``, ``data_dir`` and ``train_limit`` with their
checks (:class:`ImageDataConfig`), plus ``val_fraction`` for recipes that hold out a
validation split and ``train_on_val`` to train on it as well (:class:`SplitDataConfig`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional, Sequence

import torch

from trainlab.config import BaseConfig, check, one_of
from trainlab.data import ImageDataset, device_splits, load_images
from trainlab.data.splits import Split


@dataclass
class ImageDataConfig(BaseConfig):
    """Which image dataset a recipe reads and how much of its training set."""

    DATASETS: ClassVar[tuple[str, ...]] = ("mnist", "fashion-mnist", "digits")

    dataset: str = "mnist"
    """mnist, fashion-mnist or digits (scikit-learn's 8x8 digits, no files needed)."""
    data_dir: Optional[str] = None
    """Folder holding the four standard IDX files; None searches the cache, system copies, then downloads."""
    train_limit: Optional[int] = None
    """Use a seeded random subset of this many training images (before any validation split); None uses all."""

    def __post_init__(self) -> None:
        super().__post_init__()
        one_of("dataset", self.dataset, self.DATASETS)
        check(self.train_limit is None or self.train_limit >= 10,
              f"train_limit must be >= 10 or null for all images (got {self.train_limit})")


@dataclass
class SplitDataConfig(ImageDataConfig):
    """:class:`ImageDataConfig` plus the share of training images held out for validation."""

    val_fraction: float = 0.2
    """Share of the training images held out for validation (the studies' 80/20 split)."""
    train_on_val: bool = False
    """Train on the validation images too (a tune's --refit): validation numbers then measure seen images."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(0 < self.val_fraction < 1, f"val_fraction must be in (0, 1) (got {self.val_fraction})")


def load_data(cfg: ImageDataConfig) -> ImageDataset:
    """The configured dataset, found by the usual lookup (see ``trainlab data info``)."""
    return load_images(cfg.dataset, cfg.data_dir)


def load_splits(cfg: SplitDataConfig, device: torch.device | str,
                classes: Sequence[int] | None = None) -> tuple[ImageDataset, dict[str, Split]]:
    """The dataset and its train / validation / test tensors on ``device``, as configured."""
    data = load_data(cfg)
    splits = device_splits(data, torch.device(device), val_fraction=cfg.val_fraction, seed=cfg.seed,
                           classes=classes, train_limit=cfg.train_limit, train_on_val=cfg.train_on_val)
    return data, splits
