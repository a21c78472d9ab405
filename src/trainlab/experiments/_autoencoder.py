"""Plumbing the two autoencoder recipes share: settings, data, the models in words, checkpoint names.

The models, their training and their measures are library code: :mod:`trainlab.nn.autoencoder`
(``new_study_autoencoder``), :mod:`trainlab.train.autoencoder` (``train_autoencoders``) and
:mod:`trainlab.analysis.reconstruction`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from torch import nn

from trainlab.config import check, one_of, positive
from trainlab.data import to_tensor, train_val_split
from trainlab.data.subsets import random_subset
from trainlab.experiments._data import ImageDataConfig, load_data
from trainlab.experiments._resume import Checkpointing
from trainlab.nn.activations import activation_name
from trainlab.nn.autoencoder import LATENT_ACTIVATIONS, OUTPUT_ACTIVATIONS
from trainlab.runs import Pruned, Run
from trainlab.train.autoencoder import AutoencoderSpec, TrainedAutoencoder, train_autoencoders
from trainlab.train.loop import check_lr
from trainlab.train.metrics import mean_loss
from trainlab.train.result import StopTraining


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
            "(latent_activation=identity leaves the code linear, output_activation=sigmoid or identity the output). "
            "L1 loss, Adam.")


@dataclass
class AutoencoderConfig(Checkpointing, ImageDataConfig):
    """Data and training settings both autoencoder recipes have (the study trains on all 60k images);
    both resume (``--resume``), each model from its own snapshot."""

    latent_activation: str = "relu"
    """relu (the study: a ReLU after every layer, the code's included) or identity (a linear code; none is read as identity)."""
    output_activation: str = "relu"
    """relu (the study), sigmoid or identity: a ReLU output can switch pixels off for every image."""
    epochs: int = 10
    """Passes over the training set, the same for every model (the study does not state its number)."""
    batch_size: int = 64
    """Minibatch size."""
    lr: float = 1e-3
    """Adam's learning rate."""
    val_fraction: float = 0.0
    """Share of the training images held out for validation: every model's val_l1 after each epoch
    (a tune's objective, ``--metric val_l1 --mode min``); 0 trains on all of them, as the study did."""

    def __post_init__(self) -> None:
        super().__post_init__()
        # older spellings (none) are read as the one vocabulary's name, so configs and run folders say identity
        self.latent_activation = activation_name(self.latent_activation)
        self.output_activation = activation_name(self.output_activation)
        one_of("latent_activation", self.latent_activation, LATENT_ACTIVATIONS)
        one_of("output_activation", self.output_activation, OUTPUT_ACTIVATIONS)
        positive("epochs", self.epochs)
        positive("batch_size", self.batch_size)
        check_lr("adam", self.lr)
        check(0 <= self.val_fraction < 1, f"val_fraction must be in [0, 1) (got {self.val_fraction})")


def load_images_and_labels(cfg: AutoencoderConfig, device: torch.device):
    """The dataset, its train and test images (flat, in [0, 1]) and labels on ``device``, and the
    validation images (None without a split: the study trains on the whole training set).
    """
    data = load_data(cfg)
    keep = random_subset(len(data.train_labels), cfg.train_limit, seed=cfg.seed)
    x_val = None
    if cfg.val_fraction > 0:  # drawn from the (limited) training images with the seed, as the MLP studies do
        kept, held = train_val_split(len(keep), cfg.val_fraction, seed=cfg.seed)
        keep, x_val = keep[kept], to_tensor(data.train_images[keep[held]], device)
    return (data, to_tensor(data.train_images[keep], device), torch.as_tensor(data.train_labels[keep], device=device),
            to_tensor(data.test_images, device), torch.as_tensor(data.test_labels, device=device), x_val)


def checkpoint_name(arch: str, latent: int, seed: int) -> str:
    """``conv-latent2-seed0``: how the autoencoder recipes name their checkpoints."""
    return f"{arch}-latent{latent}-seed{seed}"


def train_all(specs: Sequence[AutoencoderSpec], cfg: AutoencoderConfig, x: torch.Tensor,
              image_shape: Sequence[int], out: Run, x_val: torch.Tensor | None) -> list[TrainedAutoencoder]:
    """:func:`trainlab.train.autoencoder.train_autoencoders` with the config's settings, each model
    snapshotting in the slot named as its checkpoint. With validation images, every model's
    ``val_l1`` after each epoch goes to ``out.report_epoch`` as a member named as its checkpoint:
    a tune may stop some models (status ``pruned``) while the others go on."""
    snapshots = out.snapshots(cfg.checkpoint_every)

    def validate(spec: AutoencoderSpec, model: nn.Module, epoch: int) -> dict[str, float]:
        values = {"val_l1": mean_loss(model, x_val, x_val, nn.L1Loss())}
        if out.report_epoch(epoch, members={checkpoint_name(spec.arch, spec.latent, spec.seed): values}):
            raise StopTraining(values)
        return values

    return train_autoencoders(specs, x, image_shape, latent_activation=cfg.latent_activation,
                              output_activation=cfg.output_activation, lr=cfg.lr, epochs=cfg.epochs,
                              batch_size=cfg.batch_size,
                              snapshots=[snapshots.slot(checkpoint_name(s.arch, s.latent, s.seed)) for s in specs],
                              on_epoch=validate if x_val is not None else None)


def best_val_l1(trained: Sequence[TrainedAutoencoder]) -> dict[str, float]:
    """The summary's ``val_l1`` (a tune's objective): the best (arch, λ)'s last-epoch validation L1,
    averaged over its seeds, among models that finished; nothing without a validation split."""
    per_model: dict[tuple[str, int], list[float]] = {}
    for t in trained:
        if t.result.status == "done" and "val_l1" in t.result.history[-1]:
            per_model.setdefault((t.spec.arch, t.spec.latent), []).append(t.result.history[-1]["val_l1"])
    if not per_model:
        return {"val_l1": float("nan")} if any("val_l1" in h for t in trained for h in t.result.history) else {}
    return {"val_l1": min(sum(v) / len(v) for v in per_model.values())}


def raise_if_all_pruned(trained: Sequence[TrainedAutoencoder]) -> None:
    """A tune that gave up on every model prunes the run (after its tables are written)."""
    if trained and all(t.result.status == "pruned" for t in trained):
        raise Pruned(max(len(t.result.history) for t in trained))
