"""Receptive fields of stacks of convolution and pooling layers, computed and measured.

For each layer with kernel k, stride s, padding p and dilation d, along one
spatial axis (Dumoulin & Visin's arithmetic, as in Araujo et al., Distill 2019):

    size_out  = size_in + (k - 1) d jump_in      side of the input region one output sees
    jump_out  = jump_in s                        input pixels between neighbouring outputs
    start_out = start_in + ((k - 1) d / 2 - p) jump_in   centre of output 0's region

starting from ``size = 1, jump = 1, start = 0`` at the input, with pixel
centres at integer positions. Output pixel ``i`` of a layer therefore sees
input pixels ``start + i jump -/+ (size - 1) / 2``. ``size`` is the side of that
bounding box; with dilation or strides larger than kernels the region inside
can have holes.

:func:`empirical_receptive_field` measures the same thing from gradients, and
the tests check the two agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence, Union

import torch
from torch import nn

from trainlab.errors import ConfigError

KINDS = {"conv": "conv2d", "maxpool": "maxpool2d", "avgpool": "avgpool2d"}
_ALIASES = {
    "conv2d": "conv", "conv": "conv", "conv1d": "conv",
    "maxpool2d": "maxpool", "maxpool": "maxpool", "maxpool1d": "maxpool",
    "avgpool2d": "avgpool", "avgpool": "avgpool", "avgpool1d": "avgpool",
}  # fmt: skip
_ARG_NAMES = {"k": "kernel", "kernel": "kernel", "kernel_size": "kernel", "s": "stride", "stride": "stride",
              "p": "padding", "padding": "padding", "d": "dilation", "dilation": "dilation"}  # fmt: skip
_SPEC = re.compile(r"^\s*([a-z_0-9]+)\s*\((.*)\)\s*$", re.IGNORECASE)
_EXAMPLE = "write e.g. conv2d(3,1), maxpool2d(2,2) or conv2d(k=3,s=1,p=1,d=2)"


@dataclass(frozen=True)
class LayerSpec:
    """One layer along one axis: ``kind`` is conv, maxpool or avgpool."""

    kind: str
    kernel: int
    stride: int = 1
    padding: int = 0
    dilation: int = 1

    def __str__(self) -> str:
        extra = f",{self.padding}" if self.padding or self.dilation != 1 else ""
        extra += f",{self.dilation}" if self.dilation != 1 else ""
        return f"{KINDS[self.kind]}({self.kernel},{self.stride}{extra})"


@dataclass(frozen=True)
class LayerRF:
    """Receptive field of one layer's outputs with respect to the network's input."""

    spec: LayerSpec
    size: int
    jump: int
    start: float


def parse_spec(text: str) -> LayerSpec:
    """``"conv2d(3,1)"`` -> LayerSpec; arguments are kernel, stride, padding, dilation.

    Positional or named (``k= s= p= d=``); stride defaults to 1 for convolutions
    and to the kernel for pooling, as in torch.
    """
    match = _SPEC.match(str(text))
    kind = _ALIASES.get(match.group(1).lower().replace("_", "")) if match else None
    if kind is None:
        if str(text).count("(") != str(text).count(")"):  # a list item split at its commas
            raise ConfigError(f"bad layer spec {text!r}: quote each spec in a list, e.g. \"['conv2d(3,1)','maxpool2d(2,2)']\"")
        raise ConfigError(f"bad layer spec {text!r}: {_EXAMPLE}")
    values: dict[str, int] = {}
    order = ["kernel", "stride", "padding", "dilation"]
    parts = [a.strip() for a in match.group(2).split(",") if a.strip()]
    for i, part in enumerate(parts):
        name, eq, value = part.rpartition("=")
        key = _ARG_NAMES.get(name.strip().lower()) if eq else (order[i] if i < len(order) else None)
        if key is None or key in values or not re.fullmatch(r"\d+", value.strip()):
            raise ConfigError(f"bad layer spec {text!r}: {_EXAMPLE}")
        values[key] = int(value)
    if "kernel" not in values:
        raise ConfigError(f"bad layer spec {text!r}: the kernel size is missing; {_EXAMPLE}")
    values.setdefault("stride", 1 if kind == "conv" else values["kernel"])
    spec = LayerSpec(kind, **values)
    if spec.kernel < 1 or spec.stride < 1 or spec.dilation < 1:
        raise ConfigError(f"bad layer spec {text!r}: kernel, stride and dilation must be >= 1")
    if kind == "avgpool" and spec.dilation != 1:
        raise ConfigError(f"bad layer spec {text!r}: average pooling has no dilation")
    return spec


def layers_from_module(module: nn.Module, axis: int = 0) -> list[LayerSpec]:
    """The conv and pooling layers of ``module`` in registration order, along spatial ``axis``.

    Registration order is taken as the order of the forward pass (true for
    ``nn.Sequential``). Pointwise layers (activations, batch norm in eval,
    dropout) do not change receptive fields and are skipped; layers that mix
    every position (Linear, adaptive pooling) raise ConfigError.
    """
    specs = []
    for name, layer in module.named_modules():
        if list(layer.children()):
            continue
        if isinstance(layer, nn.modules.conv._ConvNd):
            k, d = layer.kernel_size[axis], layer.dilation[axis]
            pad = layer.padding
            p = 0 if pad == "valid" else (d * (k - 1)) // 2 if pad == "same" else pad[axis]
            specs.append(LayerSpec("conv", k, layer.stride[axis], p, d))
        elif isinstance(layer, (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd)):
            kind = "maxpool" if isinstance(layer, nn.modules.pooling._MaxPoolNd) else "avgpool"
            pick = lambda v: v[axis] if isinstance(v, (tuple, list)) else v  # noqa: E731
            k = pick(layer.kernel_size)
            stride = pick(layer.stride) if layer.stride not in (None, ()) else k
            specs.append(LayerSpec(kind, k, stride, pick(layer.padding), pick(getattr(layer, "dilation", 1))))
        elif not _pointwise(layer):
            raise ConfigError(f"layer {name} ({type(layer).__name__}) is not a conv, pool or pointwise layer; pass the convolutional part only")
    return specs


def _pointwise(layer: nn.Module) -> bool:
    pointwise = (nn.Identity, nn.modules.batchnorm._BatchNorm, nn.modules.dropout._DropoutNd)
    return isinstance(layer, pointwise) or type(layer).__module__ == "torch.nn.modules.activation"


def as_specs(layers: Union[Sequence[Union[str, LayerSpec]], nn.Module], axis: int = 0) -> list[LayerSpec]:
    if isinstance(layers, nn.Module):
        return layers_from_module(layers, axis)
    if isinstance(layers, str):
        raise ConfigError(f"layers must be a list of specs such as ['conv2d(3,1)'], not the string {layers!r}")
    return [s if isinstance(s, LayerSpec) else parse_spec(s) for s in layers]


def receptive_fields(layers: Union[Sequence[Union[str, LayerSpec]], nn.Module], axis: int = 0) -> list[LayerRF]:
    """Size, jump and start after every layer (see the module docstring)."""
    size, jump, start = 1, 1, 0.0
    out = []
    for spec in as_specs(layers, axis):
        start += ((spec.kernel - 1) * spec.dilation / 2 - spec.padding) * jump
        size += (spec.kernel - 1) * spec.dilation * jump
        jump *= spec.stride
        out.append(LayerRF(spec, size, jump, start))
    return out


def receptive_field_size(layers: Union[Sequence[Union[str, LayerSpec]], nn.Module]) -> int:
    """Side in input pixels of the region one final output pixel sees (1 for no layers)."""
    fields = receptive_fields(layers)
    return fields[-1].size if fields else 1


# -- measured ----------------------------------------------------------------------------


def build_network(layers: Sequence[Union[str, LayerSpec]], generator: torch.Generator) -> nn.Sequential:
    """A one-channel 2-D network of the given layers, float64, with positive random weights.

    Max pooling becomes average pooling of the same geometry: a max passes
    gradient to one input only, which would hide most of the region it sees,
    and positive weights keep contributions from cancelling.
    """
    modules: list[nn.Module] = []
    for s in as_specs(layers):
        if s.kind == "conv":
            conv = nn.Conv2d(1, 1, s.kernel, s.stride, s.padding, s.dilation, bias=False).double()
            with torch.no_grad():
                conv.weight.copy_(0.5 + torch.rand(conv.weight.shape, generator=generator, dtype=torch.float64))
            modules.append(conv)
        elif s.dilation == 1:
            modules.append(nn.AvgPool2d(s.kernel, s.stride, s.padding))
        else:  # avg_pool has no dilation: a depthwise conv with equal positive weights is the same shape
            pool = nn.Conv2d(1, 1, s.kernel, s.stride, s.padding, s.dilation, bias=False).double()
            nn.init.constant_(pool.weight, 1.0 / s.kernel**2)
            modules.append(pool)
    return nn.Sequential(*modules)


@dataclass(frozen=True)
class MeasuredRF:
    """Bounding box of the input pixels with nonzero gradient for output pixel (row, col)."""

    height: int
    width: int
    first_row: int
    first_col: int
    row: int
    col: int


def empirical_receptive_field(
    layers: Sequence[Union[str, LayerSpec]], generator: torch.Generator | None = None
) -> MeasuredRF:
    """Measure the receptive field of the centre output pixel from input gradients.

    Builds :func:`build_network`, feeds a positive random square input with
    room for a few outputs beyond one receptive field on each side (so the
    centre pixel's region lies inside it), backpropagates from that one pixel
    and returns the bounding box of the nonzero input gradient.
    """
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    fields = receptive_fields(layers)
    size, jump = (fields[-1].size, fields[-1].jump) if fields else (1, 1)
    padding = sum(f.spec.padding * (f.jump // f.spec.stride) for f in fields)
    side = size + 4 * jump + 4 * padding
    net = build_network(layers, generator)
    x = torch.rand(1, 1, side, side, generator=generator, dtype=torch.float64).add_(0.5).requires_grad_(True)
    y = net(x)
    row, col = y.shape[-2] // 2, y.shape[-1] // 2
    y[0, 0, row, col].backward()
    seen = x.grad[0, 0] != 0
    rows = torch.nonzero(seen.any(dim=1)).flatten()
    cols = torch.nonzero(seen.any(dim=0)).flatten()
    return MeasuredRF(
        int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1), int(rows.min()), int(cols.min()), row, col
    )
