"""Data-parallel training: 2 CPU processes on gloo train one tiny model in step."""

import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from trainlab.train.distributed import DistContext, from_env, shard

pytestmark = pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                                reason="torch.distributed with gloo is not available")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_shards_of_a_global_batch_are_disjoint_and_cover_it():
    batch = torch.randperm(11)
    parts = [shard(batch, DistContext(rank, rank, 3)) for rank in range(3)]
    assert sorted(torch.cat(parts).tolist()) == sorted(batch.tolist())
    assert shard(batch, None) is batch


def test_from_env_needs_more_than_one_process(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert from_env() is None
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert from_env() == DistContext(1, 1, 2)


def test_two_gloo_processes_train_in_step(tmp_path):
    import distributed_worker

    mp.spawn(distributed_worker.train_rank, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert r0["backend"] == "gloo"
    for name, p in r0["params"].items():
        assert torch.equal(p, r1["params"][name]), name  # gradients averaged: the replicas never drift
    assert [h["train_loss"] for h in r0["history"]] == [h["train_loss"] for h in r1["history"]]
    assert "test_acc" in r0["history"][-1] and "test_acc" not in r1["history"][-1]  # rank 0 evaluates
    assert r0["acc"] > 90


@pytest.mark.slow  # three data-parallel runs in two fresh processes: ~18 s of CPU in all
def test_two_gloo_processes_stopped_and_resumed_end_as_an_uninterrupted_run(tmp_path):
    # cifar-cnn's quick run, 2 seeds of 2 epochs on 2 ranks: snapshots 1-2 for seed 0, 3-4 for seed 1;
    # stopped inside seed 1, every rank loads the snapshots rank 0 saved.
    import distributed_worker
    from helpers import comparable_results

    from trainlab.checkpoints import read_checkpoint

    ports = (_free_port(), _free_port(), _free_port())
    mp.spawn(distributed_worker.stop_and_resume_rank,
             args=(2, ports, str(tmp_path), 3, ["seeds=2", "epochs=2"]), nprocs=2, join=True)
    (whole,), (resumed,) = ((tmp_path / part / "cifar-cnn").iterdir() for part in ("whole", "stopped"))
    assert comparable_results(resumed) == comparable_results(whole)
    assert comparable_results(resumed)["status"] == "done"
    (wa, _), (wb, _) = read_checkpoint(whole, "cnn"), read_checkpoint(resumed, "cnn")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
