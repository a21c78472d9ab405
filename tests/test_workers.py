"""Worker threads give exactly what running the tasks here one after another gives."""

import pytest
import torch

from trainlab import workers
from trainlab.device import CpuPlan, global_seed, torch_generator
from trainlab.workers import run_independent


def train_a_little(seed: int) -> tuple[int, torch.Tensor]:
    """A task: a few Adam steps of a small net on seeded data.

    It keeps the workers' rule: module initialisers draw from torch's global generator only
    inside ``global_seed`` (one thread at a time), everything else from its own generator.
    A task that called ``torch.manual_seed`` itself would race with the other thread.
    """
    with global_seed(seed):
        net = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    x = torch.randn(256, 8, generator=torch_generator(seed))
    y = x.sum(1, keepdim=True).sin()
    for _ in range(5):
        loss = torch.nn.functional.mse_loss(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return seed, torch.cat([p.detach().flatten() for p in net.parameters()])


def run_on(n_workers, monkeypatch, fn, tasks):
    """``run_independent`` with ``n_workers`` worker threads, whatever the machine and the costs."""
    monkeypatch.setattr(workers, "cpu_plan", lambda *a, **k: CpuPlan(workers=n_workers, threads=1))
    return run_independent(fn, tasks, costs=[1.0] * len(tasks), step_flops=1.0, device="cpu")


def test_parallel_results_equal_sequential_bit_for_bit_and_in_order(monkeypatch):
    seeds = [3, 1, 2]
    sequential = run_on(1, monkeypatch, train_a_little, seeds)
    parallel = run_on(2, monkeypatch, train_a_little, seeds)
    assert [s for s, _ in parallel] == seeds
    for (_, a), (_, b) in zip(sequential, parallel):
        assert torch.equal(a, b)


def test_inside_a_task_the_plan_sees_one_core(monkeypatch):
    from trainlab.device import cpu_plan

    plans = run_on(2, monkeypatch, lambda _: cpu_plan("cpu", 1e12, tasks=4, total_flops=1e15), range(2))
    assert all(plan.workers == 1 and plan.threads == 1 for plan in plans)


def test_run_independent_starts_the_costliest_first_and_returns_in_task_order():
    started = []

    def task(name):
        started.append(name)
        return name.upper()

    # too little work for workers: one after another here, in falling cost
    out = run_independent(task, ["a", "b", "c"], costs=[1.0, 3.0, 2.0], step_flops=1.0, device="cpu")
    assert out == ["A", "B", "C"] and started == ["b", "c", "a"]


def test_run_independent_tells_each_task_whether_it_runs_alone(monkeypatch):
    from trainlab import device

    monkeypatch.setattr(device, "available_cores", lambda: 2)
    big = [device.MIN_PARALLEL_FLOPS] * 2
    side_by_side = run_independent(lambda t, alone: (t, alone), [1, 2], costs=big, step_flops=1.0, device="cpu",
                                   tell_alone=True)
    one_by_one = run_independent(lambda t, alone: (t, alone), [1, 2], costs=[1.0, 1.0], step_flops=1.0,
                                 device="cpu", tell_alone=True)
    assert side_by_side == [(1, False), (2, False)] and one_by_one == [(1, True), (2, True)]


def test_an_interrupted_pool_stops_its_running_tasks_at_their_next_boundary_and_starts_no_more():
    # Ctrl-C reaches only the main thread, which waits in the pool; the running tasks see
    # stop_requested() at their next boundary (a snapshot slot's due/save) and end there.
    import os
    import signal
    import threading
    import time

    from trainlab.workers import _map_tasks, stop_requested

    started, stopped_at = [], {}

    def task(i: int) -> int:
        started.append(i)
        for step in range(2000):  # 20 s if nothing stops it
            if stop_requested():
                stopped_at[i] = step
                raise KeyboardInterrupt
            time.sleep(0.01)
        return i

    assert not stop_requested()  # outside a pool
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    begin = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        _map_tasks(task, range(4), workers=2)
    assert time.monotonic() - begin < 5
    assert sorted(started) == [0, 1] and sorted(stopped_at) == [0, 1]  # tasks 2 and 3 never started


def test_a_slot_in_a_stopping_pool_saves_at_once_then_stops(tmp_path):
    import threading

    from trainlab.resume import RunSnapshots
    from trainlab.train.snapshots import pack


    slot = RunSnapshots(tmp_path, every_s=3600).slot("job")
    assert not slot.due()
    stop = threading.Event()
    workers._WORKER.stop = stop
    try:
        stop.set()
        assert slot.due()
        with pytest.raises(KeyboardInterrupt):
            slot.save(pack(step=3))
    finally:
        del workers._WORKER.stop
    assert RunSnapshots(tmp_path, every_s=0).load("job").info["step"] == 3
