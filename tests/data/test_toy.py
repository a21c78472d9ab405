"""Toy generators: shapes, scaling, labels, the study's parameters; .npy loading errors."""

from pathlib import Path

import numpy as np
import pytest

from trainlab.data.toy import TOY_DATASETS, helix_labels, helix_points, load_array, make_toy, manycircles
from trainlab.errors import ConfigError, DataError

HELIX = Path(__file__).resolve().parents[3] / "shared" / "data" / "helix.npy"


@pytest.mark.parametrize("name", TOY_DATASETS)
def test_shapes_ranges_and_labels(name):
    X, y = make_toy(name, n=600)
    d = 3 if name == "helix" else 2
    assert X.shape == (600, d) and X.dtype == np.float32
    assert y.shape == (600,) and y.dtype == np.int64
    np.testing.assert_allclose(X.min(0), -1, atol=1e-6)
    np.testing.assert_allclose(X.max(0), 1, atol=1e-6)
    n_classes = 8 if name == "manycircles" else 2
    assert set(np.unique(y)) == set(range(n_classes))
    X2, y2 = make_toy(name, n=600)
    np.testing.assert_array_equal(X, X2)  # same seed, same set
    np.testing.assert_array_equal(y, y2)


def test_default_sizes():
    assert make_toy("moons")[0].shape == (8000, 2)
    assert make_toy("helix")[0].shape == (10000, 3)


def test_manycircles_groups_sit_on_the_circle():
    X, y = manycircles(8000, seed=1)  # raw, before min-max scaling
    centres = np.array([X[y == g].mean(0) for g in range(8)])
    np.testing.assert_allclose(np.hypot(centres[:, 0], centres[:, 1]), 1, atol=0.04)
    angles = np.sort(np.mod(np.arctan2(centres[:, 1], centres[:, 0]), 2 * np.pi))
    # eight evenly spaced groups: consecutive centre angles differ by 2*pi/8
    np.testing.assert_allclose(np.diff(angles), 2 * np.pi / 8, atol=0.05)
    spread = np.concatenate([X[y == g] - centres[g] for g in range(8)])
    np.testing.assert_allclose(spread.std(0), 0.25, rtol=0.05)


def test_blobs_prior_and_mixture():
    X, y = make_toy("blobs", n=20000, seed=3)
    assert abs(y.mean() - 0.2) < 0.01  # positive prior 0.2
    # positives form two blobs: the upper-right one (the 80% component) lies above the diagonal midline
    upper = (X[y == 1].sum(1) > 0.5).mean()
    assert abs(upper - 0.8) < 0.03


def test_helix_labels_follow_the_bernoulli_rule():
    X = helix_points(20000, 0)
    y = helix_labels(X, seed=42)
    p = (np.sin(4 * X[:, 0] * X[:, 1] * X[:, 2]) + 1) / 2
    # E[y | p] = p: compare in bins of p
    bins = np.digitize(p, [0.25, 0.5, 0.75])
    for b in range(4):
        sel = bins == b
        assert abs(y[sel].mean() - p[sel].mean()) < 0.03


def test_helix_labels_are_no_more_predictable_than_bayes():
    # labels are Bernoulli(p(x)): the best rule (p > 1/2) is right E[max(p, 1-p)] of the time, no more
    X, y = make_toy("helix", n=20000)
    raw = helix_points(20000, 42)
    p = (np.sin(4 * raw[:, 0] * raw[:, 1] * raw[:, 2]) + 1) / 2
    assert abs(((p > 0.5) == y).mean() - np.maximum(p, 1 - p).mean()) < 0.015


@pytest.mark.skipif(not HELIX.is_file(), reason="../shared/data/helix.npy not available")
def test_generated_helix_matches_the_study_file():
    ref = np.load(HELIX)
    ours = helix_points(len(ref), 42)
    np.testing.assert_allclose(ours.mean(0), ref.mean(0), atol=0.03)
    np.testing.assert_allclose(ours.std(0), ref.std(0), atol=0.02)
    np.testing.assert_allclose(np.hypot(ours[:, 0], ours[:, 1]).std(), np.hypot(ref[:, 0], ref[:, 1]).std(), rtol=0.1)
    # the same winding: the angle-vs-height fit of the file explains our points just as well
    def coherence(a):
        return abs(np.exp(1j * (np.arctan2(a[:, 1], a[:, 0]) - 13.85 * a[:, 2])).mean())
    assert abs(coherence(ours) - coherence(ref)) < 0.02
    X, y = make_toy("helix", helix_file=HELIX)
    assert X.shape == (len(ref), 3) and y.shape == (len(ref),)


def test_unknown_name_and_bad_n():
    with pytest.raises(ConfigError, match="moons"):
        make_toy("spirals")
    with pytest.raises(ConfigError):
        make_toy("moons", n=1)


def test_load_array_flattens_and_scales(tmp_path):
    data = np.arange(24, dtype=np.float64).reshape(4, 3, 2)
    np.save(tmp_path / "x.npy", data)
    np.save(tmp_path / "y.npy", np.array([0, 1, 1, 0]))
    X, y = load_array(tmp_path / "x.npy", tmp_path / "y.npy")
    assert X.shape == (4, 6) and X.dtype == np.float32
    np.testing.assert_allclose(X[0], -1) and np.testing.assert_allclose(X[-1], 1)
    assert y.tolist() == [0, 1, 1, 0]
    raw, none = load_array(tmp_path / "x.npy", scale=False)
    np.testing.assert_array_equal(raw, data.reshape(4, 6)) and none is None


def test_load_array_rejects_bad_files(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_array(tmp_path / "missing.npy")
    (tmp_path / "junk.npy").write_bytes(b"not an array")
    with pytest.raises(DataError):
        load_array(tmp_path / "junk.npy")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="pickle"):
        load_array(tmp_path / "obj.npy")
    np.save(tmp_path / "x.npy", np.zeros((5, 2)))
    np.save(tmp_path / "y.npy", np.zeros(4, dtype=np.int64))
    with pytest.raises(DataError, match="labels"):
        load_array(tmp_path / "x.npy", tmp_path / "y.npy")
