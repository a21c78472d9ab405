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
