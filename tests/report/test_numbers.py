import math

import numpy as np
import pytest

from trainlab.report.numbers import (
    format_column, format_duration, format_number, format_value, is_percent, unit, with_unit,
)
from trainlab.report.tables import rows_to_csv, rows_to_markdown


@pytest.mark.parametrize("value, text", [
    (0.4426284369999962, "0.4426"),    # 4 significant digits
    (91.55555725097656, "91.56"),
    (1.1920928955078125e-07, "1.192e-07"),
    (0.001, "0.001"),
    (2.0, "2"),                        # no trailing zeros
    (12345.678, "12346"),              # from 10^4 on: whole numbers, not 1.235e+04
    (-0.0, "0"),
    (16, "16"), (1024, "1024"), (123456789, "123456789"),  # integers stay integers
    (np.int64(7), "7"), (np.float32(0.5), "0.5"),
    (float("nan"), "n/a"), (None, "n/a"),  # NaN, and NaN as summary.json stores it
    (float("inf"), "inf"),
    (True, "True"), ("linear", "linear"),
])
def test_four_significant_digits_integers_stay(value, text):
    assert format_number(value) == text


def test_percentages_get_two_decimals():
    assert format_value(96.70330047607422, "test_acc") == "96.70"
    assert format_value(100.0, "test_acc_bs2") == "100.00"
    assert format_value(0.3123, "val_acc_std") == "0.3123"  # a value of at most 1 is no percentage
    assert format_value(12.5, "error %") == "12.50"
    assert format_value(12.5, "pct_on_target") == "12.50"
    assert format_value(12.5, "accumulated") == "12.5"  # a word, not a substring
    assert format_value(0.9466666666666667, "scratch_test_acc") == "0.9467"  # a fraction, not a percentage


def test_a_column_is_a_percentage_or_not_as_a_whole():
    # one value above 1 makes the column percentages, so its decimals line up
    assert format_column([99.5, 0.5, float("nan")], "test_acc") == ["99.50", "0.50", "n/a"]
    assert format_column([0.95, 0.5], "val_acc") == ["0.95", "0.5"]
    assert is_percent("test_acc_std", [0.2, 1.4]) and not is_percent("loss", [50.0])


def test_units_follow_from_names():
    assert unit("train_time_s_bs2") == "s" and unit("seconds") == "s" and unit("step_ms") == "ms"
    assert unit("test_acc", [91.5]) == "%" and unit("test_acc", [0.91]) == ""
    assert unit("best_batch_size") == "" and unit("h_max") == ""
    assert with_unit(91.555, "test_acc") == "91.56%"
    assert with_unit(0.44262, "train_time_s") == "0.4426 s"
    assert with_unit("relu", "best_activation") == "relu"


def test_durations():
    assert [format_duration(s) for s in (0.421, 6.34, 14.2, 245, 3725)] == \
        ["0.42 s", "6.3 s", "14 s", "4 min 05 s", "1 h 02 min"]


def test_markdown_tables_are_rounded_and_csv_keeps_every_digit():
    rows = [{"name": "a", "test_acc": 91.55555725097656, "loss": 0.06727712601423264, "n": 3},
            {"name": "b", "test_acc": float("nan"), "loss": 12345.678, "n": 4}]
    md = rows_to_markdown(rows, ["name", "test_acc", "loss", "n"])
    lines = md.splitlines()
    assert lines[1].startswith("|:") and lines[1].endswith(":|")  # text left, numbers right
    assert [c.strip() for c in lines[2].strip("|").split("|")] == ["a", "91.56", "0.06728", "3"]
    assert [c.strip() for c in lines[3].strip("|").split("|")] == ["b", "n/a", "12346", "4"]
    csv = rows_to_csv(rows, ["name", "test_acc", "loss", "n"]).splitlines()
    assert csv[1] == "a,91.55555725097656,0.06727712601423264,3"
    assert math.isclose(float(csv[2].split(",")[2]), 12345.678)


def test_a_recipe_can_ask_for_more_digits():
    md = rows_to_markdown([{"x": 0.9000000000000001}, {"x": float("nan")}], ["x"], floatfmt=".17g")
    assert "0.9000000000000001" in md and "n/a" in md


def test_a_pipe_inside_a_cell_does_not_end_the_cell():
    md = rows_to_markdown([{"expr": "|x|", "v": 1}], ["expr", "v"])
    assert "\\|x\\|" in md
