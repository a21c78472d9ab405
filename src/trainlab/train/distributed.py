"""Data-parallel training across processes started by ``torchrun``.

``torchrun --nproc_per_node=N -m trainlab run NAME ...`` starts N copies of the
CLI with ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE`` and a rendezvous address in
their environment. :func:`from_env` reads them, :func:`setup` joins the process
group (gloo on the CPU, NCCL on CUDA GPUs, one GPU per local rank) and
:func:`teardown` leaves it. Every rank draws the same permutation of the
training set each epoch and takes every ``world_size``-th index of each global
batch, so together the ranks see exactly the batches one process would, each
rank only its shard. Only rank 0 writes anything and draws progress bars.

Data: :func:`local_main_first` lets local rank 0 of each node fill the dataset cache
while the node's other ranks wait (the cache's file lock, ``data.sources.cache_lock``,
keeps nodes sharing one filesystem apart too).

BatchNorm statistics stay per rank (:func:`wrap` turns DDP's ``broadcast_buffers`` off):
the ranks' running means and variances are never used, since rank 0 alone evaluates and
saves, so copying rank 0's to every rank at each forward would cost a collective per step
and change nothing that is reported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from trainlab.errors import ConfigError, TrainlabError

T = TypeVar("T")


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in a data-parallel group of processes."""

    rank: int
    local_rank: int
    world_size: int
    backend: str = "gloo"

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def from_env() -> DistContext | None:
    """The data-parallel group this process belongs to, from torchrun's variables; None when not
    launched by torchrun (or launched with a single process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    return DistContext(rank=int(os.environ["RANK"]), local_rank=int(os.environ.get("LOCAL_RANK", "0")),
                       world_size=world)


def device_for(ctx: DistContext, device: torch.device) -> torch.device:
    """The device of this rank: ``cuda:LOCAL_RANK`` when running on CUDA, else ``device`` unchanged."""
    if device.type == "cuda":
        if ctx.local_rank >= torch.cuda.device_count():
            raise ConfigError(f"local rank {ctx.local_rank} has no GPU ({torch.cuda.device_count()} visible); "
                              "start at most one process per GPU")
        return torch.device("cuda", ctx.local_rank)
    return device


def setup(ctx: DistContext, device: torch.device) -> DistContext:
    """Join the process group: NCCL for CUDA devices, gloo otherwise. Returns ``ctx`` with its backend."""
    if not dist.is_available():
        raise ConfigError("this torch build has no torch.distributed; run without torchrun")
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=ctx.rank, world_size=ctx.world_size)
    return DistContext(ctx.rank, ctx.local_rank, ctx.world_size, backend)


def teardown() -> None:
    """Leave the process group together, then destroy it.

    Rank 0 still writes the report when the other ranks are done; a rank that shut its
    connections down meanwhile could make gloo abort the other side. So every rank waits
    here (at most 10 minutes, then gives up: a rank that failed or was killed reports its
    own error) before the group is destroyed.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    try:
        if dist.get_backend() == "gloo":
            dist.monitored_barrier(timeout=timedelta(minutes=10))
        else:
            dist.barrier()
    except RuntimeError:
        pass  # another rank failed or left; its own error is the one to report
    dist.destroy_process_group()


def wrap(model: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
    """``model`` in DistributedDataParallel, gradients averaged over the ranks, BatchNorm statistics per rank."""
    return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                               broadcast_buffers=False)


def local_main_first(load: Callable[[], T], ctx: DistContext | None) -> T:
    """``load()`` on every rank, local rank 0 first: it fills the node's dataset cache, then the
    others read it (a barrier for all ranks).

    The barrier gathers whether each local rank 0 failed, so a failure there stops every rank
    at once with its message, instead of leaving the others to wait in the first collective
    until its timeout.
    """
    if ctx is None:
        return load()
    failure: BaseException | None = None
    if ctx.local_rank == 0:
        try:
            result = load()
        except Exception as exc:  # every rank must reach the barrier below
            failure = exc
    messages: list[str | None] = [None] * ctx.world_size
    dist.all_gather_object(messages, None if failure is None else f"{type(failure).__name__}: {failure}")
    if failure is not None:
        raise failure
    for rank, message in enumerate(messages):
        if message is not None:
            raise TrainlabError(f"rank {rank} could not load the data, so no rank trains: {message}")
    return result if ctx.local_rank == 0 else load()


def shard(global_batch: torch.Tensor, ctx: DistContext | None) -> torch.Tensor:
    """This rank's part of a global batch of indices: every ``world_size``-th, from ``rank``."""
    return global_batch if ctx is None else global_batch[ctx.rank :: ctx.world_size]


def all_sum(tensor: torch.Tensor, ctx: DistContext | None) -> torch.Tensor:
    """Sum ``tensor`` over the ranks (in place); a no-op outside a data-parallel group."""
    if ctx is not None:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def broadcast_object(obj: object, ctx: DistContext | None) -> object:
    """Rank 0's ``obj`` on every rank (e.g. an error message, so all ranks stop together)."""
    if ctx is None:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
