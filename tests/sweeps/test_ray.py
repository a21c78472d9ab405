"""The Ray Tune backend gives the same table as the local backend (a real experiment, local Ray, 2 CPUs).

Marked ``slow`` (starting Ray takes seconds): ``pytest -m "not slow"`` skips it;
CI runs it (the Makefile installs ``trainlab[ray]``).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from trainlab.files import read_jsonl
from trainlab.sweeps import run_sweep

ray = pytest.importorskip("ray")

# Timing columns differ from run to run; the folder names carry timestamps.
NOT_COMPARED = ("seconds", "folder")


def numbers(sweep_dir: Path) -> list[dict[str, str]]:
    with open(sweep_dir / "tables" / "trials.csv", newline="") as fh:
        return [
            {k: v for k, v in row.items() if k not in NOT_COMPARED and "time" not in k}
            for row in csv.DictReader(fh)
        ]


def same(a: str, b: str) -> bool:
    try:
        return math.isclose(float(a), float(b), rel_tol=1e-6)  # Ray workers use 1 thread
    except ValueError:
        return a == b


@pytest.mark.slow
def test_ray_backend_gives_the_local_table(tmp_path):
    items = ["lr=0.001,0.05", "batch_sizes=[32]", "epochs=1", "device=cpu"]
    local = run_sweep("mnist-binary", items, quick=True, out=tmp_path / "local")
    remote = run_sweep("mnist-binary", items, quick=True, backend="ray", workers=2, out=tmp_path / "ray")
    assert not ray.is_initialized()  # the local Ray it started is shut down

    a, b = numbers(local), numbers(remote)
    assert [r["status"] for r in b] == ["done", "done"]
    assert [r["key"] for r in a] == [r["key"] for r in b]
    assert a[0].keys() == b[0].keys() and "test_acc" in a[0]
    for row_a, row_b in zip(a, b, strict=True):
        assert all(same(row_a[k], row_b[k]) for k in row_a), (row_a, row_b)
    # the learning rate matters, so equal tables are not equal by accident
    assert float(a[1]["test_acc"]) > float(a[0]["test_acc"])

    records = read_jsonl(remote / "trials.jsonl")
    assert sorted(r["index"] for r in records) == [0, 1]
    for record in records:  # each trial's own run folder, written by the Ray worker
        assert (remote / record["path"] / "report.html").is_file()
