"""Plumbing the two autoencoder recipes share: settings, data, models, training, measures, mosaics."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from trainlab.config import one_of, positive
from trainlab.data import to_tensor
from trainlab.data.subsets import random_subset
from trainlab.device import cpu_plan, global_seed, torch_generator
from trainlab.experiments._data import ImageDataConfig, load_data
from trainlab.nn.autoencoder import LATENT_ACTIVATIONS, OUTPUT_ACTIVATIONS, build_autoencoder
from trainlab.train.loop import check_lr, fit
from trainlab.train.result import TrainResult
from trainlab.workers import run_planned

ARCHS = ("mlp", "conv")

def _size(shape: Sequence[int]) -> str:
    return f"{shape[0]}x{shape[1]}"


def design(image_shape: Sequence[int]) -> str:
    """The two models in words, with the sizes they take for ``image_shape``."""
    h, w = image_shape
    half = ((h + 1) // 2, (w + 1) // 2)
    quarter = ((half[0] + 1) // 2, (half[1] + 1) // 2)
    return (f"mlp: the study's Q2.1 list, {h * w} -> 196 -> 49 -> λ -> 49 -> 196 -> {h * w}, fully connected. "
            f"conv (Q2.2; the study's drawing of it is lost): two 3x3 convolutions of stride 2 (16 then 32 "
            f"channels, {_size((h, w))} -> {_size(half)} -> {_size(quarter)}), a linear layer from the "
            f"32x{_size(quarter)} features to λ, a linear layer back, and two 3x3 transposed convolutions of "
            f"stride 2 (32 -> 16 -> 1 channel, back to {_size((h, w))}; their biases start at zero). Both have a "
            "ReLU after every layer, the code's and the output's included, as the study asks "
            "(latent_activation=none leaves the code linear, output_activation=sigmoid or none the output). "
            "L1 loss, Adam.")


@dataclass
class AutoencoderConfig(ImageDataConfig):
    """Data and training settings both autoencoder recipes have (the study trains on all 60k images)."""

    latent_activation: str = "relu"
    """relu (the study: a ReLU after every layer, the code's included) or none (a linear code)."""
    output_activation: str = "relu"
    """relu (the study), sigmoid or none: a ReLU output can switch pixels off for every image."""
    epochs: int = 10
    """Passes over the training set, the same for every model (the study does not state its number)."""
    batch_size: int = 64
    """Minibatch size."""
    lr: float = 1e-3
    """Adam's learning rate."""

    def __post_init__(self) -> None:
        super().__post_init__()
        one_of("latent_activation", self.latent_activation, LATENT_ACTIVATIONS)
        one_of("output_activation", self.output_activation, OUTPUT_ACTIVATIONS)
        positive("epochs", self.epochs)
        positive("batch_size", self.batch_size)
        check_lr("adam", self.lr)


def load_images_and_labels(cfg: AutoencoderConfig, device: torch.device):
    """The dataset and its train and test images (flat, in [0, 1]) and labels on ``device``.

    No validation split: the study trains on the whole training set and reports the test set.
    """
    data = load_data(cfg)
    keep = random_subset(len(data.train_labels), cfg.train_limit, seed=cfg.seed)
    return (data, to_tensor(data.train_images[keep], device), torch.as_tensor(data.train_labels[keep], device=device),
            to_tensor(data.test_images, device), torch.as_tensor(data.test_labels, device=device))


def checkpoint_name(arch: str, latent: int, seed: int) -> str:
    """``conv-latent2-seed0``: how the autoencoder recipes name their checkpoints."""
    return f"{arch}-latent{latent}-seed{seed}"


def architecture(arch: str, latent: int, image_shape: Sequence[int], latent_activation: str,
                 output_activation: str = "relu") -> dict[str, Any]:
    """The builder's keyword arguments for the study's model of kind ``arch`` at this image size."""
    h, w = image_shape
    if arch == "mlp":
        return {"kind": "mlp", "in_dim": h * w, "latent": latent, "hidden": [196, 49],
                "latent_activation": latent_activation, "output_activation": output_activation}
    return {"kind": "conv", "image_shape": [h, w], "latent": latent, "channels": [16, 32],
            "latent_activation": latent_activation, "output_activation": output_activation}


def new_model(arch: str, latent: int, image_shape: Sequence[int], latent_activation: str, seed: int,
              device: torch.device, output_activation: str = "relu") -> tuple[nn.Module, dict[str, Any]]:
    """The study's model of kind ``arch`` with the initial weights of ``seed``, and its description."""
    description = architecture(arch, latent, image_shape, latent_activation, output_activation)
    with global_seed(seed):  # module initialisers draw from torch's global generator
        return build_autoencoder(**description).to(device), description


def train_autoencoder(model: nn.Module, x: torch.Tensor, *, lr: float, epochs: int, batch_size: int, seed: int,
                      on_epoch: Callable[[int], dict[str, float]] | None = None, desc: str = "autoencoder"):
    """Reconstruct ``x`` (flat images on the device) with L1 loss and Adam: the study's objective.

    Batches are index slices of a seeded permutation of ``x`` (``trainlab.train.loop.fit``,
    whose thread rule runs these steps on one CPU thread). Adam is torch's fused
    implementation where the device has one: the same update, one kernel for all
    parameters instead of several per tensor (20-30% of a CPU step here).
    """
    fused = x.device.type in ("cpu", "cuda")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, fused=fused)
    return fit(model, x, x, optimizer=optimizer, loss_fn=nn.L1Loss(), epochs=epochs, batch_size=batch_size,
               generator=torch_generator(seed), on_epoch=on_epoch, desc=desc)


@dataclass(frozen=True)
class Job:
    """One model to train: kind, code size and seed."""

    arch: str
    latent: int
    seed: int


@dataclass
class Trained:
    job: Job
    model: nn.Module
    description: dict[str, Any]
    result: TrainResult
    cpu_seconds: float
    """CPU time of the thread that trained it (on a shared machine closer to an idle machine's wall time)."""


def train_all(jobs: Sequence[Job], cfg: AutoencoderConfig, x: torch.Tensor,
              image_shape: Sequence[int]) -> list[Trained]:
    """Train every job, side by side on the cores ``device.cpu_plan`` gives (one thread each).

    The models are independent and each trains on one thread with its own generators,
    so the results are the same bits whichever core, and in whichever order, they ran.
    """
    def one(job: Job) -> Trained:
        model, description = new_model(job.arch, job.latent, image_shape, cfg.latent_activation, job.seed, x.device,
                                       cfg.output_activation)
        start = time.thread_time()
        result = train_autoencoder(model, x, lr=cfg.lr, epochs=cfg.epochs, batch_size=cfg.batch_size, seed=job.seed,
                                   desc=f"{job.arch} λ={job.latent} seed {job.seed}")
        return Trained(job, model, description, result, time.thread_time() - start)

    per_image = [_flops_per_image(job, cfg, x[:1], image_shape) for job in jobs]
    plan = cpu_plan(x.device, min(cfg.batch_size, len(x)) * max(per_image), tasks=len(jobs),
                    total_flops=len(x) * cfg.epochs * sum(per_image))
    order = sorted(range(len(jobs)), key=lambda i: jobs[i].arch != "conv")  # the longest (conv) first
    done = dict(zip(order, run_planned(one, [jobs[i] for i in order], plan)))
    return [done[i] for i in range(len(jobs))]


def _flops_per_image(job: Job, cfg: AutoencoderConfig, image: torch.Tensor, image_shape: Sequence[int]) -> float:
    """Training FLOPs per image: the forward pass counted by torch, times 3 for forward and backward."""
    from torch.utils.flop_counter import FlopCounterMode

    model, _ = new_model(job.arch, job.latent, image_shape, cfg.latent_activation, 0, torch.device("cpu"),
                         cfg.output_activation)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(image.cpu())
    return 3.0 * counter.get_total_flops()


def per_class_l1(recon: torch.Tensor, x: torch.Tensor, labels: torch.Tensor) -> list[float]:
    """Mean L1 per pixel of the images of each class 0..max(labels)."""
    err = (recon - x).abs().mean(dim=1)
    n = int(labels.max()) + 1
    sums = torch.zeros(n, device=x.device).index_add_(0, labels, err)
    counts = torch.bincount(labels, minlength=n).clamp(min=1)
    return (sums / counts).tolist()


def class_knn_accuracy(train_codes: torch.Tensor, train_labels: torch.Tensor, test_codes: torch.Tensor,
                       test_labels: torch.Tensor, k: int = 5, max_train: int = 10000) -> float:
    """% of test codes whose ``k`` nearest training codes (a fixed subset of ``max_train``) vote for their class."""
    from sklearn.neighbors import KNeighborsClassifier

    keep = np.random.default_rng(0).permutation(len(train_codes))[:max_train]
    knn = KNeighborsClassifier(n_neighbors=k).fit(train_codes.cpu().numpy()[keep], train_labels.cpu().numpy()[keep])
    return 100.0 * float(knn.score(test_codes.cpu().numpy(), test_labels.cpu().numpy()))


def edge_strength(images: torch.Tensor, shape: Sequence[int]) -> float:
    """Mean absolute difference between horizontally and vertically neighbouring pixels: low for a blur."""
    x = images.reshape(-1, *shape)
    return 0.5 * ((x[:, :, 1:] - x[:, :, :-1]).abs().mean() + (x[:, 1:] - x[:, :-1]).abs().mean()).item()


def mosaic(images: np.ndarray, shape: Sequence[int], columns: int, gap: int = 1) -> np.ndarray:
    """Flat images (N, H*W) as one 2-D array, ``columns`` per row, separated by ``gap`` white pixels."""
    h, w = shape
    rows = -(-len(images) // columns)
    out = np.ones((rows * (h + gap) - gap, columns * (w + gap) - gap))
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        out[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = image.reshape(h, w)
    return out
