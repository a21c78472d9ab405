"""MLP.with_weights: a model from given weights, drawing nothing from torch's global generator."""

import pytest
import torch

from trainlab.nn.mlp import MLP


@pytest.mark.parametrize("hidden", [5, [6, 3]])
def test_with_weights_rebuilds_a_model_exactly_without_drawing(hidden):
    torch.manual_seed(0)
    original = MLP(4, hidden, 2, "tanh")
    layers = [(getattr(original, f"fc{i}").weight, getattr(original, f"fc{i}").bias)
              for i in range(1, original.layers + 1)]
    before = torch.get_rng_state()
    rebuilt = MLP.with_weights(layers, "tanh")
    assert torch.equal(torch.get_rng_state(), before)
    assert rebuilt.architecture() == original.architecture() and str(rebuilt) == str(original)
    x = torch.randn(7, 4)
    assert torch.equal(rebuilt(x), original(x))
    rebuilt.fc1.weight.data.add_(1.0)  # copies, not views of the given tensors
    assert not torch.equal(rebuilt.fc1.weight, original.fc1.weight)
