"""Worker threads give exactly what running the tasks here one after another gives."""

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
