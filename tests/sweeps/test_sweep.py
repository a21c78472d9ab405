"""Sweeps end to end: records, failures, the combined table, bad input, and kill -9 then resume.

A tiny probe experiment (written by a fixture into a temporary folder that is
added to ``trainlab.experiments.__path__``, so the real registry finds it) makes
the trials fast and lets the tests choose which trial fails, diverges or blocks.
"""

from __future__ import annotations

import csv
import importlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

import trainlab
import trainlab.experiments
from helpers import cli, register_probe
from trainlab.errors import ConfigError
from trainlab.execute import build_config, run_experiment
from trainlab.experiments.registry import get_experiment
from trainlab.files import read_jsonl
from trainlab.sweeps import run_sweep
from trainlab.sweeps.report import headline_figure

PROBE = '''
"""A test probe: loss = scale * (x - 2)^2 + seeded noise; can fail, diverge or wait for a file."""
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from trainlab.config import BaseConfig, positive
from trainlab.device import torch_generator

NAME = "sweep-probe"
SUMMARY = "test probe for sweeps"
RUNTIME = "~0 s"
QUICK = {"scale": 0.5}


@dataclass
class Config(BaseConfig):
    x: int = 0
    """The swept value."""
    scale: float = 1.0
    """Loss scale."""
    fail_at: int = -1
    """x that raises."""
    diverge_at: int = -1
    """x that reports status diverged."""
    gate: str = ""
    """File that trials with x >= gate_from wait for."""
    gate_from: int = 1000
    """First x that waits for the gate file."""
    ledger: str = ""
    """File that gets one line per trial start."""
    stop_file: str = ""
    """When this file exists, trial x=1 deletes it and raises KeyboardInterrupt (a one-shot Ctrl-C)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        positive("scale", self.scale)


def run(cfg, out):
    if cfg.ledger:
        with open(cfg.ledger, "a") as fh:
            fh.write(f"{cfg.x}\\n")
    if cfg.x >= cfg.gate_from:
        while not Path(cfg.gate).exists():
            time.sleep(0.02)
    if cfg.x == 1 and cfg.stop_file and Path(cfg.stop_file).exists():
        Path(cfg.stop_file).unlink()
        raise KeyboardInterrupt
    if cfg.x == cfg.fail_at:
        raise RuntimeError(f"probe failure at x={cfg.x}")
    noise = torch.randn(4, generator=torch_generator(cfg.seed + cfg.x)).sum().item()
    _write(cfg, out, cfg.scale * (cfg.x - 2) ** 2 + noise)


def run_batch(cfgs, runs):
    """All trials at once (a sweep calls this when the test sets BATCHABLE)."""
    if cfgs[0].ledger:
        with open(cfgs[0].ledger, "a") as fh:
            fh.write(f"batch{len(cfgs)}\\n")
    if any(c.x == c.fail_at for c in cfgs):
        raise RuntimeError("probe batch failure")
    x = torch.tensor([c.x for c in cfgs], dtype=torch.float64)
    scale = torch.tensor([c.scale for c in cfgs], dtype=torch.float64)
    noise = torch.stack([torch.randn(4, generator=torch_generator(c.seed + c.x)).sum() for c in cfgs])
    loss = scale * (x - 2) ** 2 + noise.double()
    for cfg, out, value in zip(cfgs, runs, loss.tolist(), strict=True):
        _write(cfg, out, value)


def _write(cfg, out, loss):
    out.log(x=cfg.x, loss=loss)
    out.table("values", [{"x": cfg.x, "loss": loss}])
    if cfg.x == cfg.diverge_at:
        out.summary(status="diverged", loss=float("nan"))
    else:
        out.summary(headline="loss", loss=loss, x_squared=cfg.x**2)
'''


@pytest.fixture
def probe(tmp_path, monkeypatch):
    """Register the probe experiment; return the folder holding it."""
    yield register_probe(tmp_path, monkeypatch, "sweep_probe", PROBE)
    sys.modules.pop("trainlab.experiments.sweep_probe", None)



def table(sweep_dir: Path, drop=("seconds", "folder")) -> list[dict[str, str]]:
    with open(sweep_dir / "tables" / "trials.csv", newline="") as fh:
        return [{k: v for k, v in row.items() if k not in drop} for row in csv.DictReader(fh)]


def info(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


def test_trials_match_standalone_runs_and_failures_do_not_stop_the_sweep(probe, tmp_path):
    out = tmp_path / "runs"
    sweep_dir = run_sweep("sweep-probe", ["x=0,1,2,3", "fail_at=1", "diverge_at=3"], quick=True, out=out)
    assert sweep_dir.parent == out / "sweep-probe-sweep" and info(sweep_dir)["status"] == "done"

    rows = table(sweep_dir)
    assert [(r["trial"], r["x"], r["status"]) for r in rows] == [
        ("0", "0", "done"), ("1", "1", "failed"), ("2", "2", "done"), ("3", "3", "diverged"),
    ]
    assert rows[1]["error"] == "RuntimeError: probe failure at x=1"
    assert rows[3]["loss"] == ""  # NaN is stored as null, shown empty
    # Oracle: a trial's numbers are those of the same config run on its own (quick profile included).
    for row in (rows[0], rows[2]):
        exp = get_experiment("sweep-probe")
        cfg = build_config(exp, [f"x={row['x']}", "fail_at=1", "diverge_at=3"], quick=True)
        alone = run_experiment(exp, cfg, out=tmp_path / "alone")
        summary = json.loads((alone / "summary.json").read_text())
        assert float(row["loss"]) == pytest.approx(summary["loss"], rel=1e-12)
        assert row["key"] == alone.name.split("-")[-1]  # the trial key is the config hash

    records = read_jsonl(sweep_dir / "trials.jsonl")
    assert [r["status"] for r in records] == ["done", "failed", "done", "diverged"]
    failed_folder = sweep_dir / records[1]["path"]  # the failed trial's own run folder says why
    assert info(failed_folder)["status"] == "failed" and "probe failure" in info(failed_folder)["error"]
    for row in rows:
        if row["status"] != "failed":
            assert info(sweep_dir / next(r["path"] for r in records if r["key"] == row["key"]))["status"] == "done"

    summary = json.loads((sweep_dir / "summary.json").read_text())
    assert summary == {"trials": 4, "done": 2, "diverged": 1, "failed": 1, "pending": 0}
    report = (sweep_dir / "report.md").read_text()
    assert "Failed and diverged trials" in report and "probe failure at x=1" in report
    assert json.loads((sweep_dir / "sweep.json").read_text())["swept"] == {"x": ["0", "1", "2", "3"]}


def test_resume_skips_done_and_diverged_and_reruns_failed(probe, tmp_path):
    ledger = tmp_path / "ledger.txt"
    items = ["x=0,1,2", "fail_at=1", "diverge_at=2", f"ledger={ledger}"]
    sweep_dir = run_sweep("sweep-probe", items, out=tmp_path)
    assert Counter(ledger.read_text().split()) == {"0": 1, "1": 1, "2": 1}
    before = table(sweep_dir)
    again = run_sweep("sweep-probe", items, resume=sweep_dir)  # same overrides are accepted
    assert again == sweep_dir
    assert Counter(ledger.read_text().split()) == {"0": 1, "1": 2, "2": 1}
    records = read_jsonl(sweep_dir / "trials.jsonl")
    assert [r["index"] for r in records] == [0, 1, 2, 1]
    assert table(sweep_dir) == before


def test_batched_trials_give_the_table_of_one_by_one_trials(probe, tmp_path, monkeypatch):
    ledger = tmp_path / "ledger.txt"
    items = ["x=0,1,2", "scale=1,3", "seed=0,1", f"ledger={ledger}"]
    solo = run_sweep("sweep-probe", items, out=tmp_path / "solo")
    assert sorted(ledger.read_text().split()) == sorted(["0", "1", "2"] * 4)
    ledger.unlink()
    module = importlib.import_module("trainlab.experiments.sweep_probe")
    monkeypatch.setattr(module, "BATCHABLE", ("x", "scale"), raising=False)
    batched = run_sweep("sweep-probe", items, out=tmp_path / "batched")
    assert ledger.read_text().split() == ["batch6", "batch6"]  # one batch per seed
    assert table(batched) == table(solo)
    records = read_jsonl(batched / "trials.jsonl")
    assert [r["batch"] for r in records] == [6] * 12
    assert all(info(batched / r["path"])["status"] == "done" for r in records)
    assert all(not Path(r["path"]).is_absolute() for r in records)  # the sweep folder can be moved


def test_a_failing_batch_records_each_of_its_trials_and_the_sweep_goes_on(probe, tmp_path, monkeypatch):
    module = importlib.import_module("trainlab.experiments.sweep_probe")
    monkeypatch.setattr(module, "BATCHABLE", ("scale",), raising=False)
    sweep_dir = run_sweep("sweep-probe", ["x=0,1", "scale=1,2", "fail_at=1"], out=tmp_path)
    rows = table(sweep_dir)
    assert [(r["x"], r["status"]) for r in rows] == [("0", "done"), ("0", "done"), ("1", "failed"), ("1", "failed")]
    assert rows[2]["error"] == rows[3]["error"] == "RuntimeError: probe batch failure"
    assert info(sweep_dir)["status"] == "done"


def test_ctrl_c_leaves_an_interrupted_sweep_with_its_table_and_resume_finishes_it(probe, tmp_path):
    stop = tmp_path / "stop"
    stop.touch()
    items = ["x=0,1,2", f"stop_file={stop}"]
    with pytest.raises(KeyboardInterrupt):
        run_sweep("sweep-probe", items, out=tmp_path / "runs")
    (sweep_dir,) = (tmp_path / "runs" / "sweep-probe-sweep").iterdir()
    assert info(sweep_dir)["status"] == "interrupted"
    assert [r["status"] for r in table(sweep_dir)] == ["done", "pending", "pending"]
    assert json.loads((sweep_dir / "summary.json").read_text())["pending"] == 2
    run_sweep("sweep-probe", [], resume=sweep_dir)
    assert info(sweep_dir)["status"] == "done"
    assert [r["status"] for r in table(sweep_dir)] == ["done"] * 3
    assert [r["index"] for r in read_jsonl(sweep_dir / "trials.jsonl")] == [0, 1, 2]


def test_cli_sweep_prints_the_folder_last(probe, tmp_path, capsys):
    assert cli(["sweep", "sweep-probe", "x=range(3)", "scale=2.5", "--out", str(tmp_path)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    rows = table(Path(last))
    assert [r["x"] for r in rows] == ["0", "1", "2"]
    assert [float(r["x_squared"]) for r in rows] == [0, 1, 4]
    assert (Path(last) / "figures" / "headline.png").is_file()
    assert "figures/headline.png" in (Path(last) / "report.md").read_text()


def test_headline_figure_plots_finished_trials_one_line_per_other_key():
    rows = [
        {"x": x, "act": act, "status": "failed" if (x, act) == (2, "b") else "done", "loss": 10 * x + (act == "b")}
        for act in ("a", "b") for x in (3, 1, 2)
    ]
    fig = headline_figure(rows, ["act", "x"], "loss")  # act is not numeric: x goes on the axis
    lines = {line.get_label(): line.get_xydata().tolist() for line in fig.axes[0].lines}
    assert lines == {"act=a": [[1, 10], [2, 20], [3, 30]], "act=b": [[1, 11], [3, 31]]}
    assert headline_figure(rows, ["act"], "loss") is None and headline_figure(rows, ["x"], None) is None


@pytest.mark.parametrize(
    "args,message",
    [
        (["y=1,2"], "unknown key 'y'"),
        (["x=1,,2"], "empty value"),
        (["x=range(3,1)"], "is empty"),
        (["x=range(1,4,0)"], "step 0"),
        (["x=1,a"], "trial x=a"),
        (["x=1,1"], "same config"),
        (["scale=1,-1"], "scale must be > 0"),
        (["x=1,2", "--backend", "dask"], "--backend 'dask'"),
        (["x=1,2", "--workers", "2"], "--backend ray"),
        (["x=1,2", "--address", "10.0.0.1:6379"], "--backend ray"),
        (["x=1,2", "--gpus-per-trial", "1"], "--backend ray"),
        (["x=1,2", "--backend", "ray", "--gpus-per-trial", "-1"], "must be >= 0"),
        (["x=1,2", "--backend", "ray", "--gpus-per-trial", "1.5"], "use a value below 1 or 2"),
        (["--resume", "."], "not a sweep folder"),
    ],
)
def test_bad_input_is_one_line_and_exit_2_before_anything_runs(probe, tmp_path, capsys, args, message):
    out = tmp_path / "out"
    assert cli(["sweep", "sweep-probe", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not out.exists()  # validated up front: no folder, no trial


def test_ray_backend_without_ray_says_how_to_install_it(probe, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'trainlab\[ray\]'"):
        run_sweep("sweep-probe", ["x=0,1"], backend="ray", out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_resume_refuses_another_experiment_or_grid(probe, tmp_path):
    sweep_dir = run_sweep("sweep-probe", ["x=0,1"], out=tmp_path)
    with pytest.raises(ConfigError, match="drop the overrides"):
        run_sweep("sweep-probe", ["x=0,1,2"], resume=sweep_dir)
    with pytest.raises(ConfigError, match="not 'mnist-binary'"):
        run_sweep("mnist-binary", [], resume=sweep_dir)


def _sweep_until_trial_2(probe: Path, tmp_path: Path, items: list[str], out: Path) -> subprocess.Popen:
    """``trainlab sweep`` in a separate process (registering the probe the same way), returned
    while trial x=2 waits inside run() for its gate file: trials 0 and 1 are recorded."""
    ledger = tmp_path / "ledger.txt"
    code = (
        "import sys, trainlab.experiments as e; e.__path__.append(sys.argv[1]); "
        "from trainlab.cli import main; main(sys.argv[2:])"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(trainlab.__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(probe), "sweep", "sweep-probe", *items, "--quick", "--out", str(out)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    while not (ledger.exists() and "2" in ledger.read_text().split()):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the sweep did not reach trial 2 in 60 s: {proc.communicate()[1]}")
        time.sleep(0.02)
    return proc


def test_kill_9_mid_trial_then_resume_gives_the_uninterrupted_table(probe, tmp_path):
    gate, ledger = tmp_path / "gate", tmp_path / "ledger.txt"
    items = ["x=0,1,2,3", "diverge_at=3", f"gate={gate}", "gate_from=2", f"ledger={ledger}"]
    out = tmp_path / "killed"
    proc = _sweep_until_trial_2(probe, tmp_path, items, out)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    (sweep_dir,) = (out / "sweep-probe-sweep").iterdir()
    assert info(sweep_dir)["status"] == "running"
    assert [r["index"] for r in read_jsonl(sweep_dir / "trials.jsonl")] == [0, 1]
    assert json.loads((sweep_dir / "lock.json").read_text())["pid"] == proc.pid  # a dead holder's lock: taken over

    gate.touch()
    assert cli(["sweep", "sweep-probe", "--resume", str(sweep_dir)]) == 0
    records = read_jsonl(sweep_dir / "trials.jsonl")
    assert sorted(r["index"] for r in records) == [0, 1, 2, 3]
    assert len({r["key"] for r in records}) == len(records)  # no trial recorded twice
    # Only the trial the kill interrupted ran twice; its first folder is marked interrupted.
    assert Counter(ledger.read_text().split()) == {"0": 1, "1": 1, "2": 2, "3": 1}
    statuses = sorted(info(p)["status"] for p in (sweep_dir / "trials" / "sweep-probe").iterdir())
    assert statuses == ["done", "done", "done", "done", "interrupted"]
    assert info(sweep_dir)["status"] == "done"

    fresh = run_sweep("sweep-probe", items, quick=True, out=tmp_path / "fresh")
    assert table(sweep_dir) == table(fresh)
    assert [r["status"] for r in table(fresh)] == ["done", "done", "done", "diverged"]


def test_a_second_resume_while_the_sweep_runs_is_refused_naming_the_holder(probe, tmp_path):
    gate, ledger = tmp_path / "gate", tmp_path / "ledger.txt"
    items = ["x=0,1,2,3", f"gate={gate}", "gate_from=2", f"ledger={ledger}"]
    proc = _sweep_until_trial_2(probe, tmp_path, items, tmp_path / "out")
    try:
        (sweep_dir,) = (tmp_path / "out" / "sweep-probe-sweep").iterdir()
        with pytest.raises(ConfigError, match=f"in use by pid {proc.pid} on "):
            run_sweep("sweep-probe", [], resume=sweep_dir)
        assert Counter(ledger.read_text().split()) == {"0": 1, "1": 1, "2": 1}  # nothing ran twice
        proc.send_signal(signal.SIGTERM)  # SIGTERM stops a sweep as Ctrl-C does
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143
    assert err.strip().splitlines()[-1] == f"interrupted: {sweep_dir}"
    assert info(sweep_dir)["status"] == "interrupted"
    assert [r["status"] for r in table(sweep_dir)] == ["done", "done", "pending", "pending"]
    gate.touch()
    run_sweep("sweep-probe", [], resume=sweep_dir)
    assert [r["status"] for r in table(sweep_dir)] == ["done"] * 4
    assert Counter(ledger.read_text().split()) == {"0": 1, "1": 1, "2": 2, "3": 1}


def test_resume_after_a_torn_last_record_reruns_that_trial_and_loses_none(probe, tmp_path):
    ledger = tmp_path / "ledger.txt"
    sweep_dir = run_sweep("sweep-probe", ["x=0,1,2", f"ledger={ledger}"], out=tmp_path)
    whole = table(sweep_dir)
    lines = (sweep_dir / "trials.jsonl").read_text().splitlines(keepends=True)
    # the writer was killed in the middle of trial 2's record
    (sweep_dir / "trials.jsonl").write_text("".join(lines[:2]) + lines[2][: len(lines[2]) // 2])
    run_sweep("sweep-probe", [], resume=sweep_dir)
    assert Counter(ledger.read_text().split()) == {"0": 1, "1": 1, "2": 2}
    assert [r["index"] for r in read_jsonl(sweep_dir / "trials.jsonl")] == [0, 1, 2]
    assert table(sweep_dir) == whole and info(sweep_dir)["status"] == "done"
    assert json.loads((sweep_dir / "summary.json").read_text())["pending"] == 0
