"""Independent tasks on every core: one single-threaded worker process per core.

    plan = cpu_plan(device, step_flops, tasks=len(stacks), total_flops=flops)
    results = map_tasks(train_stack, stacks, workers=plan.workers)

``fn`` must be a module-level function and tasks and results picklable (tensors
travel through shared memory). Workers are started with ``spawn`` (no fork of a
process that holds OpenMP threads) and claim one core each (one torch/BLAS
thread, and ``cpu_plan`` inside them plans no more threads or workers); with
``workers=1`` the tasks run here, one after another, also on one thread. A
task's result therefore does not depend on where it ran: the same single-threaded
operations on the same inputs give the same bits, so a parallel run reproduces a
sequential one exactly. Results come back in the order of ``tasks``.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable, Sequence, TypeVar

import torch

from trainlab.device import claim_cores, core_limit

T = TypeVar("T")


def _one_core() -> None:
    claim_cores(1)


def map_tasks(fn: Callable[[Any], T], tasks: Sequence[Any], workers: int = 1) -> list[T]:
    """``[fn(task) for task in tasks]``, on up to ``workers`` processes of one thread each.

    Give the longest tasks first: workers take the next task as they finish one.
    """
    tasks = list(tasks)
    workers = max(1, min(workers, len(tasks)))
    if workers == 1:
        with core_limit(1):
            return [fn(task) for task in tasks]
    context = torch.multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_one_core) as pool:
        return list(pool.map(fn, tasks))
