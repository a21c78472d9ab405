"""Training the autoencoder study's models: L1 reconstruction with Adam, many models side by side.

    trained = train_autoencoders([AutoencoderSpec("conv", 2, seed=0), ...], x, (28, 28),
                                 latent_activation="relu", output_activation="relu",
                                 lr=1e-3, epochs=10, batch_size=64)

Each model is one training job with its own snapshot slot (``snapshots=``, one per spec): the
models are independent, so a stopped run continues each from its own last epoch boundary.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from torch import nn

from trainlab.device import torch_generator
from trainlab.nn.autoencoder import new_study_autoencoder
from trainlab.nn.flops import training_flops_per_example
from trainlab.train.adam import make_adam
from trainlab.train.loop import fit
from trainlab.train.result import TrainResult
from trainlab.train.snapshots import ClockedSlot, SnapshotSlot
from trainlab.workers import run_independent


def train_autoencoder(model: nn.Module, x: torch.Tensor, *, lr: float, epochs: int, batch_size: int, seed: int,
                      on_epoch: Callable[[int], dict[str, float]] | None = None, desc: str = "autoencoder",
                      snapshot: SnapshotSlot | None = None) -> TrainResult:
    """Reconstruct ``x`` (flat images on the device) with L1 loss and Adam: the study's objective.

    Batches are index slices of a seeded permutation of ``x`` (``trainlab.train.loop.fit``,
    whose thread rule runs these steps on one CPU thread). Adam is
    :func:`~trainlab.train.adam.make_adam`'s, fused where the device has a fused kernel
    (20-30% of a CPU step here would go to the default's several passes). ``snapshot``:
    continue from (and save) the job's snapshots, as ``fit`` does.
    """
    optimizer = make_adam(model.parameters(), lr=lr)
    return fit(model, x, x, optimizer=optimizer, loss_fn=nn.L1Loss(), epochs=epochs, batch_size=batch_size,
               generator=torch_generator(seed), on_epoch=on_epoch, desc=desc, snapshot=snapshot)


@dataclass(frozen=True)
class AutoencoderSpec:
    """One model to train: the study's kind (mlp or conv), its code size and its seed."""

    arch: str
    latent: int
    seed: int


@dataclass
class TrainedAutoencoder:
    spec: AutoencoderSpec
    model: nn.Module
    description: dict[str, Any]
    """The builder's arguments (``build_autoencoder(**description)``), for its checkpoint."""
    result: TrainResult
    cpu_seconds: float
    """CPU time of the thread that trained it (on a shared machine closer to an idle machine's wall time),
    over every process that worked on it when the run was resumed."""


def train_autoencoders(specs: Sequence[AutoencoderSpec], x: torch.Tensor, image_shape: Sequence[int], *,
                       latent_activation: str, output_activation: str, lr: float, epochs: int,
                       batch_size: int, snapshots: Sequence[SnapshotSlot] | None = None,
                       on_epoch: Callable[[AutoencoderSpec, nn.Module, int], dict[str, float]] | None = None,
                       ) -> list[TrainedAutoencoder]:
    """Train every model of ``specs`` on ``x``, side by side on the cores (:func:`trainlab.workers.run_independent`).

    The models are independent and each trains on one thread with its own generators,
    so the results are the same bits whichever core, and in whichever order, they ran.
    Results come back in the order of ``specs``. ``snapshots``: one slot per spec, in the
    same order; a model whose snapshot is finished is loaded from it instead of trained.
    ``on_epoch(spec, model, epoch)``: ``fit``'s epoch callback for each model (validation numbers;
    it may stop that model with ``StopTraining``).
    """
    slots = list(snapshots) if snapshots is not None else [None] * len(specs)
    if len(slots) != len(specs):
        raise ValueError(f"{len(specs)} autoencoders but {len(slots)} snapshot slots")

    def one(i: int) -> TrainedAutoencoder:
        spec = specs[i]
        model, description = new_study_autoencoder(spec.arch, spec.latent, image_shape, latent_activation, spec.seed,
                                                   x.device, output_activation)
        timer = ClockedSlot(slots[i], time.thread_time)  # made here: thread_time counts this worker thread
        watch = None if on_epoch is None else (lambda epoch: on_epoch(spec, model, epoch))
        result = train_autoencoder(model, x, lr=lr, epochs=epochs, batch_size=batch_size, seed=spec.seed,
                                   desc=f"{spec.arch} λ={spec.latent} seed {spec.seed}", snapshot=timer,
                                   on_epoch=watch)
        return TrainedAutoencoder(spec, model, description, result, timer.seconds())

    def flops_per_image(spec: AutoencoderSpec) -> float:
        probe, _ = new_study_autoencoder(spec.arch, spec.latent, image_shape, latent_activation, 0,
                                         torch.device("cpu"), output_activation)
        return training_flops_per_example(probe, x[:1])

    per_image = [flops_per_image(spec) for spec in specs]
    return run_independent(one, range(len(specs)), costs=[len(x) * epochs * f for f in per_image],
                           step_flops=min(batch_size, len(x)) * max(per_image), device=x.device)
