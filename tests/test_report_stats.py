import numpy as np
import pytest
from scipy import stats

from trainlab.report.stats import paired_difference


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
