"""Subsets: class filters, seeded splits, every-Nth thinning, per-class samples (property tests)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from trainlab.data import every_nth, imbalanced_split, keep_classes, per_class, sparsify, train_val_split
from trainlab.errors import ConfigError, DataError

labels_st = st.lists(st.integers(0, 5), min_size=1, max_size=60).map(lambda x: np.array(x, dtype=np.int64))


@settings(max_examples=60, deadline=None)
@given(labels=labels_st, data=st.data())
def test_keep_classes_relabels_in_given_order(labels, data):
    present = sorted(set(labels.tolist()))
    classes = data.draw(st.permutations(present).flatmap(lambda p: st.integers(1, len(p)).map(lambda k: p[:k])))
    images = np.arange(len(labels) * 2).reshape(len(labels), 2)  # row i identifies sample i
    x, y = keep_classes(images, labels, classes)
    kept = np.flatnonzero(np.isin(labels, classes))  # oracle: which samples, in original order
    np.testing.assert_array_equal(x, images[kept])
    np.testing.assert_array_equal(y, [classes.index(c) for c in labels[kept]])
    assert y.dtype == labels.dtype


def test_keep_classes_on_torch_tensors_and_errors():
    labels = torch.tensor([5, 3, 8, 3, 5])
    images = torch.arange(10.0).reshape(5, 2)
    x, y = keep_classes(images, labels, [3, 5])
    assert y.tolist() == [1, 0, 0, 1] and x[:, 0].tolist() == [0.0, 2.0, 6.0, 8.0]
    assert labels.tolist() == [5, 3, 8, 3, 5]  # input untouched
    with pytest.raises(DataError, match="class 7"):
        keep_classes(images, labels, [3, 7])
    with pytest.raises(ConfigError):
        keep_classes(images, labels, [3, 3])


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 500), frac=st.floats(0.01, 0.99), seed=st.integers(0, 2**31))
def test_train_val_split_partitions(n, frac, seed):
    n_val = round(n * frac)
    if n_val in (0, n):
        with pytest.raises(ConfigError):
            train_val_split(n, frac, seed)
        return
    train, val = train_val_split(n, frac, seed)
    assert len(val) == n_val and len(train) == n - n_val
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(n))
    a, b = train_val_split(n, frac, seed)
    np.testing.assert_array_equal(a, train)
    np.testing.assert_array_equal(b, val)


def test_train_val_split_depends_on_seed_and_is_unbiased():
    assert not np.array_equal(train_val_split(1000, 0.2, 0)[1], train_val_split(1000, 0.2, 1)[1])
    # each index lands in validation with probability 0.2: over 200 seeds, mean membership ~ 0.2
    hits = np.zeros(50)
    for seed in range(200):
        hits[train_val_split(50, 0.2, seed)[1]] += 1
    assert abs(hits.mean() / 200 - 0.2) < 1e-12  # exactly 10 per split
    assert np.all(np.abs(hits / 200 - 0.2) < 0.2)  # no index is always/never chosen (binomial sd ~0.03)
    with pytest.raises(ConfigError):
        train_val_split(10, 1.0)


@settings(max_examples=60, deadline=None)
@given(labels=labels_st, cls=st.integers(0, 5), n=st.integers(1, 7), seed=st.none() | st.integers(0, 99))
def test_every_nth_thins_one_class(labels, cls, n, seed):
    idx = every_nth(labels, cls, n, seed=seed)
    members = np.flatnonzero(labels == cls)
    others = np.flatnonzero(labels != cls)
    assert np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(np.intersect1d(idx, others), others)  # other classes untouched
    kept = np.intersect1d(idx, members)
    assert len(kept) == len(members) // n  # the study's len(ones) // N
    if seed is None:
        np.testing.assert_array_equal(kept, members[n - 1 :: n])


def test_per_class_draws_k_of_each():
    labels = np.repeat(np.arange(4), [5, 9, 3, 7])
    idx = per_class(labels, 3, seed=1)
    assert np.bincount(labels[idx]).tolist() == [3, 3, 3, 3]
    assert len(np.unique(idx)) == 12
    np.testing.assert_array_equal(per_class(labels, 3, seed=1), idx)
    assert not np.array_equal(per_class(labels, 3, seed=2), idx)
    with pytest.raises(DataError, match="class 2"):
        per_class(labels, 4)


@settings(max_examples=60, deadline=None)
@given(labels=labels_st, cls=st.integers(0, 5), n=st.integers(1, 7), seed=st.integers(0, 99))
def test_sparsify_keeps_count_over_n_of_one_class_nested_in_n(labels, cls, n, seed):
    idx = sparsify(labels, cls, n, seed)
    members, others = np.flatnonzero(labels == cls), np.flatnonzero(labels != cls)
    assert np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(np.intersect1d(idx, others), others)
    kept = np.intersect1d(idx, members)
    assert len(kept) == len(members) // n  # the study's len(ones) // N
    # One seed: a sparser draw keeps a subset of a denser one.
    assert set(kept) <= set(sparsify(labels, cls, max(n - 1, 1), seed))


def test_sparsify_draws_fresh_samples_per_seed():
    labels = np.repeat([0, 1], [50, 1000])
    draws = [frozenset(sparsify(labels, 1, 100, seed).tolist()) - set(range(50)) for seed in range(20)]
    assert all(len(d) == 10 for d in draws)
    assert len(set(draws)) == 20  # ten of 1000: two seeds drawing the same ten is (practically) impossible
    # Every sample of the class is equally likely: each seed keeps 1 %, so over 20 seeds ~200 distinct.
    assert len(frozenset().union(*draws)) > 150


@settings(max_examples=60, deadline=None)
@given(labels=labels_st, cls=st.integers(0, 5), n=st.integers(1, 4), seed=st.integers(0, 99),
       frac=st.sampled_from([0.2, 0.5]))
def test_imbalanced_split_partitions_the_sparse_set_class_by_class(labels, cls, n, seed, frac):
    train, val = imbalanced_split(labels, cls, n, seed, val_fraction=frac)
    assert len(np.intersect1d(train, val)) == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), sparsify(labels, cls, n, seed))
    for c in np.unique(labels):
        count = int(np.sum(labels[np.concatenate([train, val])] == c))
        assert int(np.sum(labels[train] == c)) == int((1 - frac) * count)


def test_imbalanced_split_shares_the_other_classes_across_n():
    labels = np.repeat([0, 1], [400, 600])
    splits = {n: imbalanced_split(labels, 1, n, seed=3) for n in (10, 50, 200)}
    zeros = [tuple(t[labels[t] == 0]) for t, _ in splits.values()]
    assert len(set(zeros)) == 1 and len(zeros[0]) == 320
    ones = {n: set(t[labels[t] == 1]) | set(v[labels[v] == 1]) for n, (t, v) in splits.items()}
    assert ones[200] <= ones[50] <= ones[10] and [len(ones[n]) for n in (10, 50, 200)] == [60, 12, 3]
    assert imbalanced_split(labels, 1, 10, seed=4)[0].tolist() != splits[10][0].tolist()
    with pytest.raises(ConfigError):
        imbalanced_split(labels, 1, 0, seed=0)
