import re

import pytest
from helpers import read_summary, read_table, run_quick

from trainlab.errors import ConfigError
from trainlab.experiments.receptive_field import Config


def test_quick_run_fills_the_study_table(tmp_path):
    run_dir = run_quick("receptive-field", tmp_path)
    columns, rows = read_table(run_dir, "receptive_field")
    assert columns == ["row", "layer1", "layer2", "layer3", "layer4", "layer5", "receptive_field"]
    assert [r["row"] for r in rows] == [str(i) for i in range(1, 11)]
    assert rows[0]["receptive_field"] == "8"  # the study's one answer, 8 x 8
    assert rows[6]["layer3"] == "conv2d(5,3)"
    sizes = [int(r["receptive_field"]) for r in rows]
    assert all(s >= 2 for s in sizes) and sizes[7] == sizes[8]  # rows 8 and 9 are the same network
    columns, layers = read_table(run_dir, "layers")
    assert columns == ["row", "layer", "spec", "size", "jump", "start"]
    last_of_row = {r["row"]: r for r in layers}
    assert [int(last_of_row[str(i)]["size"]) for i in range(1, 11)] == sizes
    assert read_summary(run_dir)["receptive_field_row1"] == 8


def test_measured_check_and_extra_row(tmp_path):
    extra = ["'conv2d(3,1,1)'", "'maxpool2d(2,2)'", "'conv2d(k=3,s=1,p=2,d=2)'"]
    run_dir = run_quick("receptive-field", tmp_path, empirical=True, extra=extra)
    _, checks = read_table(run_dir, "measured")
    assert len(checks) == 11 and all(c["match"] == "True" for c in checks)
    _, rows = read_table(run_dir, "receptive_field")
    assert rows[-1]["layer3"] == "conv2d(k=3,s=1,p=2,d=2)" and rows[-1]["receptive_field"] == "12"
    assert read_summary(run_dir)["all_match_measured"] is True


def test_bad_extra_spec_is_a_config_error_naming_it():
    with pytest.raises(ConfigError, match=re.escape("bad layer spec 'conv(3,x)'")):
        Config(extra=["conv(3,x)"])
