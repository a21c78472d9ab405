"""Evaluation metrics: losses on device-resident tensors, binary classification metrics.

Classification accuracy of one model lives in ``loop.evaluate``; the binary
metrics (precision, recall, F1, average precision, balanced accuracy, MCC) are
scikit-learn's, for one model or, with the same definitions, many at once.
"""

from __future__ import annotations

import math
import warnings
from typing import Callable, Sequence

import numpy as np
import torch
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    matthews_corrcoef,
    precision_recall_fscore_support,
)
from torch import nn


@torch.inference_mode()
def mean_loss(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    batch_size: int = 8192,
) -> float:
    """Mean of a mean-reduced ``loss_fn`` over all of (x, y), evaluated in chunks.

    Chunks are weighted by their size, so the result equals the loss over the whole set
    (for MSE: the mean over every element) whatever ``batch_size`` is.
    """
    model.eval()
    total = torch.zeros((), device=x.device)
    for start in range(0, x.shape[0], batch_size):
        xb, yb = x[start : start + batch_size], y[start : start + batch_size]
        total += loss_fn(model(xb), yb) * xb.shape[0]
    return (total / max(x.shape[0], 1)).item()


# -- binary classification metrics (positive class 1) ------------------------------------------------

BINARY_METRICS = ("acc", "precision", "recall", "f1", "ap", "balanced_acc", "mcc")
"""Keys of :func:`binary_metrics` and :func:`binary_metrics_stacked`."""


def binary_metrics(y_true: Sequence[int], y_pred: Sequence[int], scores: Sequence[float]) -> dict[str, float]:
    """scikit-learn's metrics of one binary classifier; NaN wherever a metric is undefined.

    ``acc`` (percent), ``precision``, ``recall``, ``f1`` (positive class 1),
    ``ap`` (average precision of ``scores``, higher = more positive),
    ``balanced_acc`` (mean recall over the classes present in ``y_true``) and
    ``mcc``. Undefined means a zero denominator: precision with nothing
    predicted positive, recall and ``ap`` with no positive label, F1 with
    neither (TP + FP + FN = 0), MCC with a constant ``y_true`` or ``y_pred``;
    scikit-learn would put 0 (or 1e-6, as some hand-written F1s do) there, a
    number that was never measured.
    """
    y_true, y_pred, scores = np.asarray(y_true), np.asarray(y_pred), np.asarray(scores)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the undefined cases are handled below
        precision, recall, f1, _ = precision_recall_fscore_support(
            y_true, y_pred, average="binary", pos_label=1, zero_division=np.nan
        )
        has_positive = bool(np.any(y_true == 1))
        constant = len(np.unique(y_true)) < 2 or len(np.unique(y_pred)) < 2
        return {
            "acc": 100.0 * accuracy_score(y_true, y_pred),
            "precision": float(precision),
            "recall": float(recall),
            "f1": float(f1),
            "ap": float(average_precision_score(y_true, scores)) if has_positive else math.nan,
            "balanced_acc": float(balanced_accuracy_score(y_true, y_pred)),
            "mcc": math.nan if constant else float(matthews_corrcoef(y_true, y_pred)),
        }


@torch.inference_mode()
def binary_metrics_stacked(
    y_true: torch.Tensor, scores: torch.Tensor, threshold: torch.Tensor | float = 0.0
) -> dict[str, np.ndarray]:
    """:func:`binary_metrics` of many classifiers on one set at once: arrays of shape (models,).

    ``scores`` is (models, samples), for instance the logit difference
    ``z1 - z0``; model m predicts 1 where ``scores[m] > threshold[m]`` (so a
    threshold of 0 is the argmax of two logits, ties going to class 0 as argmax's
    do). The numbers equal scikit-learn's (the tests check it, ties in the
    scores included); scikit-learn itself takes milliseconds per call and model,
    longer than training hundreds of these models. The counts and ratios are float64 on
    the CPU (one copy of the scores; an Apple GPU has no float64).
    """
    scores, y = scores.cpu(), y_true.cpu().bool()
    thr = torch.as_tensor(threshold, dtype=scores.dtype).cpu().reshape(-1, 1)
    pred = scores > thr
    pos = y.sum().double()
    tp = (pred & y).sum(1).double()
    fp = (pred & ~y).sum(1).double()
    fn = pos - tp
    tn = (~y).sum().double() - fp
    n = float(y.numel())
    nan = torch.tensor(math.nan, dtype=torch.float64)

    def ratio(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.where(b > 0, a / b.clamp_min(1e-300), nan)

    recall_neg = ratio(tn, tn + fp)
    recall_pos = ratio(tp, tp + fn)
    present = torch.stack([recall_neg, recall_pos])
    mcc_den = ((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)).sqrt()
    out = {
        "acc": 100.0 * (tp + tn) / n,
        "precision": ratio(tp, tp + fp),
        "recall": recall_pos,
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
        "ap": _average_precision(y, scores) if pos > 0 else nan.expand(scores.shape[0]),
        "balanced_acc": present.nanmean(0),  # mean recall over the classes present in y_true
        "mcc": ratio(tp * tn - fp * fn, mcc_den),
    }
    return {k: v.numpy().astype(np.float64) for k, v in out.items()}


def _ranked(y: torch.Tensor, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Scores sorted high to low per model, labels in that order, true positives so far, last-of-ties mask."""
    order = scores.argsort(dim=1, descending=True, stable=True)
    s = scores.gather(1, order)
    yy = y[order].double()
    tp = yy.cumsum(1)
    last = torch.ones_like(s, dtype=torch.bool)
    last[:, :-1] = s[:, :-1] != s[:, 1:]
    return s, yy, tp, last


def _average_precision(y: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """scikit-learn's AP: the mean over positives of the precision at the lowest threshold keeping them.

    Tied scores share one threshold, so every member of a tie gets the precision
    at the end of its tie group.
    """
    _, yy, tp, last = _ranked(y, scores)
    m = scores.shape[1]
    k = torch.arange(1, m + 1, device=scores.device, dtype=torch.float64)
    precision = tp / k
    positions = torch.arange(m, device=scores.device).expand_as(last)
    group_end = torch.where(last, positions, m).flip(1).cummin(1).values.flip(1)
    return (precision.gather(1, group_end) * yy).sum(1) / yy.sum(1)


@torch.inference_mode()
def best_f1_threshold(y_true: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """Per model, the threshold on ``scores`` (predict 1 where ``score > threshold``) with the best F1 on this set.

    Candidates are the gaps between consecutive distinct scores (the threshold is
    the midpoint of the gap, not a sample's own score); among equally good cuts
    the highest threshold wins. A set without positives cannot rank cuts by F1:
    those models keep threshold 0 (the argmax decision). Shape (models,), on ``scores``' device;
    the search runs in float64 on the CPU (one copy of the scores; an Apple GPU has no float64).
    """
    device, scores, y = scores.device, scores.cpu(), y_true.cpu().bool()
    s, _, tp, last = _ranked(y, scores)
    pos = y.sum().double()
    if pos == 0:
        return torch.zeros(scores.shape[0], dtype=scores.dtype, device=device)
    k = torch.arange(1, s.shape[1] + 1, device=s.device, dtype=torch.float64)
    f1 = torch.where(last, 2 * tp / (k + pos), -1.0)  # F1 = 2TP / (2TP + FP + FN) = 2TP / (predicted + positives)
    best = f1.argmax(1, keepdim=True)
    here = s.gather(1, best)
    below = s.gather(1, (best + 1).clamp_max(s.shape[1] - 1))
    at_end = best == s.shape[1] - 1  # best to call everything positive: go below the lowest score
    return torch.where(at_end, here - 1.0, (here + below) / 2).squeeze(1).to(device)
