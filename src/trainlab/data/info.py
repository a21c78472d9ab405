"""What `trainlab data info NAME` and `trainlab data fetch NAME` do."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from tabulate import tabulate

from trainlab.data import cifar
from trainlab.data.images import load_images, load_located
from trainlab.data.sources import (
    SOURCES,
    Located,
    cache_dir,
    cache_lock,
    download_all,
    file_sha256,
    find_files,
    get_source,
    locate,
    system_copy,
)
from trainlab.errors import ConfigError, DataError
from trainlab.files import atomic_copy


def describe(name: str, data_dir: str | os.PathLike | None = None) -> str:
    """Multi-line text: source, image shape, counts per split and per class.

    Never downloads: a missing dataset gives the DataError that says how to fetch it.
    """
    ds = load_images(name, data_dir, download=False)
    height, width = ds.image_shape
    k = ds.num_classes
    train_counts = np.bincount(ds.train_labels, minlength=k)
    test_counts = np.bincount(ds.test_labels, minlength=k)
    rows = [[c, ds.class_names[c], int(train_counts[c]), int(test_counts[c])] for c in range(k)]
    rows.append(["", "total", len(ds.train_labels), len(ds.test_labels)])
    head = [
        f"dataset  {ds.name}",
        f"source   {ds.source}",
        f"images   {height}x{width}{'' if ds.channels == 1 else f'x{ds.channels}'} uint8, pixel mean {ds.train_images.mean():.1f}/255 (train)",
        f"train    {ds.train_images.shape}   test {ds.test_images.shape}",
        f"classes  {k}",
        "",
    ]
    return "\n".join(head) + tabulate(rows, headers=["label", "class", "train", "test"], tablefmt="simple") + "\n"


def _verify_content(name: str, located: Located) -> None:
    """Check a system copy's decompressed bytes against the published content checksums."""
    expected = get_source(name).content_sha256
    for path in located.files.values():
        stem = path.name.removesuffix(".gz")
        if stem in expected and file_sha256(path, decompressed=True) != expected[stem]:
            raise DataError(f"{path}: content SHA-256 differs from the published {name} release; reinstall it")


def fetch(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    mirrors: Sequence[str] | None = None,
    sha256: Mapping[str, str] | None = None,
) -> Path:
    """Make sure the four files of ``name`` are in the cache; return the cache folder.

    Copies from ``data_dir`` (checked by reading it), else from a system copy
    (checked against the published content checksums), else downloads
    (checked by SHA-256). ``digits`` needs no files: returns scikit-learn's data folder.
    """
    if name == "digits":
        import sklearn.datasets

        return Path(sklearn.datasets.__file__).parent / "data"
    if name == cifar.NAME:
        return cifar.fetch_cifar10(data_dir, mirrors=mirrors, sha256=None if sha256 is None else sha256.get(cifar.ARCHIVE))
    if name not in SOURCES:
        raise ConfigError(f"unknown dataset {name!r}; known: digits, cifar10, {', '.join(sorted(SOURCES))}")
    if data_dir is not None:
        located = locate(name, data_dir, download=False)
        load_located(name, located)  # a corrupt or mismatched copy fails here, not later
    elif not find_files(cache_dir(name))[1]:
        return cache_dir(name)
    with cache_lock(name) as target:  # one process fills the cache; the others find it filled
        if data_dir is None:
            if not find_files(target)[1]:
                return target
            system = system_copy(get_source(name))
            if system is None:
                return download_all(name, target, mirrors=mirrors, sha256=sha256)
            located = Located(system, find_files(system)[0], str(system))
            _verify_content(name, located)
        if located.folder.resolve() == target.resolve():
            return target
        target.mkdir(parents=True, exist_ok=True)
        for path in located.files.values():
            atomic_copy(path, target / path.name)
    return target
