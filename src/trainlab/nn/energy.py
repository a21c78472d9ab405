"""The energy-based model study's ``EnergyRegressor``: an MLP from an image to a scalar energy.

The study's class is ``net = nn.Sequential(Linear, ReLU(inplace=True), ..., Linear)`` with
widths 784 -> 4096 -> 2048 -> ... -> 2 -> 1 (halving from 4096, 14.4M parameters). The
module here keeps the attribute ``net`` and the Sequential's numbering, so a state_dict
saved from the study's class (keys ``net.0.weight`` ... ``net.24.bias``) loads as is and
``print(model)`` reads the same. Other widths give narrower models of the same shape
(the quick profile uses one on 8x8 digits).
"""

from __future__ import annotations

import re
from typing import Callable, Mapping, Sequence

import torch
from torch import nn

from trainlab.errors import DataError
from trainlab.nn.packed_mlp import packed_relu_mlp
from trainlab.nn.size import size_checked

STUDY_WIDTHS = (4096, 2048, 1024, 512, 256, 128, 64, 32, 16, 8, 4, 2)
"""Hidden widths of the study's regressor (input 784, output 1)."""


def halving_widths(first: int) -> tuple[int, ...]:
    """``first, first/2, ..., 2``: the study's pattern from another first width (a power of two)."""
    if first < 2 or first & (first - 1):
        raise ValueError(f"the first hidden width must be a power of two >= 2 (got {first})")
    widths = []
    while first >= 2:
        widths.append(first)
        first //= 2
    return tuple(widths)


@size_checked
class EnergyRegressor(nn.Module):
    """``in_dim -> widths... -> 1`` with ReLU between layers; ``forward`` returns ``(batch, 1)``."""

    def __init__(self, in_dim: int = 784, widths: Sequence[int] = STUDY_WIDTHS):
        super().__init__()
        sizes = [in_dim, *widths, 1]
        layers: list[nn.Module] = []
        for i in range(len(sizes) - 1):
            layers.append(nn.Linear(sizes[i], sizes[i + 1]))
            if i < len(sizes) - 2:
                layers.append(nn.ReLU(inplace=True))
        self.net = nn.Sequential(*layers)

    def init_for_training(self, x: torch.Tensor, generator: torch.Generator | None = None,
                          active: float | None = 0.5) -> "EnergyRegressor":
        """He-normal weights scaled on data: an initialisation this deep, narrowing ReLU stack trains from.

        Layer by layer on the batch ``x``, each hidden unit's weights and bias are rescaled so that
        its pre-activation has standard deviation 1 and mean ``active`` (a Gaussian one is then
        positive on 69% of inputs at 0.5), and the output gets mean 0 and standard deviation 1:
        the data-dependent initialisation of Salimans & Kingma (2016) and Mishkin & Matas' LSUV,
        with every ReLU unit alive on the data. Why: PyTorch's default init shrinks the signal about
        3x per layer (the study's regressor is constant to ~1e-6 after 12 layers), and He init with
        constant biases leaves units of the 2- and 4-wide layers dead on almost every input for some
        seeds (measured: the 2-unit layer active on 2% of images, the output's spread 3e-4), from
        which training did not recover at lr 1e-3 or 1e-4. ``active=None`` is that earlier recipe, kept to compare
        with: He-normal weights, biases 0.5, the output alone standardised on ``x``.
        """
        layers = list(self.net)
        with torch.no_grad():
            for m in layers:
                if isinstance(m, nn.Linear):
                    m.weight.copy_(torch.randn(m.weight.shape, generator=generator) * (2.0 / m.in_features) ** 0.5)
                    m.bias.fill_(0.0 if active is not None else 0.5)
            h = x.to(self.net[0].weight.dtype)
            for i, m in enumerate(layers):
                last = i == len(layers) - 1
                if isinstance(m, nn.Linear) and (active is not None or last):
                    z = m(h)
                    mean, sd = z.mean(0), z.std(0).clamp_min(1e-6)
                    m.weight.div_(sd[:, None])
                    m.bias.sub_(mean).div_(sd).add_(0.0 if last else active)  # the output: mean 0, std 1
                h = m(h)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        """Energies of shape ``(batch,)``: the form :func:`trainlab.mcmc.langevin.sample` takes."""
        return self.net(x).squeeze(-1)

    def frozen_energy(self, batch: int) -> Callable[[torch.Tensor], torch.Tensor]:
        """:meth:`energy` with the weights as they are now, for sampling ``batch`` chains: on a CPU its
        forward and input gradient run on packed weights, about 2x faster, the same up to float rounding
        (:mod:`trainlab.nn.packed_mlp`). No weight gradients; later changes to the weights are not seen."""
        net = packed_relu_mlp(self.net, batch)
        return lambda x: net(x).squeeze(-1)

    @property
    def in_dim(self) -> int:
        return self.net[0].in_features

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(m.out_features for m in self.net if isinstance(m, nn.Linear))[:-1]

    @classmethod
    def from_state_dict(cls, state: object, source: str = "state_dict",
                        in_dim: int | None = None) -> "EnergyRegressor":
        """A regressor whose widths are read off the weight shapes of ``state``, then loaded.

        Anything that is not such a state_dict (keys ``net.0.weight``, ``net.0.bias``,
        ``net.2.weight``, ... ending in a 1-output layer, with chaining shapes) raises a
        one-line :class:`DataError` naming what was expected and what was found; ``in_dim``
        also checks the input width.
        """
        where = f"{source}: expected the study's EnergyRegressor state_dict (keys net.0.weight, net.0.bias, ...)"
        if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise DataError(f"{where}; found {type(state).__name__}" + (
                " with non-tensor values" if isinstance(state, Mapping) else ""))
        layers = sorted({int(k.split(".")[1]) for k in state if re.fullmatch(r"net\.\d+\.(weight|bias)", k)})
        if not layers:
            raise DataError(f"{where}; found keys {', '.join(list(state)[:4]) or 'none'}")
        if layers[-1] // 2 + 1 > len(state):  # net.200000000.weight in a small file: never list 10**8 names
            raise DataError(f"{where}; found {len(state)} tensors but a layer numbered net.{layers[-1]}")
        expected = [f"net.{i}.{p}" for i in range(0, layers[-1] + 1, 2) for p in ("weight", "bias")]
        missing = [k for k in expected if k not in state]
        unexpected = [k for k in state if k not in expected]
        if missing or unexpected:
            raise DataError(f"{where}; " + "; ".join(
                f"{label} {', '.join(keys[:4])}" + (" ..." if len(keys) > 4 else "")
                for label, keys in (("missing", missing), ("unexpected", unexpected)) if keys))
        for key in expected:
            want_dim = 2 if key.endswith("weight") else 1
            if state[key].dim() != want_dim:
                raise DataError(f"{where}; {key} has {state[key].dim()} dimensions, expected {want_dim}")
        weights = [state[f"net.{i}.weight"] for i in range(0, layers[-1] + 1, 2)]
        sizes = [weights[0].shape[-1], *(w.shape[0] for w in weights)]
        for j, w in enumerate(weights):
            want = (sizes[j + 1], sizes[j]) if j < len(weights) - 1 else (1, sizes[j])
            if tuple(w.shape) != want or tuple(state[f"net.{2 * j}.bias"].shape) != want[:1]:
                raise DataError(f"{where}; net.{2 * j}.weight/bias have shapes {tuple(w.shape)}/"
                                f"{tuple(state[f'net.{2 * j}.bias'].shape)}, expected {want}/{want[:1]}")
        if in_dim is not None and sizes[0] != in_dim:
            raise DataError(f"{source}: the regressor takes inputs of {sizes[0]} values but the data have "
                            f"{in_dim}; give weights and data of the same width")
        model = cls(sizes[0], sizes[1:-1])
        model.load_state_dict({k: v.float() for k, v in state.items()})
        return model

    def fold_output_scale(self, scale: float, shift: float) -> None:
        """Make the model predict ``scale * y + shift`` where it predicted ``y``, in the last layer.

        Training on standardised targets and folding the scale back keeps the state_dict in the
        study's layout (no extra buffers).
        """
        last = self.net[-1]
        with torch.no_grad():
            last.weight.mul_(scale)
            last.bias.mul_(scale).add_(shift)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def energy_flops(model: EnergyRegressor, batch: int) -> float:
    """FLOPs of one forward plus one input-gradient backward pass (the Langevin step's cost).

    Each Linear costs 2 * in * out multiply-adds forward and the same again for the gradient
    with respect to its input; no weight gradients are taken. ReLUs and biases are ignored.
    """
    macs = sum(m.in_features * m.out_features for m in model.net if isinstance(m, nn.Linear))
    return 4.0 * macs * batch
