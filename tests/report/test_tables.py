import csv
import io
import math

from trainlab.report.tables import mean_std, mean_std_markdown, rows_to_csv, rows_to_markdown, with_std


def test_mean_std_matches_numpy_sample_std():
    rows = [{"k": 1, "v": 1.0}, {"k": 1, "v": 3.0}, {"k": 2, "v": 5.0}, {"k": 2, "v": 5.0}]
    out = mean_std(rows, by=["k"], values=["v"])
    assert out[0] == {"k": 1, "v": 2.0, "v_std": math.sqrt(2.0), "n": 2}
    assert out[1]["v_std"] == 0.0


def test_mean_std_can_leave_undefined_values_out():
    nan = float("nan")
    rows = [{"k": 1, "v": 1.0}, {"k": 1, "v": nan}, {"k": 1, "v": 3.0}, {"k": 2, "v": nan}, {"k": 2, "v": nan}]
    out = mean_std(rows, by=["k"], values=["v"], skip_nan=True)
    assert out[0] == {"k": 1, "v": 2.0, "v_std": math.sqrt(2.0), "n": 3}  # n counts every repeat
    assert math.isnan(out[1]["v"]) and math.isnan(out[1]["v_std"])
    assert math.isnan(mean_std(rows, by=["k"], values=["v"])[0]["v"])  # by default NaN propagates


def test_single_repeat_has_no_std_columns():
    out = mean_std([{"k": 1, "v": 1.0}, {"k": 2, "v": 2.0}], by=["k"], values=["v"])
    assert out == [{"k": 1, "v": 1.0}, {"k": 2, "v": 2.0}]


def test_markdown_bold_and_marks():
    md = rows_to_markdown([{"a": 1.23456}, {"a": 2.0}], ["a"], bold=lambda i, r: i == 1, marks={0: "worst"})
    lines = md.strip().splitlines()
    assert "1.235" in lines[2] and "worst" in lines[2]
    assert "**2**" in lines[3]
    parsed = list(csv.DictReader(io.StringIO(rows_to_csv([{"a": float("nan")}, {"a": 1}], ["a"]))))
    assert parsed == [{"a": ""}, {"a": "1"}]  # NaN is written as an empty cell


def test_mean_std_markdown_cells():
    nan = float("nan")
    table = [{"k": "a", "test_acc": 91.234, "test_acc_std": 1.5, "f1": 0.91234, "f1_std": 0.0123},
             {"k": "b", "test_acc": 50.0, "test_acc_std": 1e-15, "f1": nan, "f1_std": nan}]
    lines = mean_std_markdown(table, ["k"], ["test_acc", "f1"]).strip().splitlines()
    assert "91.23 ± 1.50" in lines[2] and "0.9123 ± 0.0123" in lines[2]
    assert "50.00 ± 0.00" in lines[3] and "n/a" in lines[3]


def test_with_std_lists_each_value_then_its_std_where_there_is_one():
    rows = [{"k": 1, "a": 1.0, "b": 2.0}, {"k": 1, "a": 3.0, "b": 2.0}]
    assert with_std(mean_std(rows, by=["k"], values=["a", "b"]), ["a", "b"]) == ["a", "a_std", "b", "b_std"]
    assert with_std(mean_std(rows[:1], by=["k"], values=["a"]), ["a"]) == ["a"]
