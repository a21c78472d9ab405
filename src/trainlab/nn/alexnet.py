"""AlexNet with torchvision's parameter names and shapes, and its ImageNet weights file loaded safely.

The layer indices are torchvision's (``features.0/3/6/8/10`` convolutions,
``classifier.1/4/6`` linear layers, widths 64-192-384-256-256 and 4096-4096-1000),
so ``torch.save(torchvision.models.alexnet(weights=...).state_dict())`` -- or
torchvision's own download, ``alexnet-owt-7be5be79.pth`` -- loads here with
``torch.load(weights_only=True)`` and no torchvision installed. A file whose keys
or shapes differ is refused with one line naming the first difference.

Inputs are uint8 images (N, C, H, W), C = 1 or 3 (grayscale is repeated to
three channels), resized to ``image_size`` (ImageNet's 224 by default; at least
63 so that one pixel survives the three max-pools) and normalised with the
ImageNet mean and std the weights were trained with.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from trainlab.checkpoints import check_state_dict, read_state_dict
from trainlab.errors import DataError
from trainlab.nn.size import size_checked

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MIN_SIZE = 63


@size_checked
class AlexNet(nn.Module):
    """torchvision's AlexNet layout (Krizhevsky's "one weird trick" variant with 64-192-384-256-256 channels)."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
            nn.Dropout(p=dropout), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.penultimate_and_logits(x)[1]

    def penultimate_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The 4096 activations after the second fully connected layer (+ ReLU) and the 1000 outputs."""
        x = torch.flatten(self.avgpool(self.features(x)), 1)
        hidden = self.classifier[:6](x)
        return hidden, self.classifier[6](hidden)


def load_weights(model: nn.Module, path: str | os.PathLike) -> None:
    """Load a state_dict file into ``model`` with ``weights_only=True``; every key and shape must match.

    Raises DataError (one line) for a missing or unreadable file, a file holding
    anything but tensors, and for missing, unexpected or differently shaped parameters.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"weights={path}: no such file; give torchvision's alexnet-owt-7be5be79.pth or a saved state_dict")
    state = read_state_dict(path, label=f"weights={path}")
    check_state_dict(model, state, f"weights={path}", model_name="torchvision's AlexNet")
    model.load_state_dict(state)


def preprocess(images: torch.Tensor, image_size: int = 224) -> torch.Tensor:
    """uint8 (N, C, H, W), C in {1, 3} -> float (N, 3, size, size), bilinear resize, ImageNet-normalised."""
    if image_size < MIN_SIZE:
        raise ValueError(f"AlexNet needs images of at least {MIN_SIZE} pixels, got image_size={image_size}")
    x = images.float().div(255.0)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[-2:] != (image_size, image_size):
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


@torch.inference_mode()
def extract_features(model: AlexNet, images: torch.Tensor, *, image_size: int = 224,
                     batch_size: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """(penultimate 4096, outputs 1000) for uint8 images, in batches, float32 on the images' device."""
    model.eval()
    hidden, logits = [], []
    for start in range(0, images.shape[0], batch_size):
        h, out = model.penultimate_and_logits(preprocess(images[start : start + batch_size], image_size))
        hidden.append(h.float())
        logits.append(out.float())
    return torch.cat(hidden), torch.cat(logits)
