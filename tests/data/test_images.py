"""Loaded datasets: digits (bundled), the real MNIST test set and Debian's Fashion-MNIST, to_tensor, describe."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from trainlab.data import describe, fetch, load_images, read_idx, to_tensor
from trainlab.data.sources import HIDE_SYSTEM_DATA, SOURCES, file_sha256

MNIST_T10K = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist-t10k"
# Published class counts of the MNIST test set (LeCun et al.): 980 zeros, 1135 ones, ...
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_digits_needs_no_files_and_has_a_fixed_stratified_split(isolated):
    ds = load_images("digits")
    assert ds.source.startswith("scikit-learn bundled")
    assert len(ds.train_images) + len(ds.test_images) == 1797
    assert len(ds.test_images) == 450  # ceil(0.25 * 1797)
    assert ds.train_images.dtype == np.uint8 and ds.train_images.shape[1:] == (8, 8)
    assert ds.train_labels.dtype == np.int64
    assert ds.train_images.max() == 255 and ds.train_images.min() == 0
    # every image is one of sklearn's, rescaled 0..16 -> 0..255
    ref = load_digits()
    ref_images = np.rint(ref.images * 255 / 16).astype(np.uint8).reshape(len(ref.images), -1)
    ref_rows = {row.tobytes(): int(label) for row, label in zip(ref_images, ref.target, strict=True)}
    for img, label in zip(ds.test_images.reshape(len(ds.test_images), -1), ds.test_labels, strict=True):
        assert ref_rows[img.tobytes()] == label
    # stratified: each class's test share is within one sample of 25 %
    all_counts = np.bincount(ref.target)
    test_counts = np.bincount(ds.test_labels, minlength=10)
    assert np.all(np.abs(test_counts - all_counts * 0.25) <= 1)
    # fixed: a second load gives the same test set
    np.testing.assert_array_equal(load_images("digits").test_images, ds.test_images)
    assert "scikit-learn bundled" in describe("digits")


def test_describe_counts_per_split_and_class(isolated, make_dataset):
    make_dataset(isolated.tmp / "d", n_train=23, n_test=7)  # labels 0..9 cycling
    text = describe("fashion-mnist", isolated.tmp / "d")
    rows = {line.split()[0]: line.split()[-2:] for line in text.splitlines() if line.strip()[:1].isdigit()}
    assert rows["0"] == ["3", "1"] and rows["3"] == ["2", "1"] and rows["7"] == ["2", "0"] and rows["9"] == ["2", "0"]
    assert "Ankle boot" in text and str(isolated.tmp / "d") in text and "(23, 4, 3)" in text
    assert text.splitlines()[-1].split()[-2:] == ["23", "7"]


def test_to_tensor_scales_flattens_and_keeps_device():
    images = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    t = to_tensor(images, torch.device("cpu"))
    assert t.dtype == torch.float32 and t.shape == (1, 4) and t.device.type == "cpu"
    torch.testing.assert_close(t, torch.tensor([[0.0, 1.0, 0.2, 0.4]]))
    with pytest.raises(TypeError):
        to_tensor(images.astype(np.float32), "cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_to_tensor_builds_on_cuda():
    images = np.random.default_rng(0).integers(0, 256, size=(5, 3, 4), dtype=np.uint8)
    t = to_tensor(images, torch.device("cuda"))
    assert t.is_cuda and t.shape == (5, 12)
    torch.testing.assert_close(t.cpu(), to_tensor(images, "cpu"))


@pytest.mark.skipif(not MNIST_T10K.is_dir(), reason="shared MNIST test set absent")
def test_real_mnist_test_set(isolated, tmp_path):
    images = read_idx(MNIST_T10K / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(MNIST_T10K / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == MNIST_TEST_COUNTS
    # the shared copy is byte-identical to the published download
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert file_sha256(MNIST_T10K / name) == SOURCES["mnist"].sha256[name]
    # and loads through load_images (test files standing in for the train pair)
    folder = tmp_path / "mnist"
    folder.mkdir()
    for split in ("train", "t10k"):
        (folder / f"{split}-images-idx3-ubyte.gz").symlink_to(MNIST_T10K / "t10k-images-idx3-ubyte.gz")
        (folder / f"{split}-labels-idx1-ubyte.gz").symlink_to(MNIST_T10K / "t10k-labels-idx1-ubyte.gz")
    ds = load_images("mnist", folder)
    assert np.bincount(ds.test_labels).tolist() == MNIST_TEST_COUNTS
    assert ds.test_labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]  # the famous first ten


DEBIAN_FASHION = SOURCES["fashion-mnist"].system_dirs[0]


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="dataset-fashion-mnist not installed")
def test_debian_fashion_mnist_loads_balanced(monkeypatch, tmp_path):
    monkeypatch.delenv(HIDE_SYSTEM_DATA)  # this test is about the system copy
    monkeypatch.setenv("TRAINLAB_DATA", str(tmp_path / "empty"))  # skip any user cache
    ds = load_images("fashion-mnist", download=False)
    assert str(DEBIAN_FASHION) in ds.source
    assert ds.train_images.shape == (60000, 28, 28) and ds.test_images.shape == (10000, 28, 28)
    assert np.bincount(ds.train_labels).tolist() == [6000] * 10
    assert np.bincount(ds.test_labels).tolist() == [1000] * 10


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="dataset-fashion-mnist not installed")
def test_fetch_copies_verified_debian_copy(monkeypatch, tmp_path):
    monkeypatch.delenv(HIDE_SYSTEM_DATA)  # this test is about the system copy
    monkeypatch.setenv("TRAINLAB_DATA", str(tmp_path / "cache"))
    target = fetch("fashion-mnist")
    assert target == tmp_path / "cache" / "fashion-mnist"
    for path in DEBIAN_FASHION.glob("*.gz"):
        assert (target / path.name).read_bytes() == path.read_bytes()
    assert "cache" in load_images("fashion-mnist", download=False).source
