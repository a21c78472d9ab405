from pathlib import Path

import pytest
import torch
from helpers import read_summary, read_table, run_quick

from trainlab.errors import DataError
from trainlab.experiments.torch_ops import load_inputs

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
SHAPES = {
    "max_pool1d": "(1, 1, 31)",
    "avg_pool1d": "(1, 1, 31)",
    "conv1d": "(1, 3, 32)",
    "sigmoid": "(1, 1, 32)",
    "batch_norm": "(1, 1, 32)",
    "linear": "(1, 1, 4)",
}


def _check(run_dir: Path, linear_out: int = 4) -> None:
    columns, rows = read_table(run_dir, "ops")
    assert columns[:3] == ["op", "output_shape", "max_abs_diff"]
    by_op = {r["op"]: r for r in rows}
    assert {op: by_op[op]["output_shape"] for op in SHAPES} == {**SHAPES, "linear": f"(1, 1, {linear_out})"}
    for row in rows:
        assert 0 <= float(row["max_abs_diff"]) < 1e-5  # float32 rounding, nothing more
        if row["max_abs_grad_diff"]:
            assert 0 <= float(row["max_abs_grad_diff"]) < 1e-5
    assert "batch_norm running stats" in by_op
    assert (run_dir / "figures" / "outputs.png").is_file()
    assert read_summary(run_dir)["n_ops"] == 6


def test_quick_run_matches_torch(tmp_path):
    _check(run_quick("torch-ops", tmp_path))


@pytest.mark.skipif(not (SHARED / "pixel_input.pt").is_file(), reason="the study's files are not here")
def test_study_files_equal_the_rebuilt_inputs_and_run(tmp_path):
    x, filters, source = load_inputs(str(SHARED))
    x_built, filters_built, _ = load_inputs(None)
    assert source.startswith("loaded") and torch.equal(x, x_built) and torch.equal(filters, filters_built)
    _check(run_quick("torch-ops", tmp_path, data_dir=SHARED, linear_out=2, bn_training=False), linear_out=2)


def test_missing_or_bad_files_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="lacks pixel_input.pt, filter.pt"):
        load_inputs(str(tmp_path))
    torch.save(torch.zeros(32), tmp_path / "pixel_input.pt")
    torch.save(torch.zeros(3, 1, 1), tmp_path / "filter.pt")
    with pytest.raises(DataError, match=r"\(N, C, L\)"):
        load_inputs(str(tmp_path))
    (tmp_path / "filter.pt").write_bytes(b"not a tensor")
    with pytest.raises(DataError, match="cannot read"):
        load_inputs(str(tmp_path))
