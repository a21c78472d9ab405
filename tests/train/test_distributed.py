"""Data-parallel training: 2 CPU processes on gloo train one tiny model in step."""

import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from trainlab.train.distributed import DistContext, from_env, local_main_first, shard

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


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """What each of 2 gloo processes recorded (distributed_worker.train_rank): one spawn for the module's tests."""
    import distributed_worker

    out = tmp_path_factory.mktemp("ranks")
    mp.spawn(distributed_worker.train_rank, args=(2, _free_port(), str(out)), nprocs=2, join=True)
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1)]


def test_two_gloo_processes_train_in_step(two_ranks):
    r0, r1 = two_ranks
    assert r0["backend"] == "gloo"
    for name, p in r0["params"].items():
        assert torch.equal(p, r1["params"][name]), name  # gradients averaged: the replicas never drift
    assert [h["train_loss"] for h in r0["history"]] == [h["train_loss"] for h in r1["history"]]
    assert "test_acc" in r0["history"][-1] and "test_acc" not in r1["history"][-1]  # rank 0 evaluates
    assert r0["acc"] > 90


def test_only_rank_0_draws_a_progress_bar(two_ranks):
    assert [r["bars"] for r in two_ranks] == [[True], [False]]


def test_batchnorm_statistics_stay_per_rank(two_ranks):
    """As the README says: DDP's broadcast_buffers would have made rank 1's running mean rank 0's 0.0."""
    assert [r["batchnorm"] for r in two_ranks] == [0.0, 1.0]


def test_local_rank_0_loads_first_and_its_failure_stops_every_rank(two_ranks):
    assert [r["found_filled"] for r in two_ranks] == [True, True]  # rank 1 loaded after rank 0 had filled it
    r0, r1 = (r["load_error"] for r in two_ranks)
    assert r0 == "DataError: cifar10 not found: put it somewhere"  # rank 0 raises its own error
    assert r1 == "TrainlabError: rank 0 could not load the data, so no rank trains: " + r0  # and rank 1 too, at once


def test_outside_a_group_local_main_first_just_loads():
    assert local_main_first(lambda: 7, None) == 7
