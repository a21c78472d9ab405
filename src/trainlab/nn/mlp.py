"""Multilayer perceptrons as the studies define them."""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from trainlab.errors import ConfigError
from trainlab.nn.activations import activation_name
from trainlab.nn.size import size_checked

ACTIVATIONS = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "tanh": nn.Tanh, "identity": nn.Identity}


def make_activation(name: str) -> nn.Module:
    name = activation_name(name)
    if name not in ACTIVATIONS:
        raise ConfigError(f"activation={name!r} is not one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


@size_checked
class MLP(nn.Module):
    """``in_dim -> hidden... -> out_dim`` with one activation between linear layers.

    With one hidden layer the printout matches the study's ``SimpleMLP``
    (``fc1``, ``activation``, ``fc2``), so the report's model listing reads the same.
    """

    def __init__(self, in_dim: int, hidden: int | Sequence[int], out_dim: int, activation: str = "sigmoid"):
        super().__init__()
        sizes = [in_dim, *([hidden] if isinstance(hidden, int) else hidden), out_dim]
        self._architecture = {"in_dim": in_dim, "hidden": hidden if isinstance(hidden, int) else list(hidden),
                              "out_dim": out_dim, "activation": activation_name(activation)}
        self.layers = len(sizes) - 1
        for i in range(self.layers):
            setattr(self, f"fc{i + 1}", nn.Linear(sizes[i], sizes[i + 1]))
            if i == 0:  # registered here so print(model) lists fc1, activation, fc2
                self.activation = make_activation(activation)

    @classmethod
    def with_weights(cls, layers: Sequence[tuple[torch.Tensor, torch.Tensor]], activation: str) -> "MLP":
        """An MLP holding copies of ``layers`` (weight and bias of each linear layer), on their device.

        Built on the meta device and filled, so it draws nothing from torch's global generator:
        trained stacks become models on worker threads while another thread may be seeding a
        model's initial weights there (:func:`trainlab.device.global_seed`).
        """
        weights = [w for w, _ in layers]
        hidden = [w.shape[0] for w in weights[:-1]]
        with torch.device("meta"):
            model = cls(weights[0].shape[1], hidden[0] if len(hidden) == 1 else hidden, weights[-1].shape[0],
                        activation)
        model = model.to_empty(device=weights[0].device)
        with torch.no_grad():
            for i, (weight, bias) in enumerate(layers, start=1):
                getattr(model, f"fc{i}").weight.copy_(weight)
                getattr(model, f"fc{i}").bias.copy_(bias)
        return model

    def architecture(self) -> dict[str, Any]:
        """The constructor's arguments as plain values: ``MLP(**model.architecture())`` rebuilds it (a checkpoint's description)."""
        return dict(self._architecture)

    def forward(self, x):
        for i in range(1, self.layers):
            x = self.activation(getattr(self, f"fc{i}")(x))
        return getattr(self, f"fc{self.layers}")(x)
