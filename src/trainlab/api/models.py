"""A run's trained models, rebuilt from its checkpoints (:mod:`trainlab.checkpoints`).

Every recipe that trains a model saves it as a weights-only state dict plus a JSON
description; :data:`LOADERS` says, for each such experiment, how that description
becomes a model again. Loading is weights-only (``torch.load(weights_only=True)``)
and checked key by key and shape by shape before anything is copied.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from torch import nn

from trainlab.checkpoints import checkpoint_info, list_checkpoints, load_checkpoint, read_checkpoint
from trainlab.diffusion.ddpm import make_noise_model
from trainlab.errors import ConfigError
from trainlab.mcmc.targets import GaussianEnergy
from trainlab.nn.autoencoder import MLPAutoencoder, build_autoencoder
from trainlab.nn.cnn import FastCNN
from trainlab.nn.energy import EnergyRegressor
from trainlab.nn.mlp import MLP
from trainlab.scratch.network import NeuralNetwork

Loader = Callable[[Path, str], Any]
"""(run folder, checkpoint name) -> the ready model."""


def _module(build: Callable[..., nn.Module]) -> Loader:
    """A loader for modules that ``build(**architecture)`` makes: build, load the checked weights, eval mode."""
    def load(run_dir: Path, name: str) -> nn.Module:
        model = build(**checkpoint_info(run_dir, name)["architecture"])
        load_checkpoint(run_dir, name, model)
        return model.eval()
    return load


def _numpy_network(run_dir: Path, name: str) -> NeuralNetwork:
    state, info = read_checkpoint(run_dir, name)
    return NeuralNetwork.from_state_dict(state, info["architecture"])


def _energy(run_dir: Path, name: str) -> EnergyRegressor | GaussianEnergy:
    """The energy-based model runs save two checkpoints: the trained ``regressor`` and the true ``target``."""
    state, info = read_checkpoint(run_dir, name)
    if info["architecture"].get("kind") == "ppca-gaussian":
        return GaussianEnergy.from_state_dict(state)
    return EnergyRegressor.from_state_dict(state, source=str(run_dir / "checkpoints" / f"{name}.pt")).eval()


LOADERS: dict[str, Loader] = {
    "mnist-binary": _module(MLP),
    "mnist-grid": _module(MLP),
    "mnist-imbalance": _module(MLP),
    "mnist-reconstruct": _module(MLPAutoencoder),
    "autoencoder": _module(build_autoencoder),
    "autoencoder-mean-latent": _module(build_autoencoder),
    "cifar-cnn": _module(FastCNN),
    "cifar-scaling": _module(FastCNN),
    "ddpm-cfg": _module(make_noise_model),
    "ddpm-classifier": _module(make_noise_model),
    "ddpm-schedules": _module(make_noise_model),
    "ddpm-steps": _module(make_noise_model),
    "scratch-mlp": _numpy_network,
    "scratch-sweep": _numpy_network,
    "ebm-eval": _energy,
    "ebm-sample": _energy,
}
"""Experiment -> how its checkpoints become models (experiments not listed train no model)."""


def load_model(run_dir: Path, experiment: str, name: str | None = None) -> Any:
    """Checkpoint ``name`` of run folder ``run_dir`` as a ready model; ``None`` picks the only one."""
    have = list_checkpoints(run_dir)
    if not have:
        raise ConfigError(f"{run_dir} has no checkpoints ({experiment} saves no trained model)")
    if name is None:
        if len(have) > 1:
            raise ConfigError(f"{run_dir} has {len(have)} checkpoints; name one: model({have[0]!r}) "
                              f"(it has: {', '.join(have)})")
        name = have[0]
    if name not in have:
        raise ConfigError(f"{run_dir} has no checkpoint {name!r} (it has: {', '.join(have)})")
    loader = LOADERS.get(experiment)
    if loader is None:
        raise ConfigError(f"trainlab cannot rebuild {experiment}'s checkpoints as models; "
                          f"read their weights with trainlab.checkpoints.read_checkpoint")
    return loader(Path(run_dir), name)
