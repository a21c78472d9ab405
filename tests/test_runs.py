import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from trainlab.config import BaseConfig
from trainlab.report.figures import new_figure
from trainlab.report.html import render_report
from trainlab.files import read_jsonl
from trainlab.errors import ConfigError
from trainlab.run_list import list_runs
from trainlab.runs import Run, check_out


@dataclass
class Cfg(BaseConfig):
    x: int = 1
    """x"""


def test_run_folder_layout_and_report(tmp_path):
    run = Run.create(tmp_path, "demo", Cfg(), "cpu")
    assert run.path.parent == tmp_path / "demo"
    run.log(epoch=1, loss=np.float32(0.5))
    run.log(epoch=2, loss=float("nan"))
    run.table("t", [{"a": 1, "b": 0.25}, {"a": 2, "b": 0.5}], title="A table", row_classes={1: "best"})
    fig, ax = new_figure()
    ax[0, 0].plot([1, 2], [3, 4])
    run.figure("f", fig, title="A figure")
    run.text("model", "MLP(...)", code=True)
    run.summary(headline="acc", acc=99.5)
    run.finish("done", 1.0)
    for rel in ("config.yaml", "env.json", "metrics.jsonl", "tables/t.csv", "tables/t.md",
                "figures/f.png", "summary.json", "report.md", "report.html", "run.json"):
        assert (run.path / rel).is_file(), rel
    records = read_jsonl(run.path / "metrics.jsonl")
    assert records == [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": None}]
    env = json.loads((run.path / "env.json").read_text())
    assert {"torch", "numpy", "python", "device", "seed", "git_commit"} <= set(env)
    page = (run.path / "report.html").read_text()
    assert "data:image/png;base64," in page and "A table" in page and "MLP(...)" in page
    assert '<tr class="best">\n<td style="text-align:right">2</td>' in page and page.count('<tr class="best">') == 1
    assert (run.path / "tables/t.csv").read_text().splitlines() == ["a,b", "1,0.25", "2,0.5"]
    # re-rendering from files alone gives the same report
    before = (run.path / "report.md").read_text()
    render_report(run.path)
    assert (run.path / "report.md").read_text() == before
    listed = list_runs(tmp_path)
    assert listed[0]["status"] == "done" and listed[0]["headline_value"] == "acc=99.50"  # a percentage: 2 decimals
    run.summary(acc=99.123456)
    assert list_runs(tmp_path)[0]["headline_value"] == "acc=99.12"


def test_runs_made_by_a_tour_are_listed(tmp_path):
    Run.create(tmp_path / "tour-20260101-000000", "demo", Cfg(), "cpu").finish("done", 0.1)
    assert [r["experiment"] for r in list_runs(tmp_path)] == ["demo"]


def test_run_folders_are_never_reused(tmp_path):
    paths = {Run.create(tmp_path, "demo", Cfg(), "cpu").path for _ in range(3)}
    assert len(paths) == 3


def _set_info(run_dir, **values):
    info = json.loads((run_dir / "run.json").read_text())
    info.update(values)
    (run_dir / "run.json").write_text(json.dumps(info))


def _dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_running_run_whose_process_died_is_listed_killed(tmp_path):
    run = Run.create(tmp_path, "demo", Cfg(), "cpu")
    info = json.loads((run.path / "run.json").read_text())
    assert info["pid"] == os.getpid() and info["host"] == socket.gethostname() and info["pid_started"]
    assert list_runs(tmp_path)[0]["status"] == "running"  # this very process: alive
    _set_info(run.path, pid=_dead_pid())
    assert list_runs(tmp_path)[0]["status"] == "killed"
    # the pid is alive again, but it is another process (the kernel reused the pid)
    _set_info(run.path, pid=os.getpid(), pid_started=info["pid_started"] + "0")
    assert list_runs(tmp_path)[0]["status"] == "killed"
    assert json.loads((run.path / "run.json").read_text())["status"] == "running"  # computed, not written
    _set_info(run.path, pid=_dead_pid(), host="another-host")  # cannot tell from here: say where it runs
    (listed,) = list_runs(tmp_path)
    assert listed["status"] == "running" and "another-host" in listed["note"]
    run.finish("done")
    assert list_runs(tmp_path)[0]["status"] == "done"


BAD_VALUES = st.one_of(st.none(), st.integers(), st.floats(allow_nan=False), st.lists(st.integers(), max_size=2),
                       st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@given(key=st.sampled_from(["experiment", "status", "started", "headline"]), value=BAD_VALUES)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_one_damaged_run_json_is_skipped_with_its_reason_and_the_rest_listed(tmp_path_factory, key, value):
    assume(not (key == "headline" and value is None))  # no headline is fine
    out = tmp_path_factory.mktemp("out")
    good = Run.create(out, "demo", Cfg(), "cpu")
    good.finish("done")
    bad = Run.create(out, "other", Cfg(), "cpu")
    _set_info(bad.path, **{key: value})
    (out / "notes" / "junk").mkdir(parents=True)
    (out / "notes" / "junk" / "run.json").write_text("[1, 2")
    damaged = []
    listed = list_runs(out, on_damaged=lambda folder, why: damaged.append((folder, why)))
    assert [r["path"] for r in listed] == [str(good.path)]
    assert sorted(folder for folder, _ in damaged) == sorted([bad.path, out / "notes" / "junk"])
    assert all(why and "\n" not in why for _, why in damaged)


@pytest.mark.parametrize("make, fragment", [
    (lambda p: p.symlink_to(p.parent / "gone"), "which does not exist"),
    (lambda p: p.write_text("x"), "is a file"),
    (lambda p: (p.parent / "f").write_text("x") and p.symlink_to(p.parent / "f"), "is a file"),
])
@pytest.mark.parametrize("below", ["", "sub/deeper"])
def test_an_out_that_cannot_hold_run_folders_is_one_config_error(tmp_path, make, fragment, below):
    out = tmp_path / "out"
    make(out)
    target = out / below if below else out
    with pytest.raises(ConfigError, match=fragment):
        check_out(target)
    with pytest.raises(ConfigError, match=fragment):  # Run.create checks too (it looped forever on a dangling link)
        Run.create(target, "demo", Cfg(), "cpu")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_out_is_one_config_error(tmp_path):
    out = tmp_path / "ro"
    out.mkdir(mode=0o555)
    with pytest.raises(ConfigError, match="not writable"):
        check_out(out / "runs")


def test_a_run_that_says_its_result_diverged_finishes_diverged(tmp_path):
    quiet = Run.create(tmp_path, "demo", Cfg(), "cpu")
    quiet.finish_returned(0.5)
    assert json.loads((quiet.path / "run.json").read_text())["status"] == "done"
    run = Run.create(tmp_path, "demo", Cfg(x=2), "cpu")
    run.mark_diverged("every batch size: NaN loss")
    run.finish_returned(0.5)
    info = json.loads((run.path / "run.json").read_text())
    assert info["status"] == "diverged" and info["error"] == "every batch size: NaN loss"
    assert "diverged" in (run.path / "report.md").read_text()
    assert {r["status"] for r in list_runs(tmp_path)} == {"done", "diverged"}
