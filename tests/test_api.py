"""The Python API (trainlab.api, re-exported by trainlab) against the run folders it reads.

Oracles: the folder's own files read independently (csv, json, JSONL), the command line's
``key=value`` path for configs and their error messages, and a trained model that scores
exactly what its run's table says.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from helpers import read_metrics, read_summary

import trainlab
from trainlab.config import to_dict
from trainlab.errors import ConfigError
from trainlab.execute import build_config
from trainlab.experiments.registry import all_experiments, get_experiment
from trainlab.report.numbers import format_value

SRC = Path(trainlab.__file__).parent.parent
TINY = {"epochs": 2, "batch_sizes": [16, 128]}
"""mnist-binary's quick profile, smaller still."""


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def binary(out) -> trainlab.Run:
    return trainlab.run("mnist-binary", quick=True, out=out, device="cpu", hidden=8, **TINY)


@pytest.fixture(scope="module")
def binary_narrow(out, binary) -> trainlab.Run:
    return trainlab.run("mnist-binary", quick=True, out=out, device="cpu", hidden=4, **TINY)


@pytest.fixture(scope="module")
def scratch(out) -> trainlab.Run:
    return trainlab.run("scratch-mlp", quick=True, out=out, device="cpu", activations=["relu"], epochs=2,
                        tsne_points=0)


def _python(code: str, warnings: str = "error") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-W", warnings, "-c", code], capture_output=True, text=True,
                          env={"PYTHONPATH": str(SRC), "PATH": ""})


def test_import_is_light_and_silent():
    done = _python("import sys, trainlab; print(sorted(m for m in sys.modules if m.startswith('trainlab')))")
    assert done.returncode == 0, done.stderr
    assert (done.stdout.strip(), done.stderr) == ("['trainlab']", "")
    assert trainlab.__version__ == "0.1.0" and {"run", "load_run", "Run"} <= set(dir(trainlab))
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        trainlab.nothing  # noqa: B018


def test_the_api_warns_nothing_in_jupyter_without_ipywidgets():
    # A Jupyter kernel as tqdm.autonotebook detects one, with ipywidgets missing: tqdm would warn.
    kernel = ("import sys, types; sys.modules['ipykernel.zmqshell'] = types.ModuleType('ipykernel.zmqshell'); "
              "shell = type('ZMQInteractiveShell', (), {})(); ipy = types.ModuleType('IPython'); "
              "ipy.get_ipython = lambda: shell; sys.modules['IPython'] = ipy; sys.modules['ipywidgets'] = None; "
              "ipy.display = types.ModuleType('IPython.display'); ipy.display.display = print; "
              "sys.modules['IPython.display'] = ipy.display; ")
    # -W always, not error: tqdm catches its own warning raised as an error and stays quiet.
    assert "IProgress not found" in _python(kernel + "import tqdm.auto", "always").stderr
    done = _python(kernel + "import trainlab; trainlab.list_experiments; print('ok')", "always")
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "ok", "")


def test_list_experiments_is_the_registry():
    table = trainlab.list_experiments()
    exps = all_experiments()
    assert list(table.columns) == ["name", "study", "question", "summary", "runtime"]
    assert list(table["name"]) == list(exps)
    for row in table.itertuples():
        exp = exps[row.name]
        assert (row.study, row.question, row.summary, row.runtime) == (exp.study_title, exp.question, exp.summary,
                                                                         exp.runtime)


@pytest.mark.parametrize("overrides, items", [
    ({}, []),
    ({"hidden": 8, "batch_sizes": [16, 128], "lr": 1e-5}, ["hidden=8", "batch_sizes=[16,128]", "lr=1e-05"]),
    ({"batch_sizes": range(16, 64, 16), "classes": (3, 5), "data_dir": None}, ["batch_sizes=[16,32,48]",
                                                                               "classes=[3,5]", "data_dir=null"]),
])
def test_make_config_takes_keywords_as_the_command_line_takes_key_value(overrides, items):
    exp = get_experiment("mnist-binary")
    for quick in (False, True):
        assert trainlab.make_config("mnist-binary", quick, **overrides) == build_config(exp, items, quick=quick)


def test_make_config_bools_are_the_command_lines():
    exp = get_experiment("ddpm-cfg")
    for value, text in ((True, "true"), (False, "false")):
        assert trainlab.make_config("ddpm-cfg", stacked=value) == build_config(exp, [f"stacked={text}"])


@pytest.mark.parametrize("overrides, item", [
    ({"hidden": "abc"}, "hidden=abc"),
    ({"hidden": 0}, "hidden=0"),
    ({"lr": -1.0}, "lr=-1.0"),
    ({"lr": float("nan")}, "lr=nan"),
    ({"lr": 1e39}, "lr=1e+39"),
    ({"epochs": 2.5}, "epochs=2.5"),
    ({"batch_sizes": [0, 16]}, "batch_sizes=[0,16]"),
    ({"classes": [1, 1]}, "classes=[1,1]"),
    ({"activation": "softmax"}, "activation=softmax"),
    ({"hiden": 3}, "hiden=3"),
    ({"seed": -1}, "seed=-1"),
])
def test_a_bad_keyword_fails_with_the_command_lines_message(overrides, item):
    with pytest.raises(ConfigError) as cli:
        build_config(get_experiment("mnist-binary"), [item])
    with pytest.raises(ConfigError) as api:
        trainlab.make_config("mnist-binary", **overrides)
    assert str(api.value) == str(cli.value)
    with pytest.raises(ConfigError) as run:
        trainlab.run("mnist-binary", out="/nonexistent/never-made", **overrides)
    assert str(run.value) == str(cli.value)


@pytest.mark.parametrize("name", list(all_experiments()))
def test_show_lists_every_field_with_its_defaults_and_docstring(name):
    table = trainlab.show(name)
    defaults, quick = trainlab.make_config(name), trainlab.make_config(name, quick=True)
    assert list(table.columns) == ["name", "type", "default", "quick", "doc"]
    assert list(table["name"]) == list(to_dict(defaults))
    for row in table.itertuples():
        assert row.default == getattr(defaults, row.name) and row.quick == getattr(quick, row.name)
        assert row.doc and row.type, (name, row.name)  # every field says what it is (DESIGN.md)
    assert table.set_index("name").loc["seed", "doc"].startswith("Seed for every random source")


def test_a_run_reads_back_its_folder(binary):
    folder = binary.path
    info = json.loads((folder / "run.json").read_text())
    assert (binary.name, binary.status, binary.error) == ("mnist-binary", info["status"], None) == (
        "mnist-binary", "done", None)
    assert binary.config == trainlab.make_config("mnist-binary", quick=True, device="cpu", hidden=8, **TINY)
    assert binary.summary == read_summary(folder)
    assert binary.metrics.to_dict("records") == read_metrics(folder)
    assert binary.figures == {p.stem: p.resolve() for p in folder.glob("figures/*.png")} != {}
    assert binary.report_html() == folder / "report.html"
    csvs = sorted(p.stem for p in folder.glob("tables/*.csv"))
    assert sorted(binary.tables) == csvs != []
    for name, frame in binary.tables.items():
        with open(folder / "tables" / f"{name}.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert list(frame.columns) == list(rows[0]) and len(frame) == len(rows)
        for column in frame.columns:
            numeric = pd.api.types.is_numeric_dtype(frame[column])
            for value, text in zip(frame[column], (r[column] for r in rows)):
                assert (float(value) == float(text)) if numeric else (value == text), (name, column)
    assert pd.api.types.is_integer_dtype(binary.tables["batch_sizes"]["batch_size"])  # real dtypes, not text
    assert trainlab.load_run(str(folder)).summary == binary.summary


def test_a_run_shows_in_a_notebook_as_the_reports_head(binary):
    page = binary._repr_html_()
    assert "badge done" in page and str(binary.path) in page
    assert all(key in page for key in binary.summary)
    assert page.count("<img ") == len(binary.figures)
    assert "Run details" not in page and "<body" not in page  # not the whole report
    assert "trainlab-run body" not in page and ".trainlab-run .summary" in page  # styles only its own box


def test_model_rebuilds_the_trained_network(binary, scratch, out):
    names = sorted(p.stem for p in binary.path.glob("checkpoints/*.pt"))
    assert names == ["bs128_seed0", "bs16_seed0"]
    with pytest.raises(ConfigError, match="bs128_seed0, bs16_seed0"):
        binary.model()
    with pytest.raises(ConfigError, match="no checkpoint 'bs3'"):
        binary.model("bs3")
    model = binary.model("bs16_seed0")
    saved = torch.load(binary.path / "checkpoints" / "bs16_seed0.pt", weights_only=True)
    assert not model.training and all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())
    # The NumPy network scores, on the test set, exactly the accuracy its run's table reports.
    from trainlab.data import load_images, to_tensor

    data = load_images("digits", None)
    net = scratch.model()  # the only checkpoint
    accuracy = net.score(to_tensor(data.test_images, "cpu").numpy(), data.test_labels)
    assert accuracy == scratch.tables["activations"]["scratch_test_acc"][0] == scratch.summary["scratch_test_acc_relu"]


def test_model_of_a_diffusion_run_is_its_noise_model(out):
    run = trainlab.run("ddpm-cfg", quick=True, out=out, device="cpu", train_steps=20, n_samples=50, mlp_max_iter=5,
                       T=10)
    model = run.model()
    saved = torch.load(run.path / "checkpoints" / "moons.pt", weights_only=True)
    assert type(model).__name__ == "NoiseModel" and model.state_dict().keys() == saved.keys()
    assert all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())


def test_a_run_that_trains_no_model_says_so(tmp_path):
    run = trainlab.run("adam-bump", quick=True, out=tmp_path, device="cpu")
    with pytest.raises(ConfigError, match="no checkpoints"):
        run.model()


def test_list_runs_shows_overrides_and_filters(binary, binary_narrow, scratch, out):
    table = trainlab.list_runs(out)
    assert list(table.columns) == ["name", "started", "status", "seconds", "overrides", "headline", "path", "note"]
    by_path = table.set_index("path")
    for run in (binary, binary_narrow, scratch):
        info = json.loads((run.path / "run.json").read_text())
        row = by_path.loc[str(run.path)]
        assert (row["name"], row["started"], row["status"], row["seconds"]) == (
            info["experiment"], info["started"], info["status"], info["seconds"])
        assert row["note"] == ""  # a note only for a run on another host, which these are not
    # against the defaults, in the config's order: the quick profile's values count too
    for run, hidden in ((binary, 8), (binary_narrow, 4)):
        assert by_path.loc[str(run.path), "overrides"] == (
            f"device=cpu dataset=digits train_limit=1000 hidden={hidden} lr=0.01 epochs=2 batch_sizes=[16,128]")
    headline = json.loads((binary.path / "run.json").read_text())["headline"]
    assert by_path.loc[str(binary.path), "headline"] == f"{headline}={format_value(binary.summary[headline], headline)}"
    assert set(trainlab.list_runs(out, name="mnist-binary")["path"]) >= {str(binary.path), str(binary_narrow.path)}
    assert str(scratch.path) not in set(trainlab.list_runs(out, name="mnist-binary")["path"])
    assert trainlab.list_runs(out, status="killed").empty
    with pytest.raises(ConfigError, match="status='finished' is not one of running, done, diverged, failed, "
                                          "interrupted, pruned, killed"):
        trainlab.list_runs(out, status="finished")
    assert trainlab.list_runs(out / "nothing-here").empty


def test_compare_shows_exactly_the_fields_that_differ(binary, binary_narrow):
    table = trainlab.compare(binary, binary_narrow.path)
    assert list(table.columns) == [binary.path.name, binary_narrow.path.name]
    config_rows = [key for part, key in table.index if part == "config"]
    assert config_rows == ["hidden"]
    assert list(table.loc[("config", "hidden")]) == [8, 4]
    summary_rows = [key for part, key in table.index if part == "summary"]
    assert summary_rows == list(binary.summary)
    for column, run in zip(table.columns, (binary, binary_narrow)):
        assert all(table.loc[("summary", k), column] == v for k, v in run.summary.items())
    with pytest.raises(ConfigError, match="at least two runs"):
        trainlab.compare(binary)


def test_a_failing_recipe_returns_its_failed_run(monkeypatch, tmp_path):
    import trainlab.experiments.mnist_binary as recipe

    def broken(cfg, out):
        out.log(step=1)
        raise RuntimeError("the recipe broke")

    monkeypatch.setattr(recipe, "run", broken)
    run = trainlab.run("mnist-binary", quick=True, out=tmp_path, device="cpu")
    assert (run.status, run.error) == ("failed", "RuntimeError: the recipe broke")
    assert json.loads((run.path / "run.json").read_text())["status"] == "failed"
    assert run.metrics.to_dict("records") == [{"step": 1}] and "badge failed" in run._repr_html_()


def test_an_invalid_config_runs_nothing(tmp_path):
    with pytest.raises(ConfigError, match="hidden must be > 0"):
        trainlab.run("mnist-binary", quick=True, out=tmp_path, hidden=0)
    with pytest.raises(ConfigError, match="not both"):
        trainlab.run("mnist-binary", out=tmp_path, config=trainlab.make_config("mnist-binary"), hidden=3)
    with pytest.raises(ConfigError, match="not mnist-binary's Config"):
        trainlab.run("mnist-binary", out=tmp_path, config=trainlab.make_config("scratch-mlp"))
    with pytest.raises(ConfigError, match="not a run folder"):
        trainlab.load_run(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_config_object_runs_as_its_keywords_would(tmp_path):
    cfg = trainlab.make_config("adam-bump", quick=True)
    run = trainlab.run("adam-bump", out=tmp_path, config=cfg, device="cpu", seed=3)
    assert run.config == trainlab.make_config("adam-bump", quick=True, device="cpu", seed=3)
    assert run.summary == read_summary(run.path) != {}


def test_the_api_errors_are_catchable_from_the_package():
    import trainlab
    from trainlab.errors import ConfigError

    assert trainlab.ConfigError is ConfigError and issubclass(trainlab.DataError, trainlab.TrainlabError)
    with pytest.raises(trainlab.ConfigError, match="hidden"):
        trainlab.make_config("mnist-binary", quick=True, hidden="x")
