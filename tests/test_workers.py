"""Worker processes give exactly what running the tasks here one after another gives."""

import pytest
import torch

from trainlab.device import global_seed, torch_generator
from trainlab.workers import map_tasks


def train_a_little(seed: int) -> tuple[int, torch.Tensor]:
    """A task: a few Adam steps of a small net on seeded data (module-level, so workers can import it).

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


@pytest.mark.parametrize("processes", [False, True])
def test_parallel_results_equal_sequential_bit_for_bit_and_in_order(processes):
    seeds = [3, 1, 2]
    sequential = map_tasks(train_a_little, seeds, workers=1)
    parallel = map_tasks(train_a_little, seeds, workers=2, processes=processes)
    assert [s for s, _ in parallel] == seeds
    for (_, a), (_, b) in zip(sequential, parallel):
        assert torch.equal(a, b)


def test_inside_a_task_the_plan_sees_one_core():
    from trainlab.device import cpu_plan

    plans = map_tasks(lambda _: cpu_plan("cpu", 1e12, tasks=4, total_flops=1e15), range(2), workers=2)
    assert all(plan.workers == 1 and plan.threads == 1 for plan in plans)


def test_run_independent_starts_the_costliest_first_and_returns_in_task_order():
    from trainlab.workers import run_independent

    started = []

    def task(name):
        started.append(name)
        return name.upper()

    # too little work for workers: one after another here, in falling cost
    out = run_independent(task, ["a", "b", "c"], costs=[1.0, 3.0, 2.0], step_flops=1.0, device="cpu")
    assert out == ["A", "B", "C"] and started == ["b", "c", "a"]


def test_run_independent_tells_each_task_whether_it_runs_alone(monkeypatch):
    from trainlab import device
    from trainlab.workers import run_independent

    monkeypatch.setattr(device, "available_cores", lambda: 2)
    big = [device.MIN_PARALLEL_FLOPS] * 2
    side_by_side = run_independent(lambda t, alone: (t, alone), [1, 2], costs=big, step_flops=1.0, device="cpu",
                                   tell_alone=True)
    one_by_one = run_independent(lambda t, alone: (t, alone), [1, 2], costs=[1.0, 1.0], step_flops=1.0,
                                 device="cpu", tell_alone=True)
    assert side_by_side == [(1, False), (2, False)] and one_by_one == [(1, True), (2, True)]
