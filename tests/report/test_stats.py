import numpy as np
import pytest
from scipy import stats

from trainlab.report.stats import mean_and_std, paired_difference


@pytest.mark.parametrize("seed", range(20))
def test_paired_difference_is_the_paired_t_test(seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=5)
    b = a - rng.normal(loc=0.8, size=5)
    mean, sign = paired_difference(a, b)
    assert mean == pytest.approx(np.mean(a - b))
    p = stats.ttest_rel(a, b).pvalue
    assert (sign != 0) == (p < 0.05)
    assert sign == 0 or sign == np.sign(mean)


def test_identical_or_single_pairs_are_within_the_spread():
    assert paired_difference([0.5, 0.7], [0.5, 0.7])[1] == 0  # zero difference, zero spread: not above zero
    assert paired_difference([1.0], [0.0]) == (1.0, 0)
    assert paired_difference([0.9, 0.91, 0.92], [0.1, 0.1, 0.1])[1] == 1


def test_mean_and_std_is_the_sample_spread_of_repeats():
    assert mean_and_std([1.0, 2.0, 4.0]) == (pytest.approx(7 / 3), pytest.approx(np.std([1, 2, 4], ddof=1)))
    mean, std = mean_and_std([0.5])
    assert mean == 0.5 and np.isnan(std)
    assert all(np.isnan(mean_and_std([])))
    assert mean_and_std([1.0, float("nan"), 3.0], skip_nan=True) == (2.0, pytest.approx(np.sqrt(2)))
    assert np.isnan(mean_and_std([1.0, float("nan")])[0])
