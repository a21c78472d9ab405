"""The packed regressor (oneDNN weights) against the module itself: the same energies and input
gradients up to float rounding, the module back wherever the packed path does not apply."""

import pytest
import torch
from torch import nn

from trainlab.mcmc.langevin import energy_and_grad, sample
from trainlab.nn import packed_mlp
from trainlab.nn.energy import EnergyRegressor, halving_widths
from trainlab.nn.packed_mlp import onednn_available, packed_relu_mlp

needs_onednn = pytest.mark.skipif(not onednn_available(), reason="this PyTorch build has no oneDNN ops")


def trained_like(widths=halving_widths(256), in_dim=64, seed=0) -> EnergyRegressor:
    """A regressor whose units are alive on the data (the training init), so every mask matters."""
    gen = torch.Generator().manual_seed(seed)
    model = EnergyRegressor(in_dim, widths).init_for_training(torch.rand(512, in_dim, generator=gen), gen).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@needs_onednn
@pytest.mark.parametrize("rows", [1, 16, 40])
def test_energies_and_input_gradients_equal_the_modules(rows):
    model = trained_like()
    x = torch.rand(rows, 64, generator=torch.Generator().manual_seed(rows))
    expected_e, expected_g = energy_and_grad(model.energy, x)
    e, g = energy_and_grad(model.frozen_energy(16), x)  # packed for 16 rows, called with others too
    assert not isinstance(packed_relu_mlp(model.net, 16), nn.Module)  # the packed path did run
    torch.testing.assert_close(e, expected_e, rtol=1e-5, atol=1e-5 * expected_e.abs().max().item())
    torch.testing.assert_close(g, expected_g, rtol=1e-4, atol=1e-5 * expected_g.abs().max().item())
    assert all(p.grad is None for p in model.parameters())


@needs_onednn
def test_the_study_regressor_packed_equals_the_module():
    model = trained_like(halving_widths(4096), in_dim=784)
    x = torch.rand(16, 784, generator=torch.Generator().manual_seed(3))
    expected_e, expected_g = energy_and_grad(model.energy, x)
    e, g = energy_and_grad(model.frozen_energy(16), x)
    torch.testing.assert_close(e, expected_e, rtol=1e-5, atol=1e-5 * expected_e.abs().max().item())
    torch.testing.assert_close(g, expected_g, rtol=1e-4, atol=1e-5 * expected_g.abs().max().item())


@needs_onednn
def test_a_few_mala_steps_follow_the_modules_chains():
    model = trained_like()
    x0 = torch.rand(8, 64, generator=torch.Generator().manual_seed(1))
    runs = [sample(energy, x0, method="mala", tau=1e-3, burn_in=0, n_samples=5,
                   generator=torch.Generator().manual_seed(2)) for energy in (model.energy, model.frozen_energy(8))]
    torch.testing.assert_close(runs[1].samples, runs[0].samples, rtol=1e-4, atol=1e-5)
    assert torch.equal(runs[0].accept_rate, runs[1].accept_rate)


@needs_onednn
def test_the_packed_weights_are_a_copy_taken_at_the_call():
    model = trained_like()
    x = torch.rand(4, 64, generator=torch.Generator().manual_seed(5))
    energy = model.frozen_energy(4)
    before = energy(x)
    with torch.no_grad():
        model.net[0].weight.mul_(2.0)
    assert torch.equal(energy(x), before)
    assert not torch.allclose(model.energy(x), before)


@pytest.mark.parametrize("net", [
    nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1)),  # not ReLU
    nn.Sequential(nn.Linear(4, 8), nn.ReLU()),  # ends with a ReLU
    nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1)).double(),  # not float32
])
def test_what_the_packed_path_cannot_run_gets_the_module_back(net):
    assert packed_relu_mlp(net, 4) is net


def test_without_onednn_the_module_runs_and_gives_its_own_numbers(monkeypatch):
    monkeypatch.setattr(packed_mlp, "onednn_available", lambda: False)
    model = trained_like()
    assert packed_relu_mlp(model.net, 16) is model.net
    x = torch.rand(3, 64, generator=torch.Generator().manual_seed(4))
    assert torch.equal(model.frozen_energy(16)(x), model.energy(x))


@needs_onednn
@pytest.mark.parametrize("broken", ["raises", "disagrees"])
def test_a_packed_op_that_fails_or_disagrees_on_this_cpu_gives_the_module_back(monkeypatch, broken):
    right = packed_mlp._linear

    def linear(x, packed, bias, relu):
        if broken == "raises":
            raise RuntimeError("oneDNN: unsupported platform")
        return 1.01 * right(x, packed, bias, relu)  # the right shapes, numbers 1% off

    model = trained_like()
    monkeypatch.setattr(packed_mlp, "_linear", linear)
    assert packed_relu_mlp(model.net, 16) is model.net


@needs_onednn
def test_packing_inside_inference_mode_still_packs():
    model = trained_like()
    with torch.inference_mode():
        assert not isinstance(packed_relu_mlp(model.net, 16), nn.Module)
