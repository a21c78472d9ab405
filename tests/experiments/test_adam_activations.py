import pytest
from helpers import read_summary, read_table, run_quick

from trainlab.errors import ConfigError
from trainlab.experiments.adam_activations import Config


def test_quick_run_has_a_figure_per_function_and_sane_ends(tmp_path):
    run_dir = run_quick("adam-activations", tmp_path)
    for name in ("relu", "sigmoid", "abs"):
        assert (run_dir / "figures" / f"adam_{name}.png").is_file()
    columns, rows = read_table(run_dir, "final")
    assert columns[:3] == ["function", "x_final", "f_final"]
    by_name = {r["function"]: r for r in rows}
    # ReLU: six full steps of 0.3 reach x = 0.2, the seventh crosses 0; after that g = 0 but x keeps moving
    assert by_name["ReLU"]["first_zero_grad_t"] == "8"
    assert float(by_name["ReLU"]["x_final"]) < -0.1
    # Sigmoid: steps stay near alpha though the gradient is tiny
    assert 0.28 < float(by_name["Sigmoid"]["largest_step"]) < 0.32
    assert float(by_name["Sigmoid"]["x_final"]) < -4
    # |x|: oscillates around 0 and ends near it
    assert int(by_name["|x|"]["sign_changes_of_x"]) >= 3
    assert abs(float(by_name["|x|"]["x_final"])) < 0.3
    summary = read_summary(run_dir)
    assert summary["f_final_relu"] == 0.0


def test_one_function_and_bad_name(tmp_path):
    run_dir = run_quick("adam-activations", tmp_path, functions=["abs"], iterations=5)
    _, rows = read_table(run_dir, "final")
    assert [r["function"] for r in rows] == ["|x|"]
    assert float(rows[0]["x_final"]) == pytest.approx(2 - 5 * 0.3)
    with pytest.raises(ConfigError, match="tanh"):
        Config(functions=["tanh"])
