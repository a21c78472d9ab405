"""The one result type and status vocabulary every trainer reports."""

import math

import pytest

from trainlab.train.result import STATUSES, TrainResult, combined_status, loss_status


def test_statuses_are_the_four_words_tables_use():
    assert STATUSES == ("done", "diverged", "failed", "pruned")
    assert [combined_status(s) for s in (["done"], ["done", "pruned"], ["pruned", "diverged"], ["failed", "pruned"])] \
        == ["done", "pruned", "diverged", "failed"]
    assert [loss_status(x) for x in (0.5, math.nan, math.inf, -math.inf)] == ["done", "diverged", "diverged", "diverged"]


def test_any_other_status_is_refused():
    with pytest.raises(ValueError, match="ok"):
        TrainResult(status="ok", seconds=1.0, history=[])


def test_final_loss_averages_the_last_records():
    result = TrainResult(status="done", seconds=0.1, history=[{"step": i, "train_loss": float(i)} for i in range(1, 11)])
    assert result.final_loss() == 10.0
    assert result.final_loss(4) == pytest.approx((7 + 8 + 9 + 10) / 4)
    assert result.final_loss(100) == pytest.approx(5.5)
    assert math.isnan(TrainResult(status="diverged", seconds=0.0, history=[]).final_loss())
