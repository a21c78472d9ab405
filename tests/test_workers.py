"""Worker processes give exactly what running the tasks here one after another gives."""

import torch

from trainlab.workers import map_tasks


def train_a_little(seed: int) -> tuple[int, torch.Tensor]:
    """A task: a few Adam steps of a small net on seeded data (module-level, so workers can import it)."""
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    x = torch.randn(256, 8)
    y = x.sum(1, keepdim=True).sin()
    for _ in range(5):
        loss = torch.nn.functional.mse_loss(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return seed, torch.cat([p.detach().flatten() for p in net.parameters()])


def test_parallel_results_equal_sequential_bit_for_bit_and_in_order():
    seeds = [3, 1]
    sequential = map_tasks(train_a_little, seeds, workers=1)
    parallel = map_tasks(train_a_little, seeds, workers=2)
    assert [s for s, _ in parallel] == seeds
    for (_, a), (_, b) in zip(sequential, parallel):
        assert torch.equal(a, b)
