"""Binary metrics: the stacked version against scikit-learn, undefined cases as NaN, F1-optimal thresholds."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, f1_score, matthews_corrcoef

from trainlab.train.metrics import BINARY_METRICS, best_f1_threshold, binary_metrics, binary_metrics_stacked


def test_binary_metrics_are_sklearns_where_defined():
    y = np.array([0, 0, 1, 1, 1, 0, 0, 1])
    pred = np.array([0, 1, 1, 0, 1, 0, 0, 1])
    scores = np.array([0.1, 0.7, 0.9, 0.3, 0.8, 0.2, 0.4, 0.95])
    m = binary_metrics(y, pred, scores)
    assert set(m) == set(BINARY_METRICS)
    assert m["f1"] == pytest.approx(f1_score(y, pred)) == pytest.approx(0.75)
    assert m["precision"] == pytest.approx(0.75) and m["recall"] == pytest.approx(0.75)
    assert m["acc"] == pytest.approx(75.0) and m["balanced_acc"] == pytest.approx(0.75)
    assert m["ap"] == pytest.approx(average_precision_score(y, scores))
    assert m["mcc"] == pytest.approx(matthews_corrcoef(y, pred)) == pytest.approx(0.5)


def test_undefined_metrics_are_nan_not_a_made_up_number():
    no_positives = binary_metrics([0, 0, 0, 0], [0, 0, 0, 0], [0.1, 0.2, 0.3, 0.4])
    assert math.isnan(no_positives["f1"])  # TP + FP + FN = 0: the study wrote 1e-6 here
    assert math.isnan(no_positives["precision"]) and math.isnan(no_positives["recall"])
    assert math.isnan(no_positives["ap"]) and math.isnan(no_positives["mcc"])
    assert no_positives["acc"] == 100.0 and no_positives["balanced_acc"] == 1.0
    # A false positive and no positive label: F1 is defined, and 0.
    false_alarm = binary_metrics([0, 0, 0, 0], [1, 0, 0, 0], [0.9, 0.2, 0.3, 0.4])
    assert false_alarm["f1"] == 0.0 and false_alarm["precision"] == 0.0 and math.isnan(false_alarm["recall"])
    # Positives that are all missed: F1 0, precision undefined.
    missed = binary_metrics([1, 0, 1, 0], [0, 0, 0, 0], [0.1, 0.2, 0.3, 0.4])
    assert missed["f1"] == 0.0 and math.isnan(missed["precision"]) and missed["recall"] == 0.0


def _cases():
    label = st.integers(0, 1)
    return st.integers(1, 40).flatmap(lambda n: st.tuples(
        st.lists(label, min_size=n, max_size=n),
        st.lists(st.lists(st.integers(-3, 3), min_size=n, max_size=n), min_size=1, max_size=4),  # ties galore
        st.lists(st.sampled_from([-2.5, -0.5, 0.0, 0.5, 2.5]), min_size=4, max_size=4),
    ))


@settings(max_examples=150, deadline=None)
@given(case=_cases())
def test_stacked_metrics_equal_sklearn_per_model(case):
    labels, score_rows, thresholds = case
    y = torch.tensor(labels)
    scores = torch.tensor(score_rows, dtype=torch.float32)
    thr = torch.tensor(thresholds[: len(score_rows)])
    stacked = binary_metrics_stacked(y, scores, thr)
    for m, (row, t) in enumerate(zip(score_rows, thr.tolist())):
        pred = (np.array(row) > t).astype(int)
        expected = binary_metrics(labels, pred, row)
        for key in BINARY_METRICS:
            np.testing.assert_allclose(stacked[key][m], expected[key], rtol=1e-9, atol=1e-12, err_msg=key)


@settings(max_examples=100, deadline=None)
@given(case=_cases())
def test_best_f1_threshold_is_the_best_cut(case):
    labels, score_rows, _ = case
    y, scores = np.array(labels), torch.tensor(score_rows, dtype=torch.float32)
    thr = best_f1_threshold(torch.tensor(labels), scores)
    for row, t in zip(score_rows, thr.tolist()):
        row = np.array(row)
        if y.sum() == 0:
            assert t == 0.0
            continue
        assert not np.any(row == t)  # never a sample's own score
        cuts = np.concatenate([np.unique(row) - 0.5, [row.max() + 0.5]])
        best = max(f1_score(y, (row > c).astype(int), zero_division=0.0) for c in cuts)
        assert f1_score(y, (row > t).astype(int), zero_division=0.0) == pytest.approx(best)


def test_threshold_moves_between_the_last_positive_and_the_next_negative():
    y = torch.tensor([0, 0, 0, 1, 0, 0])
    scores = torch.tensor([[-5.0, -4.0, -1.0, -2.0, -3.0, -6.0]])  # argmax (> 0) misses the positive
    assert binary_metrics_stacked(y, scores)["f1"][0] == 0.0
    thr = best_f1_threshold(y, scores)
    assert thr.tolist() == [-2.5]  # a negative (-1) ranks above the positive (-2): the best cut keeps both
    assert binary_metrics_stacked(y, scores, thr)["f1"][0] == pytest.approx(2 / 3)
