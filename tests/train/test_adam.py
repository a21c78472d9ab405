"""make_adam: torch's fused Adam where the device has it, the same updates as torch's default Adam."""

import torch

from trainlab.train.adam import fused_adam, make_adam


def _train(optimizer_of, steps: int = 20) -> list[torch.Tensor]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(7, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    optimizer = optimizer_of(model.parameters())
    x, y = torch.randn(32, 7), torch.randn(32, 3)
    for _ in range(steps):
        loss = torch.nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return [p.detach().clone() for p in model.parameters()]


def test_on_the_cpu_adam_is_fused_and_steps_as_torchs_default_adam():
    optimizer = make_adam([torch.zeros(3, requires_grad=True)], lr=1e-3)
    assert optimizer.defaults["fused"] is True
    ours = _train(lambda params: make_adam(params, lr=1e-2, weight_decay=1e-3))
    reference = _train(lambda params: torch.optim.Adam(params, lr=1e-2, weight_decay=1e-3))
    for a, b in zip(ours, reference):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert any(not torch.equal(a, b) for a, b in zip(ours, _train(lambda p: make_adam(p, lr=1e-3)))), \
        "a different learning rate must give different weights"


def test_devices_without_a_fused_kernel_get_the_default_adam():
    assert fused_adam(torch.device("cpu")) and fused_adam(torch.device("cuda"))
    assert not fused_adam(torch.device("mps")) and not fused_adam(torch.device("meta"))
    weights = torch.zeros(3, device="meta", requires_grad=True)
    assert not make_adam([weights], lr=1e-3).defaults["fused"]
