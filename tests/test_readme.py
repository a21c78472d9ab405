"""The README lists every experiment with its runtime, so it cannot drift from the code."""

from pathlib import Path

from trainlab.experiments.registry import all_experiments

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_experiment_is_in_the_readme_with_its_runtime():
    text = README.read_text()
    for name, exp in all_experiments().items():
        rows = [line for line in text.splitlines() if line.startswith(f"| `{name}` |")]
        assert rows, f"README has no row for {name}"
        assert exp.runtime in rows[0], f"README row for {name} lacks its runtime {exp.runtime}"


def test_readme_names_the_two_commands():
    text = README.read_text()
    assert "make demo" in text and "make test" in text
