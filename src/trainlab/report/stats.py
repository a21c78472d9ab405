"""Repeats (seeds) summarised: mean with spread, and paired comparisons for verdicts."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import stats


def mean_and_std(values: Sequence[float], skip_nan: bool = False) -> tuple[float, float]:
    """Mean and sample std (ddof=1) of repeated measurements: the one mean-with-spread rule.

    The std is NaN with fewer than two values, both are NaN with none. ``skip_nan`` leaves
    NaN values (undefined metrics) out first.
    """
    arr = np.array([float(v) for v in values], dtype=float)
    if skip_nan:
        arr = arr[~np.isnan(arr)]
    mean = float(np.mean(arr)) if len(arr) else math.nan
    return mean, (float(np.std(arr, ddof=1)) if len(arr) > 1 else math.nan)


def paired_difference(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> tuple[float, int]:
    """Mean of ``a - b`` over paired repeats (same seeds) and where its t-interval lies.

    Returns ``(mean, sign)``: sign +1 when the two-sided ``confidence`` interval of the
    mean difference lies above zero, -1 below zero, 0 when it contains zero (the
    difference is within the seed-to-seed spread) or fewer than two pairs exist.
    This is the paired t-test at level ``1 - confidence``.
    """
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if len(d) < 2:
        return (float(d.mean()) if len(d) else math.nan), 0
    mean = float(d.mean())
    half = stats.t.ppf(0.5 + confidence / 2, len(d) - 1) * float(d.std(ddof=1)) / math.sqrt(len(d))
    return mean, (1 if mean - half > 0 else -1 if mean + half < 0 else 0)
