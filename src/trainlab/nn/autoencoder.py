"""Autoencoders: an MLP that maps images back onto themselves through a narrow hidden layer."""

from __future__ import annotations

import torch
from torch import nn

from trainlab.nn.mlp import make_activation


class MLPAutoencoder(nn.Module):
    """``in_dim -> hidden (activation) -> in_dim (output_activation)``.

    The printout matches the seed's ``RegressionMLP`` (``fc1``, ``activation``,
    ``fc2``, ``activation_output``). With ``output_activation="tanh"`` the
    reconstruction lies in [-1, 1], so targets should be scaled to that range.
    """

    def __init__(self, in_dim: int, hidden: int = 50, activation: str = "relu", output_activation: str = "tanh"):
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden)
        self.activation = make_activation(activation)
        self.fc2 = nn.Linear(hidden, in_dim)
        self.activation_output = make_activation(output_activation)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The hidden code, shape (N, hidden)."""
        return self.activation(self.fc1(x))

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        return self.activation_output(self.fc2(code))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))
