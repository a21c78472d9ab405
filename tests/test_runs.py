import json
from dataclasses import dataclass

import numpy as np

from trainlab.config import BaseConfig
from trainlab.report.figures import new_figure
from trainlab.report.html import render_report
from trainlab.files import read_jsonl
from trainlab.runs import Run, list_runs


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
