"""Class-conditional noise models fitted to labelled point sets, and the ordinary classifier they face.

    settings = ConditionalSettings(T=100, train_steps=2000)
    (model, scheduler, result), = fit_conditional_models(settings, [(X, y, n_classes)], device)

:func:`fit_conditional_models` fits one model per data set; with ``stacked=True`` the data
sets of one dimension and number of classes train as one stack
(:mod:`trainlab.diffusion.stacked`), the stacks side by side on the cores
(:func:`trainlab.workers.run_independent`); ``stacked=False`` fits them one at a time, the
reference: the same models up to float rounding. :func:`reference_classifier` is the
ordinary classifier (scikit-learn's MLP) that guidance and the diffusion classifier are
compared with.

Given ``slots`` (``slots(job)`` is a :class:`~trainlab.train.snapshots.SnapshotSlot`, such as a
run's ``out.snapshots(every_s).slot``), every training job (a stack ``stack<j>``, or one model
``model<i>`` when not stacked) snapshots under its name and a resumed run continues it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch

from trainlab.device import torch_generator
from trainlab.diffusion.guidance import fit_conditional, make_conditional_model
from trainlab.diffusion.schedules import NoiseScheduler, make_scheduler
from trainlab.diffusion.stacked import StackMember, plan_stacks, train_ddpm_stack
from trainlab.train.result import training_flops
from trainlab.train.snapshots import SnapshotSlot
from trainlab.workers import run_independent


@dataclass
class ConditionalSettings:
    """The noise model, schedule and training of every class-conditional model of a study.

    A plain dataclass so that a recipe's config can inherit it (no second copy of the fields).
    """

    arch: str = "default"
    """Noise model: default (residual MLP) or study (the study's small MLP)."""
    hidden: int = 64
    """Width of the default model."""
    depth: int = 3
    """Residual blocks of the default model."""
    T: int = 100
    """Diffusion steps."""
    schedule: str = "linear"
    """Noise schedule: linear, cosine or sigmoid."""
    beta_low: float = 1e-3
    """First beta of the linear/sigmoid schedule (the study's 0.001)."""
    beta_high: float = 0.02
    """Last beta of the linear/sigmoid schedule (the study's 0.02)."""
    train_steps: int = 2000
    """Optimizer steps (batches) per model."""
    batch_size: int = 512
    """Training batch size."""
    lr: float = 1e-3
    """Adam learning rate (cosine-decayed to 0)."""
    warmup_steps: int = 0
    """Steps of linear learning-rate warm-up before the cosine decay."""
    ema_decay: float = 0.0
    """Decay of the weights' exponential moving average used for sampling; 0 samples the trained weights."""
    label_dropout: float = 0.1
    """Probability of training a row with the unconditional label."""
    seed: int = 0
    """Seeds every model's training draws."""

    def model_kwargs(self) -> dict[str, Any]:
        """The noise model's size arguments (the study's model has fixed sizes)."""
        return {"hidden": self.hidden, "depth": self.depth} if self.arch == "default" else {}

    def architecture(self, n_dim: int, n_classes: int) -> dict[str, Any]:
        """The arguments of :func:`~trainlab.diffusion.ddpm.make_noise_model` for the model of a data set
        (a checkpoint's description): ``make_noise_model(**architecture)`` builds it."""
        return {"arch": self.arch, "n_dim": n_dim, "T": self.T, "n_classes": n_classes, **self.model_kwargs()}

    def schedule_args(self) -> dict[str, Any]:
        """The arguments of :func:`~trainlab.diffusion.schedules.make_scheduler` for every model's schedule."""
        return {"kind": self.schedule, "T": self.T, "beta_low": self.beta_low, "beta_high": self.beta_high}


def fit_conditional_model(settings: ConditionalSettings, X: Any, y: Any, n_classes: int, device: torch.device,
                          snapshot: SnapshotSlot | None = None):
    """Train one conditional model on (X, y); returns (model, scheduler, result) as :func:`fit_conditional` does
    (snapshotting into ``snapshot`` and continuing from it, if given)."""
    return fit_conditional(
        torch.as_tensor(X).to(device), torch.as_tensor(y).to(device), n_classes=n_classes,
        arch=settings.arch, T=settings.T, schedule=settings.schedule, beta_low=settings.beta_low,
        beta_high=settings.beta_high, steps=settings.train_steps, batch_size=settings.batch_size, lr=settings.lr,
        warmup_steps=settings.warmup_steps, ema_decay=settings.ema_decay,
        label_dropout=settings.label_dropout, generator=torch_generator(settings.seed, device),
        model_kwargs=settings.model_kwargs(), snapshot=snapshot,
    )


def fit_conditional_models(settings: ConditionalSettings, data: Sequence[tuple[Any, Any, int]], device: torch.device,
                           stacked: bool = True, slots: Callable[[str], SnapshotSlot] | None = None,
                           ) -> list[tuple[torch.nn.Module, NoiseScheduler, Any]]:
    """:func:`fit_conditional_model` for every ``(X, y, n_classes)`` in ``data``, in order.

    With ``stacked`` the models are built one after another from the global generator,
    as the one-at-a-time path builds them, and data sets of the same dimension and
    number of classes train as one stack (each model equals its solo run up to float
    rounding), stacks side by side on the cores. With ``slots`` the jobs snapshot and resume
    (see the module docstring).
    """
    if not stacked:
        return [fit_conditional_model(settings, X, y, n_classes, device,
                                      snapshot=slots(f"model{i}") if slots is not None else None)
                for i, (X, y, n_classes) in enumerate(data)]
    scheduler = make_scheduler(**settings.schedule_args())
    members = [StackMember(make_conditional_model(settings.arch, np.shape(X)[1], settings.T, c,
                                                  **settings.model_kwargs()).to(device),
                           scheduler, torch.as_tensor(X).to(device), torch_generator(settings.seed, device),
                           labels=torch.as_tensor(y).to(device))
               for X, y, c in data]
    stacks = plan_stacks([(np.shape(X)[1], c) for X, _, c in data])
    params = [sum(p.numel() for p in m.model.parameters()) for m in members]
    step = [training_flops(sum(params[i] for i in stack), min(settings.batch_size, len(members[stack[0]].X)))
            for stack in stacks]

    def one_stack(j: int, alone: bool) -> list[Any]:
        return train_ddpm_stack([members[i] for i in stacks[j]], steps=settings.train_steps,
                                batch_size=settings.batch_size, lr=settings.lr,
                                warmup_steps=settings.warmup_steps, ema_decay=settings.ema_decay,
                                label_dropout=settings.label_dropout, progress=alone,
                                snapshot=slots(f"stack{j}") if slots is not None else None)

    per_stack = run_independent(one_stack, range(len(stacks)), costs=[s * settings.train_steps for s in step],
                                step_flops=max(step), device=device, tell_alone=True)
    out: list[Any] = [None] * len(data)
    for stack, results in zip(stacks, per_stack):
        for i, result in zip(stack, results):
            out[i] = (members[i].model, scheduler, result)
    return out


REFERENCE_CLASSIFIER = "scikit-learn MLPClassifier (64, 64)"


def reference_classifier(X: np.ndarray, y: np.ndarray, max_iter: int, seed: int):
    """The ordinary classifier the conditional models are compared with, fitted on (X, y)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=(64, 64), max_iter=max_iter, random_state=seed)
    with warnings.catch_warnings():  # quick profiles stop the MLP early on purpose
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    return clf
