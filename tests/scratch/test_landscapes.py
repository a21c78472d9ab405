"""The Adam study's 1-D losses: the bump landscape and the activations, against torch and finite differences."""

import numpy as np
import pytest
import torch

from trainlab.scratch.landscapes import activation, bump_landscape


def test_bump_landscape_values_and_slopes():
    land = bump_landscape(L=1.0, h=0.5)
    x = np.array([0.0, 0.5, 1.0, 1.25, 1.5, 2.0, 3.0])
    np.testing.assert_allclose(land(x), [0.0, -0.5, -1.0, -0.75, -0.5, -1.0, -2.0])
    assert [land.grad(v) for v in (0.99, 1.0, 1.49, 1.5, 2.5)] == [-1, 1, 1, -1, -1]
    xs = np.linspace(0.01, 2.9, 50)
    numeric = (land(xs + 1e-7) - land(xs - 1e-7)) / 2e-7
    np.testing.assert_allclose(numeric, [land.grad(v) for v in xs], atol=1e-6)


@pytest.mark.parametrize("name,torch_fn", [("relu", torch.relu), ("sigmoid", torch.sigmoid), ("abs", torch.abs)])
def test_activation_gradients_match_torch(name, torch_fn):
    obj = activation(name)
    xs = torch.tensor([-3.0, -0.5, 0.0, 0.7, 2.0], dtype=torch.float64, requires_grad=True)
    torch_fn(xs).sum().backward()
    np.testing.assert_allclose([obj.grad(float(v)) for v in xs.detach()], xs.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(obj.f(xs.detach().numpy()), torch_fn(xs).detach().numpy(), rtol=1e-12)
