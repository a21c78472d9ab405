"""Independent tasks on every core: one single-threaded worker thread per core.

    results = run_independent(train_stack, stacks, costs=flops_per_stack,
                              step_flops=largest_step_flops, device=device)

:func:`run_independent` is the one way trainlab runs independent work (stacks of
models, data sets, seeds, fits): it asks :func:`trainlab.device.cpu_plan` for the
workers and threads, starts the costliest tasks first, and returns the results in
the order of ``tasks``.

Every task runs on one torch/BLAS thread, wherever it runs, so its result does not
depend on where it ran: the same single-threaded operations on the same inputs give
the same bits, and a parallel run reproduces a sequential one exactly.

Workers are threads: torch and NumPy release the GIL inside every operation, so two
threads each stepping a stack of models keep two cores busy, and a thread starts in
microseconds, shares the data without copies and needs nothing picklable.

Inside a task :func:`trainlab.device.cpu_plan` sees one core, so nothing a task
calls plans more threads or workers of its own. Tasks draw randomness from their
own generators; torch's global one (module initialisers) only inside
:func:`trainlab.device.global_seed`, which lets one thread at a time seed and draw.
A model built only to hold given weights is built without initialising them
(:meth:`trainlab.nn.mlp.MLP.with_weights`): its initialisers would draw from the
global generator while another thread holds it seeded.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence, TypeVar

import torch

from trainlab.device import CpuPlan, core_limit, cpu_plan, use_threads

T = TypeVar("T")


_WORKER = threading.local()
"""Per worker thread: ``stop``, the event of the pool it belongs to (see :func:`stop_requested`)."""


def stop_requested() -> bool:
    """Whether the pool running this task was told to stop (Ctrl-C or SIGTERM reached the thread that
    waits for it). Signals reach only the main thread, and a pool waits for its running tasks before
    it can raise, so long tasks look here at their boundaries: a training job's snapshot slot does
    (:class:`trainlab.resume.Slot`): it saves and stops at once. False outside a worker thread."""
    stop = getattr(_WORKER, "stop", None)
    return stop is not None and stop.is_set()


def _map_tasks(fn: Callable[[Any], T], tasks: Sequence[Any], workers: int) -> list[T]:
    """``[fn(task) for task in tasks]`` on up to ``workers`` single-threaded worker threads."""
    tasks = list(tasks)
    workers = max(1, min(workers, len(tasks)))
    # torch's and BLAS's thread counts are per process: set once here, for every worker thread
    with core_limit(1):
        if workers == 1:
            return [fn(task) for task in tasks]
        stop = threading.Event()
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="trainlab-worker",
                                  initializer=setattr, initargs=(_WORKER, "stop", stop))
        try:
            return list(pool.map(fn, tasks))
        except BaseException:
            # Interrupted (or a task failed): tasks not started never start, running ones stop at
            # their next snapshot boundary instead of training to their end.
            stop.set()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _run_planned(fn: Callable[[Any], T], tasks: Sequence[Any], plan: CpuPlan) -> list[T]:
    """The tasks as ``plan`` says (:func:`trainlab.device.cpu_plan`): on ``plan.workers``
    worker threads, or here one after another on ``plan.threads`` threads."""
    if plan.workers > 1:
        return _map_tasks(fn, tasks, workers=plan.workers)
    with use_threads(plan.threads):
        return [fn(task) for task in tasks]


def run_independent(
    fn: Callable[..., T],
    tasks: Sequence[Any],
    *,
    costs: Sequence[float],
    step_flops: float,
    device: torch.device | str,
    tell_alone: bool = False,
) -> list[T]:
    """``[fn(task) for task in tasks]``, on the cores :func:`trainlab.device.cpu_plan` gives them.

    ``costs`` are the tasks' FLOPs (their sum decides whether workers pay, their order
    which task starts first: the costliest, so that no long task starts last);
    ``step_flops`` is the largest single step any task takes (one thread or more when
    the tasks run here one after another). Results come back in the order of ``tasks``.
    With ``tell_alone`` the call is ``fn(task, alone)``, ``alone`` True when the tasks run
    one after another here (a progress bar per task then reads well; side by side they
    would interleave).
    """
    tasks, costs = list(tasks), [float(c) for c in costs]
    if len(costs) != len(tasks):
        raise ValueError(f"{len(tasks)} tasks but {len(costs)} costs")
    plan = cpu_plan(device, step_flops, tasks=len(tasks), total_flops=sum(costs))
    order = sorted(range(len(tasks)), key=lambda i: -costs[i])  # stable: equal costs keep their order
    alone = plan.workers == 1

    def call(i: int) -> T:
        return fn(tasks[i], alone) if tell_alone else fn(tasks[i])

    results: list[Any] = [None] * len(tasks)
    for i, result in zip(order, _run_planned(call, order, plan)):
        results[i] = result
    return results
