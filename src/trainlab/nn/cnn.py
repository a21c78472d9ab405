"""A fast CIFAR-10 CNN in the spirit of airbench (Keller Jordan's 94%-in-3.8-seconds recipe).

The shape of the network follows airbench94:

* a 2x2 patch-whitening convolution first: its filters are the eigenvectors of
  the training images' 2x2-patch covariance, scaled by 1/sqrt(eigenvalue), in
  +/- pairs; they are set from data, not trained (only their bias trains for a
  few epochs), so the first layer starts out decorrelating its input;
* three blocks of conv 3x3 -> max-pool 2 -> BatchNorm -> GELU -> conv 3x3 ->
  BatchNorm -> GELU, widths ``(w, 4w, 4w)`` (w = 64 is airbench94's);
* a global max-pool, a bias-free linear layer and a fixed logit scale (1/9).

Convolutions start as identities on their first input channels (Dirac
initialisation: an implicit residual path), BatchNorm scales are frozen at 1
(only the shifts train). The input normalisation (per-channel mean and std of
the training images) is part of the module, so a saved state_dict is all a
later run needs. Inputs are uint8 (N, C, H, W) images or floats in [0, 1];
C = 1 (grayscale) and any size from 8x8 up work: the whitening layer is built
for the input's channels, and on small images the pools round up so that at
least one pixel reaches the last block.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from trainlab.nn.size import size_checked


def conv3x3(c_in: int, c_out: int) -> nn.Conv2d:
    conv = nn.Conv2d(c_in, c_out, kernel_size=3, padding="same", bias=False)
    with torch.no_grad():
        nn.init.dirac_(conv.weight[: min(c_in, c_out)])  # identity on the first channels
    return conv


def batch_norm(channels: int, momentum: float) -> nn.BatchNorm2d:
    """BatchNorm with a frozen scale of 1; ``momentum`` is airbench's (weight of the old running value)."""
    bn = nn.BatchNorm2d(channels, eps=1e-5, momentum=1.0 - momentum)
    bn.weight.requires_grad_(False)
    return bn


class ConvBlock(nn.Module):
    """conv -> max-pool 2 -> BN -> GELU -> conv -> BN -> GELU."""

    def __init__(self, c_in: int, c_out: int, *, ceil_pool: bool = False, bn_momentum: float = 0.6):
        super().__init__()
        self.conv1 = conv3x3(c_in, c_out)
        self.pool = nn.MaxPool2d(2, ceil_mode=ceil_pool)
        self.norm1 = batch_norm(c_out, bn_momentum)
        self.conv2 = conv3x3(c_out, c_out)
        self.norm2 = batch_norm(c_out, bn_momentum)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.norm1(self.pool(self.conv1(x))))
        return self.act(self.norm2(self.conv2(x)))


def block_widths(width: int) -> tuple[int, int, int]:
    """airbench94's widths for base width ``width``: (w, 4w, 4w)."""
    return (width, 4 * width, 4 * width)


def pools_round_up(image_size: int, whiten_kernel: int = 2, blocks: int = 3) -> bool:
    """True when flooring 2x2 pools would shrink an ``image_size`` input to nothing."""
    size = image_size - whiten_kernel + 1
    for _ in range(blocks):
        size //= 2
    return size < 1


@size_checked
class FastCNN(nn.Module):
    """Whitening conv + three conv blocks + global max-pool + linear head (see the module doc)."""

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 10,
        widths: Sequence[int] = (64, 256, 256),
        *,
        image_size: int = 32,
        whiten_kernel: int = 2,
        logit_scale: float = 1 / 9,
        bn_momentum: float = 0.6,
    ):
        super().__init__()
        self.register_buffer("mean", torch.full((1, in_channels, 1, 1), 0.5))
        self.register_buffer("std", torch.full((1, in_channels, 1, 1), 0.25))
        whiten_width = 2 * in_channels * whiten_kernel**2
        self.whiten = nn.Conv2d(in_channels, whiten_width, kernel_size=whiten_kernel, bias=True)
        self.whiten.weight.requires_grad_(False)
        ceil_pool = pools_round_up(image_size, whiten_kernel, len(widths))
        chans = [whiten_width, *widths]
        self.blocks = nn.Sequential(*[
            ConvBlock(c_in, c_out, ceil_pool=ceil_pool, bn_momentum=bn_momentum)
            for c_in, c_out in zip(chans[:-1], chans[1:])
        ])
        self.act = nn.GELU()
        self.head = nn.Linear(widths[-1], num_classes, bias=False)
        self.logit_scale = logit_scale

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            x = x.float().div_(255.0)
        return (x - self.mean) / self.std

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate layer: (N, widths[-1]) after the global max-pool."""
        x = self.act(self.whiten(self.normalize(x)))
        x = self.blocks(x)
        return torch.amax(x, dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)) * self.logit_scale

    @torch.no_grad()
    def init_from_data(self, images: torch.Tensor, eps: float = 5e-4) -> None:
        """Set the input normalisation and the whitening filters from training images (N, C, H, W).

        The filters are the eigenvectors of the covariance of all k x k patches of
        the normalised images, divided by sqrt(eigenvalue + eps), and their negatives.
        The covariance and its eigenvectors are computed in float64 on the CPU (an Apple
        GPU has no float64; one copy of the patches per run), the filters then go to the layer.
        """
        x = images.float().div(255.0) if images.dtype == torch.uint8 else images.float()
        self.mean.copy_(x.mean(dim=(0, 2, 3), keepdim=True))
        self.std.copy_(x.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-3))
        x = (x - self.mean) / self.std
        c, k = x.shape[1], self.whiten.kernel_size[0]
        patches = x.unfold(2, k, 1).unfold(3, k, 1)  # N, C, H', W', k, k
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, c * k * k).cpu().double()
        cov = patches.T @ patches / patches.shape[0]
        eigenvalues, eigenvectors = torch.linalg.eigh(cov)  # ascending
        eigenvalues, eigenvectors = eigenvalues.flip(0), eigenvectors.flip(1)
        filters = (eigenvectors.T / torch.sqrt(eigenvalues.clamp_min(0) + eps)[:, None]).reshape(-1, c, k, k)
        self.whiten.weight.copy_(torch.cat([filters, -filters]).to(self.whiten.weight))
        self.whiten.bias.zero_()
