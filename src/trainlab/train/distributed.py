"""Data-parallel training across processes started by ``torchrun``.

``torchrun --nproc_per_node=N -m trainlab run NAME ...`` starts N copies of the
CLI with ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE`` and a rendezvous address in
their environment. :func:`from_env` reads them, :func:`setup` joins the process
group (gloo on the CPU, NCCL on CUDA GPUs, one GPU per local rank) and
:func:`teardown` leaves it. Every rank draws the same permutation of the
training set each epoch and takes every ``world_size``-th index of each global
batch, so together the ranks see exactly the batches one process would, each
rank only its shard. Only rank 0 writes anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from trainlab.errors import ConfigError


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
