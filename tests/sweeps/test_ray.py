"""The Ray Tune backend gives the same table as the local backend (a real experiment, local Ray, 2 CPUs),
and its trials ask for a GPU share where their device can be CUDA.

The tests that start Ray are marked ``slow`` (starting Ray takes seconds): ``pytest -m "not slow"``
skips them; CI runs them (the Makefile installs ``trainlab[ray]``).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from trainlab.errors import ConfigError
from trainlab.files import read_jsonl
from trainlab.sweeps import run_sweep
from trainlab.sweeps.ray import gpu_share

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


@pytest.mark.parametrize("devices,asked,node_gpus,share", [
    (["auto"], None, 2, 1.0),    # a GPU node: auto would run on the CPU without a share
    (["cuda"], None, 8, 1.0),
    (["auto"], None, 0, 0.0),    # no GPU anywhere: CPU trials, as before
    (["cpu"], None, 2, 0.0),     # CPU trials leave the GPUs to others
    (["mps"], None, 1, 0.0),
    (["auto", "cpu"], None, 1, 1.0),
    (["auto"], 0.25, 1, 0.25),   # four trials share one GPU
    (["auto"], 0, 4, 0.0),
    (["cpu"], 2, 2, 2.0),
])
def test_gpu_share_per_trial(devices, asked, node_gpus, share):
    assert gpu_share(devices, asked, node_gpus) == share


@pytest.mark.parametrize("devices,asked,node_gpus,message", [
    (["cuda"], None, 0, "device=cuda but the Ray cluster has no GPU; use device=auto or cpu"),
    (["cuda:1"], 0, 2, "device=cuda:1 but --gpus-per-trial 0 hides the GPUs from every trial"),
    (["auto"], 2, 1, "--gpus-per-trial 2 but the largest Ray node has 1 GPUs"),
])
def test_gpu_shares_no_trial_could_use_are_one_line(devices, asked, node_gpus, message):
    with pytest.raises(ConfigError) as info:
        gpu_share(devices, asked, node_gpus)
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.slow
def test_trials_ask_for_a_gpu_where_ray_has_one(tmp_path, monkeypatch):
    """A local Ray told it has one GPU (a logical resource: this machine has none) schedules each
    device=auto trial with one GPU, one at a time; the trials still finish (on the CPU here)."""
    from ray import tune

    asked = []
    real_init, real_with_resources = ray.init, tune.with_resources
    monkeypatch.setattr(ray, "init", lambda **kw: real_init(**kw, num_gpus=1))
    monkeypatch.setattr(tune, "with_resources",
                        lambda trainable, resources: asked.append(resources) or real_with_resources(trainable, resources))
    items = ["lr=0.001,0.05", "batch_sizes=[32]", "epochs=1"]  # device left at auto
    sweep = run_sweep("mnist-binary", items, quick=True, backend="ray", workers=2, out=tmp_path)
    assert asked == [{"cpu": 1, "gpu": 1.0}]
    assert [r["status"] for r in read_jsonl(sweep / "trials.jsonl")] == ["done", "done"]
