"""Autoencoders: images mapped back onto themselves through a narrow code.

- :class:`MLPAutoencoder`: ``in_dim -> hidden -> in_dim``, the MNIST MLP study's Q4 model.
- :class:`DenseAutoencoder`: the Optimisation & CNN study's Q2.1 model,
  ``784 -> 196 -> 49 -> latent -> 49 -> 196 -> 784`` with a ReLU after every layer.
- :class:`ConvAutoencoder`: its Q2.2 counterpart, strided convolutions down to 7x7,
  a linear bottleneck, transposed convolutions back.

:func:`new_study_autoencoder` builds the study's two at any image size, seeded.

All take and return flat images ``(N, H*W)``, so the same device-resident training
loop and metrics serve every one of them, and all have ``encode`` / ``decode``.
"""

from __future__ import annotations

import inspect
from typing import Any, Sequence

import torch
from torch import nn

from trainlab.device import global_seed, thread_limit
from trainlab.errors import ConfigError
from trainlab.nn.activations import activation_name
from trainlab.nn.mlp import make_activation
from trainlab.nn.size import size_checked

LATENT_ACTIVATIONS = ("relu", "identity")
OUTPUT_ACTIVATIONS = ("relu", "sigmoid", "identity")


@size_checked
class MLPAutoencoder(nn.Module):
    """``in_dim -> hidden (activation) -> in_dim (output_activation)``.

    The printout matches the MNIST MLP study's ``RegressionMLP`` (``fc1``, ``activation``,
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


def _activation(name: str, what: str, allowed: Sequence[str]) -> nn.Module:
    # "none" (the autoencoders' older spelling of "identity", still in saved checkpoints) builds nn.Identity too.
    if activation_name(name) not in {activation_name(a) for a in allowed}:
        raise ConfigError(f"{what}={name!r} is not one of {', '.join(allowed)}")
    return make_activation(name)


class _Autoencoder(nn.Module):
    """encode/decode/forward and the description that checkpoints compare."""

    encoder: nn.Sequential
    decoder: nn.Sequential

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Flat images (N, H*W) -> codes (N, latent)."""
        return self.encoder(x)

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        """Codes (N, latent) -> flat images (N, H*W)."""
        return self.decoder(code)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))

    def architecture(self) -> dict[str, Any]:
        """Everything needed to build this model again (``build_autoencoder(**arch)``)."""
        raise NotImplementedError


@size_checked
class DenseAutoencoder(_Autoencoder):
    """``in_dim -> hidden... -> latent -> reversed(hidden)... -> in_dim``, fully connected.

    The defaults are the study's list: 784 -> 196 -> 49 -> latent and back, a ReLU
    after every layer, the code's and the output's included. A ReLU on a 2-unit code
    can switch a unit off for every image (a dead unit: its input weights get no
    gradient any more), so ``latent_activation="identity"`` leaves the code linear.
    """

    def __init__(self, in_dim: int = 784, latent: int = 2, hidden: Sequence[int] = (196, 49),
                 latent_activation: str = "relu", output_activation: str = "relu"):
        super().__init__()
        self._arch = {"kind": "mlp", "in_dim": in_dim, "latent": latent, "hidden": list(hidden),
                      "latent_activation": latent_activation, "output_activation": output_activation}
        down = [in_dim, *hidden]
        enc: list[nn.Module] = []
        for a, b in zip(down[:-1], down[1:]):
            enc += [nn.Linear(a, b), nn.ReLU()]
        enc += [nn.Linear(down[-1], latent), _activation(latent_activation, "latent_activation", LATENT_ACTIVATIONS)]
        up = [latent, *reversed(hidden)]
        dec: list[nn.Module] = []
        for a, b in zip(up[:-1], up[1:]):
            dec += [nn.Linear(a, b), nn.ReLU()]
        dec += [nn.Linear(up[-1], in_dim), _activation(output_activation, "output_activation", OUTPUT_ACTIVATIONS)]
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(*dec)

    def architecture(self) -> dict[str, Any]:
        return dict(self._arch)


@size_checked
class ConvAutoencoder(_Autoencoder):
    """Strided 3x3 convolutions down, a linear bottleneck, transposed convolutions back.

    For 28x28 images with the default ``channels=(16, 32)``::

        1x28x28 -conv s2-> 16x14x14 -conv s2-> 32x7x7 -flatten, linear-> latent
        latent -linear-> 32x7x7 -convT s2-> 16x14x14 -convT s2-> 1x28x28

    with a ReLU after every layer (the code and output follow ``latent_activation``
    and ``output_activation``). Any image size works: each convolution halves
    (rounding up) and each transposed convolution restores the size it came from.

    The transposed convolutions' biases start at zero. PyTorch draws them from
    ±1/sqrt(fan_in) with the fan-in taken from the *output* channels, ±0.33 for the
    one-channel output layer: far larger than the signal reaching it, so a negative
    draw switches the output ReLU off for every pixel of every image from the first
    step on, and the model never learns (3 of 4 seeds on the 8x8 digits).
    """

    def __init__(self, image_shape: Sequence[int] = (28, 28), latent: int = 2, channels: Sequence[int] = (16, 32),
                 latent_activation: str = "relu", output_activation: str = "relu"):
        super().__init__()
        h, w = image_shape
        self._arch = {"kind": "conv", "image_shape": [h, w], "latent": latent, "channels": list(channels),
                      "latent_activation": latent_activation, "output_activation": output_activation}
        sizes = [(h, w)]
        for _ in channels:
            sizes.append(((sizes[-1][0] + 1) // 2, (sizes[-1][1] + 1) // 2))  # k3, s2, p1 halves, rounding up
        chans = [1, *channels]
        enc: list[nn.Module] = [nn.Unflatten(1, (1, h, w))]
        for a, b in zip(chans[:-1], chans[1:]):
            enc += [nn.Conv2d(a, b, 3, stride=2, padding=1), nn.ReLU()]
        flat = chans[-1] * sizes[-1][0] * sizes[-1][1]
        enc += [nn.Flatten(), nn.Linear(flat, latent),
                _activation(latent_activation, "latent_activation", LATENT_ACTIVATIONS)]
        dec: list[nn.Module] = [nn.Linear(latent, flat), nn.ReLU(), nn.Unflatten(1, (chans[-1], *sizes[-1]))]
        for i in range(len(channels), 0, -1):
            (hi, wi), (ho, wo) = sizes[i], sizes[i - 1]
            # a k3 s2 p1 transposed conv gives 2*n - 1 (+ output_padding) pixels
            pad = (ho - (2 * hi - 1), wo - (2 * wi - 1))
            dec += [nn.ConvTranspose2d(chans[i], chans[i - 1], 3, stride=2, padding=1, output_padding=pad)]
            dec += [nn.ReLU()] if i > 1 else [
                _activation(output_activation, "output_activation", OUTPUT_ACTIVATIONS)]
        dec += [nn.Flatten()]
        for layer in dec:
            if isinstance(layer, nn.ConvTranspose2d):
                nn.init.zeros_(layer.bias)
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(*dec)

    def architecture(self) -> dict[str, Any]:
        return dict(self._arch)


def build_autoencoder(kind: str, **arch: Any) -> _Autoencoder:
    """A ``DenseAutoencoder`` (``kind="mlp"``) or ``ConvAutoencoder`` (``kind="conv"``) from its description.

    The description may come from a checkpoint's JSON, so it is checked in full first:
    known keys only, sizes as positive integers (lists of them where the builder takes
    a list, two for ``image_shape``), names as strings; the size check then runs on meta.
    """
    builders = {"mlp": DenseAutoencoder, "conv": ConvAutoencoder}
    if kind not in builders:
        raise ConfigError(f"arch={kind!r} is not one of mlp, conv")
    cls = builders[kind]
    defaults = {name: p.default for name, p in inspect.signature(cls.__init__).parameters.items() if name != "self"}
    for key, value in arch.items():
        if key not in defaults:
            raise ConfigError(f"{kind} autoencoder description has unknown key {key!r}; keys: {', '.join(defaults)}")
        _check_description_value(kind, key, value, defaults[key])
    return cls(**arch)


STUDY_ARCHS = ("mlp", "conv")
"""The Optimisation & CNN study's two autoencoders: Q2.1's dense one and Q2.2's convolutional one."""


def study_architecture(arch: str, latent: int, image_shape: Sequence[int], latent_activation: str,
                       output_activation: str = "relu") -> dict[str, Any]:
    """:func:`build_autoencoder`'s keyword arguments for the study's model of kind ``arch`` at this image size."""
    h, w = image_shape
    if arch == "mlp":
        return {"kind": "mlp", "in_dim": h * w, "latent": latent, "hidden": [196, 49],
                "latent_activation": latent_activation, "output_activation": output_activation}
    return {"kind": "conv", "image_shape": [h, w], "latent": latent, "channels": [16, 32],
            "latent_activation": latent_activation, "output_activation": output_activation}


def new_study_autoencoder(arch: str, latent: int, image_shape: Sequence[int], latent_activation: str, seed: int,
                          device: torch.device, output_activation: str = "relu") -> tuple[_Autoencoder, dict[str, Any]]:
    """The study's model of kind ``arch`` with the initial weights of ``seed``, and its description."""
    description = study_architecture(arch, latent, image_shape, latent_activation, output_activation)
    with global_seed(seed):  # module initialisers draw from torch's global generator
        return build_autoencoder(**description).to(device), description


def _check_description_value(kind: str, key: str, value: Any, default: Any) -> None:
    """One description value against the builder's default: same kind of value, sizes >= 1."""
    def size(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= 1

    if isinstance(default, str):
        ok, want = isinstance(value, str), "a string"
    elif isinstance(default, int):
        ok, want = size(value), "an integer >= 1"
    else:
        count = len(default) if key == "image_shape" else None
        ok = (isinstance(value, (list, tuple)) and all(size(v) for v in value)
              and (count is None or len(value) == count))
        want = f"a list of {count or 'any number of'} integers >= 1"
    if not ok:
        raise ConfigError(f"{kind} autoencoder description has {key}={value!r}; expected {want}")


INFERENCE_CHUNK = 256
"""Rows per chunk in :func:`encode_all` / :func:`decode_all`. Small on purpose: a chunk's activations
then stay in the CPU's caches (8192 images make 100 MB of 16x14x14 conv features). Measured on one
thread under load (``bench/autoencoder.py --mode rates``): the conv model encodes and decodes in
55 us per image in chunks of 256 against 131 in chunks of 8192 (2.4x); the MLP about the same (0.9-1.3x).
A chunk is a small step (:data:`trainlab.device.SMALL_STEP_FLOPS`), so it runs on one thread: two
threads on chunks this small took longer in all than one (the other core is for another model's work)."""


@torch.inference_mode()
def encode_all(model: _Autoencoder, x: torch.Tensor, batch_size: int = INFERENCE_CHUNK) -> torch.Tensor:
    """The codes of every row of ``x``, computed in chunks on one CPU thread, shape (N, latent)."""
    model.eval()
    with thread_limit(1, x.device):
        return torch.cat([model.encode(x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)])


@torch.inference_mode()
def decode_all(model: _Autoencoder, codes: torch.Tensor, batch_size: int = INFERENCE_CHUNK) -> torch.Tensor:
    """The decoded images of every code, in chunks on one CPU thread, shape (N, H*W)."""
    model.eval()
    with thread_limit(1, codes.device):
        return torch.cat([model.decode(codes[i : i + batch_size]) for i in range(0, codes.shape[0], batch_size)])


def dead_units(codes: torch.Tensor) -> torch.Tensor:
    """Boolean mask over latent units: True where a unit is exactly zero for every row of ``codes``.

    Pass the codes of the whole training set. A ReLU unit that is zero for every
    training image passes no gradient to its input weights, so training cannot revive it.
    """
    return (codes != 0).sum(dim=0) == 0
