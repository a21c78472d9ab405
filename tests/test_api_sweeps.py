"""trainlab.sweep and Sweep against the sweep folder they write and read, and the command line.

Oracles: the sweep folder's own files read independently (tables/trials.csv with the csv
module, trials.jsonl, each trial's summary.json), ``trainlab sweep``'s items and error
messages for the same grid, and the import system for the name ``trainlab.sweep``.
"""

from __future__ import annotations

import csv
import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from helpers import read_summary

import trainlab
from trainlab.api.sweeps import grid_items
from trainlab.cli import main
from trainlab.errors import ConfigError
from trainlab.experiments.registry import get_experiment
from trainlab.files import read_jsonl
from trainlab.sweeps import plan

SRC = Path(trainlab.__file__).parent
FIXED = {"batch_sizes": [64], "device": "cpu"}
"""mnist-binary's quick profile with one batch size: a trial takes about a second."""


@pytest.fixture(scope="module")
def swept(tmp_path_factory) -> trainlab.Sweep:
    """Three trials trained as one stack: a slow learner, a fast one and one that diverges."""
    out = tmp_path_factory.mktemp("sweeps")
    return trainlab.sweep("mnist-binary", {"lr": [1e-3, 1e-2, 3e37]}, quick=True, out=out, **FIXED)


def _csv_rows(sweep_dir: Path) -> list[dict[str, str]]:
    with open(sweep_dir / "tables" / "trials.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_trials_is_the_table_trials_csv_holds(swept):
    rows = _csv_rows(swept.path)
    table = swept.trials
    assert list(table.columns) == list(rows[0]) and len(table) == len(rows) == 3
    for column in table.columns:
        numeric = pd.api.types.is_numeric_dtype(table[column])
        expected = [float(r[column]) if numeric and r[column] else (None if not r[column] else r[column])
                    for r in rows]
        assert [None if pd.isna(v) else v for v in table[column]] == expected, column
    assert table["lr"].tolist() == [1e-3, 1e-2, 3e37] and table["test_acc"].dtype == float
    assert table["status"].tolist() == ["done", "done", "diverged"]
    for row, record in zip(table.itertuples(), read_jsonl(swept.path / "trials.jsonl")):
        assert row.folder == record["path"] and row.key == record["key"]
        summary = read_summary(swept.path / row.folder)  # a diverged trial's accuracy is null there, NaN here
        assert summary["test_acc"] == (None if pd.isna(row.test_acc) else row.test_acc)
    assert swept.name == "mnist-binary" and swept.status == "done" and swept.grid == {"lr": [1e-3, 1e-2, 3e37]}


def test_best_is_the_run_of_the_best_finished_trial(swept):
    rows = _csv_rows(swept.path)
    done = [r for r in rows if r["status"] == "done"]
    for mode, pick in (("max", max), ("min", min)):
        oracle = pick(done, key=lambda r: float(r["test_acc"]))
        best = swept.best("test_acc", mode)
        assert best.path == (swept.path / oracle["folder"]).resolve()
        assert best.summary == read_summary(swept.path / oracle["folder"])
        assert best.summary["test_acc"] == float(oracle["test_acc"]) and best.status == "done"
    # the diverged trial has the largest `diverged` but is not a finished trial; the tie goes to trial 0
    assert swept.best("diverged").path == (swept.path / rows[0]["folder"]).resolve()
    assert swept.run(2).status == "diverged"


@pytest.mark.parametrize("metric, mode, message", [
    ("accuracy", "max", "give one of: lr, test_acc"),
    ("status", "max", "'status' is not a number column"),
    ("test_acc", "median", "mode='median' is not one of max, min"),
])
def test_best_refuses_what_it_cannot_rank_in_one_line(swept, metric, mode, message):
    with pytest.raises(ConfigError, match=message) as err:
        swept.best(metric, mode)
    assert "\n" not in str(err.value)


def test_a_sweep_shows_in_a_notebook_as_its_counts_grid_and_figure(swept):
    page = swept._repr_html_()
    assert "Sweep of mnist-binary" in page and "<code>lr</code>: 0.001, 0.01, 3e+37 (3 values)" in page
    assert "diverged" in page and page.count("<img") == len(list(swept.path.glob("figures/*.png"))) == 1
    assert swept.report_html() == swept.path / "report.html"
    assert trainlab.load_sweep(swept.path).trials.equals(swept.trials)


def test_resume_runs_only_the_trials_not_finished(swept, tmp_path):
    copy = Path(shutil.copytree(swept.path, tmp_path / "copy"))
    records = read_jsonl(copy / "trials.jsonl")
    (copy / "trials.jsonl").write_text((copy / "trials.jsonl").read_text().splitlines(keepends=True)[0])
    resumed = trainlab.sweep("mnist-binary", resume=copy)
    after = read_jsonl(copy / "trials.jsonl")
    assert resumed.path == copy and resumed.status == "done"
    assert after[0] == records[0] and [r["key"] for r in after[1:]] == [r["key"] for r in records[1:]]
    assert [r["status"] for r in after] == ["done", "done", "diverged"]
    assert resumed.trials["test_acc"].iloc[1] == swept.trials["test_acc"].iloc[1]  # same config, same seed
    again = trainlab.sweep("mnist-binary", {"lr": [1e-3, 1e-2, 3e37]}, resume=copy, **FIXED)  # the same grid
    assert len(read_jsonl(again.path / "trials.jsonl")) == 3  # nothing left to run
    with pytest.raises(ConfigError, match="drop the overrides"):
        trainlab.sweep("mnist-binary", {"lr": [1e-3]}, resume=copy)


def test_range_and_list_valued_settings_become_the_command_lines_items(tmp_path):
    got = trainlab.sweep("mnist-binary", {"hidden": range(2, 6, 2), "batch_sizes": [[16], [64]]}, quick=True,
                         out=tmp_path, epochs=1, device="cpu")
    spec = plan(get_experiment("mnist-binary"), ["hidden=2,4", "batch_sizes=[16],[64]", "epochs=1", "device=cpu"],
                quick=True)[1]
    assert [t["config"] for t in _spec(got.path)["trials"]] == [t["config"] for t in spec["trials"]]
    assert got.grid == {"hidden": [2, 4], "batch_sizes": [[16], [64]]}
    assert got.trials["status"].tolist() == ["done"] * 4


def _spec(sweep_dir: Path) -> dict:
    return json.loads((sweep_dir / "sweep.json").read_text())


def _cli_error(args: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    return capsys.readouterr().err.strip().removeprefix("error: ")


@pytest.mark.parametrize("grid, fixed, items", [
    ({"lrr": [0.1, 0.2]}, {}, ["lrr=0.1,0.2"]),
    ({"lr": [0.1, -1]}, {}, ["lr=0.1,-1"]),
    ({"lr": [0.1, 0.1]}, {}, ["lr=0.1,0.1"]),
    ({"lr": [0.1, 0.2]}, {"lr": 0.3}, ["lr=0.3", "lr=0.1,0.2"]),
    ({"hidden": [2]}, {"batch_sizes": [0]}, ["batch_sizes=[0]", "hidden=choice(2)"]),
])
def test_a_bad_grid_fails_with_the_command_lines_message_before_anything_runs(tmp_path, capsys, grid, fixed, items):
    message = _cli_error(["sweep", "mnist-binary", *items, "--quick", "--out", str(tmp_path / "cli")], capsys)
    with pytest.raises(ConfigError) as api:
        trainlab.sweep("mnist-binary", grid, quick=True, out=tmp_path / "api", **fixed)
    assert str(api.value) == message
    assert not (tmp_path / "api").exists()


@pytest.mark.parametrize("grid, message", [
    ({"lr": 0.01}, r"grid\['lr'\] is 0.01, not a list of values; write grid=\{'lr': \[0.01\]\}"),
    ({"dataset": "digits"}, r"grid=\{'dataset': \['digits'\]\} to sweep it, or pass dataset='digits'"),
    ({"lr": []}, r"grid\['lr'\] is empty"),
    ([("lr", [0.01])], "grid is a list, not a dict"),
])
def test_a_grid_value_that_is_not_a_list_is_refused_naming_the_fix(tmp_path, grid, message):
    with pytest.raises(ConfigError, match=message):
        trainlab.sweep("mnist-binary", grid, out=tmp_path)
    assert not tmp_path.joinpath("mnist-binary-sweep").exists()


def test_strings_keep_their_commas_quotes_and_colons():
    texts = ["a,b", "it's", "c: d", "range(3)", "plain"]
    trials, spec = plan(get_experiment("mnist-binary"), grid_items({"data_dir": texts}))
    assert [t.params["data_dir"] for t in trials] == texts and not spec["fixed"]
    fixed = trainlab.make_config("mnist-binary", data_dir="x,y: z")
    assert fixed.data_dir == "x,y: z"


def test_importing_the_sweeps_package_leaves_the_function_trainlab_sweep():
    code = ("import types, trainlab.sweeps.grid, trainlab.sweeps.runner, trainlab.api.sweeps, trainlab; "
            "print(isinstance(trainlab.sweep, types.FunctionType), trainlab.sweep.__module__)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PYTHONPATH": str(SRC.parent), "PATH": ""})
    assert (done.returncode, done.stdout.split()) == (0, ["True", "trainlab.api.sweeps"]), done.stderr


@pytest.mark.parametrize("package", ["trainlab", "trainlab.api"])
def test_no_public_name_is_also_a_submodule(package):
    """``import trainlab.X`` sets the attribute X of trainlab to the module: a public name X would be replaced."""
    folder = SRC if package == "trainlab" else SRC / "api"
    modules = {p.stem for p in folder.glob("*.py")} | {p.parent.name for p in folder.glob("*/__init__.py")}
    public = set(importlib.import_module(package).__all__)
    assert public and modules & public == set()


def test_load_run_on_a_sweep_folder_names_load_sweep(tmp_path):
    from trainlab.sweeps.trials import SPEC_FILE
    from trainlab.api.folder import SWEEP_PLAN

    assert SWEEP_PLAN == SPEC_FILE
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / SPEC_FILE).write_text("{}")
    with pytest.raises(ConfigError, match=r"is a sweep folder; trainlab.load_sweep\("):
        trainlab.load_run(folder)
