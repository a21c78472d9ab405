"""Conditional DDPMs and classifier-free guidance (Ho & Salimans 2022).

A conditional model is any :mod:`trainlab.diffusion.ddpm` model built with
``n_classes > 0``: labels ``0..n_classes-1`` are classes, label ``n_classes`` means
"unconditional"; training drops each label to ``n_classes`` with probability
``label_dropout``, so one network learns both ``eps(x, t, y)`` and ``eps(x, t)``.

Guidance convention (the study's, and Ho & Salimans' ``w``):

    eps = (1 + w) * eps(x_t, t, y) - w * eps(x_t, t, unconditional)

``w = 0`` is plain conditional sampling; ``w > 0`` pushes samples towards what makes
``y`` more likely than the unconditional model.  (Diffusers' ``guidance_scale`` is
``1 + w``.)  Because the DDPM step is affine in ``eps`` with the same noise, this is the
study's ``x_{t-1} = (1 + w) x_{t-1,cond} - w x_{t-1,uncond}``.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from trainlab.diffusion.ddpm import make_noise_model, sample, train_ddpm
from trainlab.diffusion.schedules import NoiseScheduler, make_scheduler
from trainlab.errors import ConfigError
from trainlab.train.result import TrainResult
from trainlab.train.snapshots import SnapshotSlot


def make_conditional_model(arch: str, n_dim: int, T: int, n_classes: int, **kwargs: Any) -> nn.Module:
    """A noise model with a class embedding for ``n_classes`` labels plus the unconditional one."""
    if n_classes < 1:
        raise ConfigError(f"a conditional model needs n_classes >= 1 (got {n_classes})")
    return make_noise_model(arch, n_dim, T, n_classes=n_classes, **kwargs)


def fit_conditional(
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    n_classes: int,
    arch: str = "default",
    T: int = 100,
    schedule: str = "linear",
    beta_low: float = 1e-4,
    beta_high: float = 0.02,
    steps: int = 3000,
    batch_size: int = 512,
    lr: float = 1e-3,
    warmup_steps: int = 0,
    ema_decay: float = 0.0,
    label_dropout: float = 0.1,
    generator: torch.Generator | None = None,
    progress: bool = True,
    model_kwargs: dict[str, Any] | None = None,
    snapshot: SnapshotSlot | None = None,
) -> tuple[nn.Module, NoiseScheduler, TrainResult]:
    """Build and train a conditional DDPM on ``X`` ``(N, d)`` (on the target device) and labels ``y``.

    Returns ``(model, scheduler, result)`` with the :class:`TrainResult` of :func:`train_ddpm`
    (which snapshots into ``snapshot``, if given, and continues from it).
    """
    scheduler = make_scheduler(schedule, T, beta_low, beta_high)
    model = make_conditional_model(arch, X.shape[1], T, n_classes, **(model_kwargs or {})).to(X.device)
    result = train_ddpm(
        model, scheduler, X, steps=steps, batch_size=batch_size, lr=lr, warmup_steps=warmup_steps,
        ema_decay=ema_decay, generator=generator,
        progress=progress, labels=y, label_dropout=label_dropout, snapshot=snapshot,
    )
    return model, scheduler, result


def sample_conditional(
    model: nn.Module, scheduler: NoiseScheduler, n: int, label: Any, **kwargs: Any
) -> torch.Tensor:
    """``n`` samples of class ``label`` (an int, or ``(n,)`` ints); kwargs as :func:`ddpm.sample`."""
    _check_label(model, label)
    return sample(model, scheduler, n, labels=label, **kwargs)


def guided_eps(model: nn.Module, guidance_scale: float) -> Callable[..., torch.Tensor]:
    """``eps_fn(x, t, y)`` giving ``(1 + w) eps(x,t,y) - w eps(x,t,uncond)`` from ONE forward
    pass over the stacked batch ``[x; x]`` with labels ``[y; uncond]``."""
    w = float(guidance_scale)
    uncond = model.n_classes

    def eps_fn(x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        m = x.shape[0]
        both = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, torch.full_like(y, uncond)]))
        eps_c, eps_u = both[:m], both[m:]
        return (1 + w) * eps_c - w * eps_u

    return eps_fn


def sample_cfg(
    model: nn.Module,
    scheduler: NoiseScheduler,
    n: int,
    label: Any,
    guidance_scale: float,
    **kwargs: Any,
) -> torch.Tensor:
    """``n`` classifier-free-guided samples of class ``label`` with ``w = guidance_scale``
    (see the module docstring for the convention); kwargs as :func:`ddpm.sample`
    (``generator``, ``prior``, ``return_intermediate``, ...)."""
    _check_label(model, label)
    return sample(model, scheduler, n, labels=label, eps_fn=guided_eps(model, guidance_scale), **kwargs)


def _check_label(model: nn.Module, label: Any) -> None:
    n_classes = getattr(model, "n_classes", 0)
    if n_classes < 1:
        raise ConfigError("this model is unconditional; build it with n_classes > 0 to sample a class")
    lab = torch.as_tensor(label)
    if lab.numel() and (int(lab.min()) < 0 or int(lab.max()) >= n_classes):
        raise ConfigError(f"label must be in 0..{n_classes - 1} (got {label!r})")
