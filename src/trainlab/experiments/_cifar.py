"""What the CIFAR-10 recipes share: the dataset choice and uint8 image tensors on the device.

CIFAR-10 cannot be downloaded everywhere, so every CIFAR recipe also runs on the
grayscale sets (Fashion-MNIST, MNIST, scikit-learn's digits); images stay uint8
``(N, C, H, W)`` on the device with C = 3 or 1, and the networks adapt to C and
the image size.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar, Optional, Self, Sequence

import torch

from trainlab.data import ImageDataset, image_tensor, keep_classes, load_images
from trainlab.data.subsets import random_subset
from trainlab.config import check
from trainlab.experiments._data import ImageDataConfig
from trainlab.train.cnn import CNNTraining

Pair = tuple[torch.Tensor, torch.Tensor]

MIRROR_SAFE = ("cifar10", "fashion-mnist")  # a mirrored 2 or 7 is no digit; mirrored clothes and objects are


@dataclass
class CifarDataConfig(ImageDataConfig):
    """:class:`ImageDataConfig` with CIFAR-10 first and its tarball as data_dir."""

    DATASETS: ClassVar[tuple[str, ...]] = ("cifar10", "fashion-mnist", "mnist", "digits")

    dataset: str = "cifar10"
    """cifar10, fashion-mnist, mnist or digits (scikit-learn's 8x8 digits, no files needed)."""
    data_dir: Optional[str] = None
    """Folder with cifar-10-python.tar.gz or its extracted folder (or the four IDX files); None: cache, then download."""


@dataclass
class CNNConfig(CifarDataConfig, CNNTraining):
    """The data and training settings of the recipes that train ``nn.cnn.FastCNN``.

    ``flip`` left at None is filled in here from the dataset, so config.yaml records it.
    ``width`` and ``batch_size`` left at None depend on the hardware (airbench94's on a GPU,
    narrower and smaller on the CPU): the recipe fills them in with :meth:`for_device` once
    it knows its device, never the config itself, so that a config's hash (and its run
    folder's name) is the same on every machine.
    """

    GPU_WIDTH: ClassVar[int] = 64  # airbench94's base width
    CPU_WIDTH: ClassVar[int] = 16  # Fashion-MNIST >= 93 % in < 10 min of 2 CPU cores (measured, README)

    width: Optional[int] = None
    """Base width w (blocks of w, 4w, 4w channels); None: 64 (airbench94) on a GPU, 16 on the CPU."""
    batch_size: Optional[int] = None
    """Images per step (over all processes when data-parallel); None: 1024 (airbench94) on a GPU, 512 on the CPU."""
    flip: Optional[bool] = None
    """Random flips in training and mirrored test views; None: on for cifar10 and fashion-mnist, off for digits."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.flip is None:
            self.flip = self.dataset in MIRROR_SAFE
        if self.batch_size is not None:  # None is checked once for_device fills it in
            self.check_training()
        check(self.width is None or self.width >= 1, f"width must be >= 1 or null (got {self.width})")

    def for_device(self, device: torch.device) -> Self:
        """This config with ``width`` and ``batch_size`` left at None filled in for ``device``."""
        on_gpu = torch.device(device).type == "cuda"
        return replace(self, width=self.width if self.width is not None else
                       self.GPU_WIDTH if on_gpu else self.CPU_WIDTH,
                       batch_size=self.batch_size if self.batch_size is not None else 1024 if on_gpu else 512)


@dataclass
class ImageTensors:
    """A dataset's train and test images as uint8 (N, C, H, W) with int64 labels, on one device."""

    data: ImageDataset
    train: Pair
    test: Pair
    class_names: list[str]

    @property
    def channels(self) -> int:
        return int(self.train[0].shape[1])

    @property
    def image_size(self) -> int:
        return int(min(self.train[0].shape[2:]))

    def describe(self) -> str:
        c, h, w = self.train[0].shape[1:]
        return (f"{self.data.name} ({self.data.source}): {len(self.train[1])} training and {len(self.test[1])} test "
                f"images of {h}x{w}{'' if c == 1 else f'x{c}'}, classes {', '.join(self.class_names)}")


def load_tensors(cfg: ImageDataConfig, device: torch.device, classes: Sequence[int] | None = None) -> ImageTensors:
    """The configured dataset on ``device``: ``classes`` kept (relabelled 0..k-1 in that order),
    then ``cfg.train_limit`` training images drawn with ``cfg.seed``."""
    data = load_images(cfg.dataset, cfg.data_dir)
    train_x, train_y, test_x, test_y = data.train_images, data.train_labels, data.test_images, data.test_labels
    names = list(data.class_names)
    if classes is not None:
        train_x, train_y = keep_classes(train_x, train_y, classes)
        test_x, test_y = keep_classes(test_x, test_y, classes)
        names = [names[c] for c in classes]
    keep = random_subset(len(train_y), cfg.train_limit, seed=cfg.seed)
    train_x, train_y = train_x[keep], train_y[keep]
    return ImageTensors(
        data=data,
        train=(image_tensor(train_x, device), torch.as_tensor(train_y, device=device)),
        test=(image_tensor(test_x, device), torch.as_tensor(test_y, device=device)),
        class_names=names,
    )


def per_class_accuracy(predictions: torch.Tensor, labels: torch.Tensor, class_names: Sequence[str]) -> list[dict]:
    """One row per class: its index, name, test images and accuracy in percent."""
    pred, true = predictions.cpu().numpy(), labels.cpu().numpy()
    rows = []
    for c, name in enumerate(class_names):
        mask = true == c
        rows.append({"class": c, "name": name, "images": int(mask.sum()),
                     "accuracy": float(100.0 * (pred[mask] == c).mean()) if mask.any() else float("nan")})
    return rows

