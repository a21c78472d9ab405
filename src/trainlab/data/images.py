"""Labelled image datasets as NumPy arrays: MNIST, Fashion-MNIST, CIFAR-10, scikit-learn digits.

Everything is loaded whole into memory (the largest, CIFAR-10, is 180 MB of
uint8); turn it into a device tensor once (``to_tensor`` flat float, or
``image_tensor`` uint8 N x C x H x W) and slice batches from that.
Grayscale images are (N, H, W); colour images are channels-last (N, H, W, 3).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from trainlab.data import cifar
from trainlab.data.idx import read_idx
from trainlab.data.sources import SOURCES, Located, locate
from trainlab.errors import ConfigError, DataError

DIGITS_TEST_FRACTION = 0.25
DIGITS_SPLIT_SEED = 0  # fixed: the digits test set must never change between runs or users


@dataclass
class ImageDataset:
    """Train and test images (uint8, N x H x W, or N x H x W x 3 for colour) with int64 labels."""

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str
    class_names: list[str]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int]:
        """(height, width)."""
        return tuple(self.train_images.shape[1:3])  # type: ignore[return-value]

    @property
    def channels(self) -> int:
        """1 for grayscale (N, H, W) images, 3 for colour (N, H, W, 3)."""
        return 1 if self.train_images.ndim == 3 else int(self.train_images.shape[3])


def known_datasets() -> list[str]:
    return sorted(["digits", "cifar10", *SOURCES])


def load_images(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
    sha256: Mapping[str, str] | None = None,
) -> ImageDataset:
    """Load ``mnist``, ``fashion-mnist`` (IDX files, see ``sources``), ``cifar10`` (see ``cifar``)
    or ``digits`` (bundled)."""
    if name == "digits":
        return load_digits()
    if name == "cifar10":
        return load_cifar(data_dir, download=download, mirrors=mirrors,
                          sha256=None if sha256 is None else sha256.get(cifar.ARCHIVE))
    if name not in SOURCES:
        raise ConfigError(f"unknown dataset {name!r}; known: {', '.join(known_datasets())}")
    located = locate(name, data_dir, download=download, mirrors=mirrors, sha256=sha256)
    return load_located(name, located)


def load_located(name: str, located: Located) -> ImageDataset:
    """Read and cross-check the four IDX files found by ``locate``."""
    class_names = list(SOURCES[name].class_names)
    splits = {}
    for split in ("train", "test"):
        image_path, label_path = located.files[f"{split}_images"], located.files[f"{split}_labels"]
        images, labels = read_idx(image_path), read_idx(label_path)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise DataError(f"{image_path}: expected uint8 images N x H x W, found {images.dtype} {images.shape}")
        if labels.ndim != 1 or labels.dtype != np.uint8:
            raise DataError(f"{label_path}: expected uint8 labels of shape (N,), found {labels.dtype} {labels.shape}")
        if len(images) != len(labels):
            raise DataError(
                f"{image_path} holds {len(images)} images but {label_path} holds {len(labels)} labels; "
                "the pair must come from the same release"
            )
        if len(images) == 0:  # caught here: an empty split fails much later as a NaN mean or an empty batch
            raise DataError(f"{image_path} holds 0 images; replace it with the {split} images of {name}")
        if labels.size and labels.max() >= len(class_names):
            raise DataError(f"{label_path}: label {labels.max()} is out of range for {len(class_names)} classes")
        splits[split] = (images, labels.astype(np.int64))
    if splits["train"][0].shape[1:] != splits["test"][0].shape[1:]:
        raise DataError(f"{located.folder}: train images {splits['train'][0].shape[1:]} and test images "
                        f"{splits['test'][0].shape[1:]} differ in size")
    return ImageDataset(
        name=name,
        train_images=splits["train"][0],
        train_labels=splits["train"][1],
        test_images=splits["test"][0],
        test_labels=splits["test"][1],
        source=located.origin,
        class_names=class_names,
    )


def load_cifar(data_dir: str | os.PathLike | None = None, *, download: bool = True,
               mirrors: Sequence[str] | None = None, sha256: str | None = None) -> ImageDataset:
    """CIFAR-10 as channels-last uint8 (N, 32, 32, 3); see ``trainlab.data.cifar`` for the lookup."""
    arrays, origin = cifar.load_cifar10(data_dir, download_ok=download, mirrors=mirrors, sha256=sha256)
    return ImageDataset(name="cifar10", source=origin, **arrays)


def load_digits() -> ImageDataset:
    """scikit-learn's bundled 8x8 digits (1797 images), rescaled 0..16 -> 0..255.

    The 75/25 split is stratified with a fixed seed so every run and every
    user evaluates on the same 450 test images.
    """
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    bunch = sklearn_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    labels = bunch.target.astype(np.int64)
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=DIGITS_TEST_FRACTION, stratify=labels, random_state=DIGITS_SPLIT_SEED
    )
    train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)
    return ImageDataset(
        name="digits",
        train_images=images[train_idx],
        train_labels=labels[train_idx],
        test_images=images[test_idx],
        test_labels=labels[test_idx],
        source="scikit-learn bundled (sklearn.datasets.load_digits)",
        class_names=[str(d) for d in range(10)],
    )


def to_tensor(images: np.ndarray | torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """uint8 images (N, H, W) -> float32 (N, H*W) in [0, 1] on ``device``.

    The uint8 array is moved first and converted there: 4x less to copy to a GPU.
    """
    t = torch.as_tensor(images)
    if t.dtype != torch.uint8:
        raise TypeError(f"to_tensor expects uint8 images, got {t.dtype}")
    t = t.to(device)
    return t.reshape(t.shape[0], -1).to(torch.float32).div_(255.0)


def image_tensor(images: np.ndarray | torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """uint8 images (N, H, W) or channels-last (N, H, W, C) -> uint8 (N, C, H, W) on ``device``.

    Images stay uint8 on the device (4x less memory than float); augmentation and
    the conversion to float happen per batch there.
    """
    t = torch.as_tensor(images)
    if t.dtype != torch.uint8:
        raise TypeError(f"image_tensor expects uint8 images, got {t.dtype}")
    t = t.to(device)
    if t.ndim == 3:
        return t.unsqueeze(1)
    if t.ndim == 4:
        return t.permute(0, 3, 1, 2).contiguous()
    raise ValueError(f"image_tensor expects (N, H, W) or (N, H, W, C) images, got shape {tuple(t.shape)}")
