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
