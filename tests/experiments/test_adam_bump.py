import json

import pytest
from helpers import read_summary, read_table, run_quick

from trainlab.errors import ConfigError
from trainlab.experiments.adam_bump import Config


def test_quick_run_finds_h_max_and_gd_oscillates(tmp_path):
    run_dir = run_quick("adam-bump", tmp_path)
    summary = read_summary(run_dir)
    # GD (lr 0.3, h 0.5) oscillates between 0.9 and 1.2 and never crosses
    assert summary["gd_x_low"] == pytest.approx(0.9, abs=1e-12)
    assert summary["gd_x_high"] == pytest.approx(1.2, abs=1e-12)
    assert summary["gd_crossed"] is False
    # bisection to 1e-6, consistent with the endless-bump check, and the 2-decimal answer
    assert 0 < summary["h_max_upper"] - summary["h_max"] <= 1e-6
    assert summary["h_max"] <= summary["h_max_from_peak"] <= summary["h_max_upper"]
    assert summary["h_max_2dp"] == 0.41
    columns, rows = read_table(run_dir, "h_search")
    assert columns == ["h", "gets_over"]
    flags = [r["gets_over"] == "True" for r in rows]
    assert flags[0] and not flags[-1] and flags == sorted(flags, reverse=True)
    columns, rows = read_table(run_dir, "adam_trace_below")
    assert columns == ["t", "x", "g", "m", "v", "m_hat", "v_hat"]
    assert (run_dir / "figures" / "adam_traces.png").is_file()
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {r["optimizer"] for r in records} == {"gd", "adam"}


def test_landscape_is_a_parameter(tmp_path):
    """A farther bump: Adam has more speed when it arrives, so it gets over a taller one."""
    summary = read_summary(run_quick("adam-bump", tmp_path, L=2.0, h_hi=2.0))
    assert summary["h_max"] > 0.41
    assert summary["h_max"] <= summary["h_max_from_peak"] <= summary["h_max_upper"]


def test_bad_bracket_is_a_config_error():
    with pytest.raises(ConfigError, match="h_lo < h_hi"):
        Config(h_lo=0.5, h_hi=0.2)


def test_gd_note_is_computed_for_any_learning_rate(tmp_path):
    """With lr 0.4, GD swings between 0.8 and 1.2; the report must say so, not the default's 0.9 and 1.2."""
    run_dir = run_quick("adam-bump", tmp_path, gd_lr=0.4)
    summary = read_summary(run_dir)
    assert summary["gd_x_low"] == pytest.approx(0.8) and summary["gd_x_high"] == pytest.approx(1.2)
    note = (run_dir / "text" / "gd.md").read_text()
    assert "oscillates between 0.8 and 1.2" in note and "0.9" not in note
