"""Datasets in real formats: IDX (MNIST, Fashion-MNIST), CIFAR-10 batches, scikit-learn digits, subsets.

``load_images(name)`` returns an ``ImageDataset`` of uint8 arrays; ``to_tensor``
puts images on a device once, as float32 in [0, 1]. See ``sources`` for where
files are looked for and how downloads are verified.
"""

from trainlab.data.idx import read_idx, write_idx
from trainlab.data.images import ImageDataset, image_tensor, known_datasets, load_images, to_tensor
from trainlab.data.info import describe, fetch
from trainlab.data.splits import describe_splits, device_splits
from trainlab.data.subsets import (
    every_nth,
    imbalanced_split,
    keep_classes,
    per_class,
    random_subset,
    sparsify,
    train_val_split,
)

__all__ = [
    "ImageDataset",
    "describe",
    "describe_splits",
    "device_splits",
    "every_nth",
    "fetch",
    "imbalanced_split",
    "image_tensor",
    "keep_classes",
    "known_datasets",
    "load_images",
    "per_class",
    "random_subset",
    "read_idx",
    "sparsify",
    "to_tensor",
    "train_val_split",
    "write_idx",
]
