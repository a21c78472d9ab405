"""DDPM noise-prediction networks, training and ancestral sampling (Ho et al. 2020).

Every model here has the signature ``model(x, t, y=None) -> eps_hat`` with ``x``
``(B, n_dim)`` float, ``t`` ``(B,)`` integer timesteps in ``{0..T-1}`` (see
:mod:`trainlab.diffusion.schedules`) and, for conditional models (``n_classes > 0``),
``y`` ``(B,)`` integer labels in ``{0..n_classes}`` where the extra label
``n_classes`` means "no label" (classifier-free guidance, Ho & Salimans 2022).
``y=None`` is the unconditional label.  Models carry ``n_dim``, ``T`` and ``n_classes``.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from trainlab.device import threads_for_step, use_threads
from trainlab.diffusion.schedules import NoiseScheduler
from trainlab.errors import ConfigError
from trainlab.nn.embeddings import SinusoidalEmbedding
from trainlab.train.adam import make_adam
from trainlab.train.result import TrainResult, training_flops
from trainlab.train.snapshots import SnapshotSlot, resume_training, training_snapshot
from trainlab.train.warmup_ema import WeightEMA, warmup_cosine

ARCHS = ("default", "study")


class ClassEmbedding(nn.Module):
    """One-hot of ``n_classes + 1`` labels (the last one = unconditional) through a linear layer.

    This is the study's class embedding; it equals an ``nn.Embedding`` plus a bias.
    """

    def __init__(self, n_classes: int, dim: int):
        super().__init__()
        self.n_classes = n_classes
        self.linear = nn.Linear(n_classes + 1, dim)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.linear(F.one_hot(y.long(), self.n_classes + 1).to(self.linear.weight.dtype))


def _labels(y: torch.Tensor | None, n_classes: int, batch: int, device: torch.device) -> torch.Tensor:
    if y is None:
        return torch.full((batch,), n_classes, dtype=torch.long, device=device)
    return y.to(device=device, dtype=torch.long).expand(batch) if y.dim() == 0 else y.to(device)


class StudyNoiseModel(nn.Module):
    """The study's network: a 16-feature sinusoidal time embedding -> Linear -> ReLU gives
    ``t_dim = 4`` features; ``[x, (class embedding), t_embed]`` goes through
    Linear -> ReLU -> Linear -> ReLU -> Linear with hidden width ``4 * n_dim + 2 * t_dim``.
    The class embedding (``n_classes > 0``) maps a one-hot of ``n_classes + 1`` to as many features.
    """

    def __init__(self, n_dim: int, T: int, n_classes: int = 0, sin_dim: int = 16, t_dim: int = 4):
        super().__init__()
        self.n_dim, self.T, self.n_classes = n_dim, T, n_classes
        self.time = nn.Sequential(SinusoidalEmbedding(sin_dim), nn.Linear(sin_dim, t_dim), nn.ReLU())
        self.label = ClassEmbedding(n_classes, n_classes + 1) if n_classes > 0 else None
        c_dim = n_classes + 1 if n_classes > 0 else 0
        hidden = 4 * n_dim + 2 * t_dim
        self.net = nn.Sequential(
            nn.Linear(n_dim + c_dim + t_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, n_dim),
        )

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        parts = [x, self.time(t)]
        if self.label is not None:
            parts.insert(1, self.label(_labels(y, self.n_classes, x.shape[0], x.device)))
        return self.net(torch.cat(parts, dim=1))


class ResidualBlock(nn.Module):
    """``h + W2 silu(W1 silu(LN h) + cond)``: pre-norm MLP block with additive conditioning."""

    def __init__(self, hidden: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.fc1 = nn.Linear(hidden, hidden)
        self.fc2 = nn.Linear(hidden, hidden)

    def forward(self, h: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return h + self.fc2(F.silu(self.fc1(F.silu(self.norm(h))) + cond))


class NoiseModel(nn.Module):
    """trainlab's default: a residual MLP with a learned projection of a 64-feature sinusoidal
    time embedding (and of the class embedding) added inside every block.

    ``hidden`` is the width, ``depth`` the number of residual blocks.  Time is fed as
    ``t * 1000 / T`` so the embedding frequencies suit any ``T``.  About 110k
    parameters at the defaults; on 2-D toys it fits far better than :class:`StudyNoiseModel`.
    """

    def __init__(self, n_dim: int, T: int, hidden: int = 128, depth: int = 3, n_classes: int = 0, t_features: int = 64):
        super().__init__()
        self.n_dim, self.T, self.n_classes = n_dim, T, n_classes
        self.time = nn.Sequential(
            SinusoidalEmbedding(t_features), nn.Linear(t_features, hidden), nn.SiLU(), nn.Linear(hidden, hidden)
        )
        self.label = ClassEmbedding(n_classes, hidden) if n_classes > 0 else None
        self.inp = nn.Linear(n_dim, hidden)
        self.blocks = nn.ModuleList(ResidualBlock(hidden) for _ in range(depth))
        self.out_norm = nn.LayerNorm(hidden)
        self.out = nn.Linear(hidden, n_dim)
        # a buffer, not a float, so that stacked models of different T (diffusion.stacked) each keep theirs
        self.register_buffer("t_scale", torch.tensor(1000.0 / T), persistent=False)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        cond = self.time(t.to(torch.float32) * self.t_scale)
        if self.label is not None:
            cond = cond + self.label(_labels(y, self.n_classes, x.shape[0], x.device))
        h = self.inp(x)
        for block in self.blocks:
            h = block(h, cond)
        return self.out(F.silu(self.out_norm(h)))


def make_noise_model(arch: str, n_dim: int, T: int, n_classes: int = 0, **kwargs: Any) -> nn.Module:
    """``arch="default"`` -> :class:`NoiseModel` (``hidden``, ``depth`` via kwargs); ``"study"`` -> :class:`StudyNoiseModel`."""
    if arch == "default":
        return NoiseModel(n_dim, T, n_classes=n_classes, **kwargs)
    if arch == "study":
        return StudyNoiseModel(n_dim, T, n_classes=n_classes, **kwargs)
    raise ConfigError(f"arch={arch!r} is not one of {', '.join(ARCHS)}")


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def gaussian_noise(shape, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """Gaussian noise drawn on the generator's device, then moved. A CPU generator gives the
    same numbers whatever the model's device, at the price of a copy per draw; one on the
    model's device draws there (the studies do: their GPU streams differ from the CPU's)."""
    dev = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=dev).to(device)


def train_ddpm(
    model: nn.Module,
    scheduler: NoiseScheduler,
    X: torch.Tensor,
    *,
    steps: int,
    batch_size: int = 512,
    lr: float = 1e-3,
    generator: torch.Generator | None = None,
    progress: bool = True,
    labels: torch.Tensor | None = None,
    label_dropout: float = 0.1,
    weight_decay: float = 0.0,
    lr_decay: bool = True,
    warmup_steps: int = 0,
    ema_decay: float = 0.0,
    check_every: int = 100,
    on_step: Callable[[int], None] | None = None,
    snapshot: SnapshotSlot | None = None,
) -> TrainResult:
    """Train ``model`` to predict the noise, ``|| eps - model(x_t, t, y) ||^2`` (Ho et al. Alg. 1).

    ``X`` ``(N, d)`` lives on the model's device; each batch is an index slice of a
    seeded permutation (a new one per pass), ``t`` uniform on ``{0..T-1}``.  With
    ``labels`` (``(N,)`` ints, model has ``n_classes``), each label is replaced by the
    unconditional label ``n_classes`` with probability ``label_dropout``.  Adam with a linear
    warm-up of ``lr`` over ``warmup_steps``, then cosine decay to 0 when ``lr_decay``
    (:func:`~trainlab.train.warmup_ema.warmup_cosine`).  With ``ema_decay`` > 0 an exponential
    moving average of the weights (:class:`~trainlab.train.warmup_ema.WeightEMA`) is kept and
    the trained model ends with the average's weights, the ones to sample with.
    All randomness comes from ``generator``:
    on the model's device it costs no host-to-device copy per step (on the CPU, three).

    Losses stay on the device and are checked for NaN/Inf every ``check_every`` steps;
    a non-finite loss stops training.  ``on_step(step)`` is called after every optimizer
    step (``step`` counts from 1), for example to score checkpoints; its time is part of
    ``seconds``.  Returns a :class:`TrainResult` with status ``done`` or ``diverged`` and
    one ``{"step", "train_loss"}`` record per step up to the first bad loss.  Threads
    follow :func:`trainlab.device.cpu_plan` for the step's size.

    With a ``snapshot`` slot (:mod:`trainlab.train.snapshots`) training continues from the
    slot's last boundary (a finished job returns its result at once, its weights loaded) and
    saves there when the slot says it is due. The boundaries are the NaN checks, every
    ``check_every`` steps: the state saved there is known to be finite. A snapshot holds the
    model, Adam, the learning-rate schedule, the EMA, ``generator`` (and the global RNGs), the pass's permutation
    and position in it, and the losses so far; ``on_step``'s own state is the caller's to keep.
    """
    if steps < 1 or batch_size < 1:
        raise ConfigError(f"steps and batch_size must be >= 1 (got {steps}, {batch_size})")
    device = _device_of(model)
    X = X.to(device)
    n = X.shape[0]
    n_classes = getattr(model, "n_classes", 0)
    if labels is not None:
        if n_classes < 1:
            raise ConfigError("labels given but the model is unconditional; build it with n_classes > 0")
        labels = labels.to(device=device, dtype=torch.long)
    gen_dev = generator.device if generator is not None else device
    batch_size = min(batch_size, n)
    opt = make_adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = warmup_cosine(opt, steps, warmup_steps, lr_decay) if lr_decay or warmup_steps > 0 else None
    weights = dict(model.named_parameters())
    ema = WeightEMA(weights, ema_decay) if ema_decay > 0 else None
    modules = {"model": model, "optimizer": opt, **({"lr_schedule": sched} if sched is not None else {}),
               **({"ema": ema} if ema is not None else {})}
    generators = (generator,) if generator is not None else ()
    losses = torch.empty(steps, device=device)
    status, done = "done", steps
    perm, pos = None, n
    first, seconds_before = 0, 0.0
    resumed = resume_training(snapshot, modules=modules, generators=generators)
    if resumed is not None:
        state, finished = resumed
        first, seconds_before, status = len(state["losses"]), state["seconds"], state["status"]
        losses[:first] = state["losses"].to(device)
        if finished:
            model.eval()
            return _ddpm_result(status, seconds_before, losses[:first])
        perm, pos = state["perm"].to(device), state["pos"]

    def save(finished: bool, kept: torch.Tensor, seconds: float) -> None:
        snapshot.save(training_snapshot(finished=finished, modules=modules, generators=generators, losses=kept,
                                        perm=perm, pos=pos, seconds=seconds, status=status))

    params = sum(p.numel() for p in model.parameters())
    with use_threads(threads_for_step(training_flops(params, batch_size), device), device):
        model.train()
        start = time.perf_counter()
        for step in tqdm(range(first, steps), desc="ddpm", disable=None if progress else True, leave=False):
            if pos + batch_size > n:  # new pass over the data
                perm, pos = torch.randperm(n, generator=generator, device=gen_dev).to(device), 0
            idx = perm[pos : pos + batch_size]
            pos += batch_size
            x0 = X[idx]
            t = torch.randint(0, scheduler.T, (batch_size,), generator=generator, device=gen_dev).to(device)
            noise = gaussian_noise(x0.shape, generator, device)
            y = None
            if labels is not None:
                y = labels[idx]
                drop = torch.rand(batch_size, generator=generator, device=gen_dev).to(device) < label_dropout
                y = torch.where(drop, torch.full_like(y, n_classes), y)
            loss = F.mse_loss(model(scheduler.add_noise(x0, noise, t), t, y), noise)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            if ema is not None:
                ema.update(weights)
            losses[step] = loss.detach()
            if on_step is not None:
                on_step(step + 1)
            if (step + 1) % check_every == 0 or step + 1 == steps:
                window = losses[: step + 1]
                if not bool(torch.isfinite(window).all()):  # one sync per check_every steps
                    done = int((~torch.isfinite(window)).nonzero()[0, 0])
                    status = "diverged"
                    break
                if snapshot is not None and step + 1 < steps and snapshot.due():
                    save(False, window, seconds_before + time.perf_counter() - start)
    model.eval()
    if ema is not None:
        ema.copy_to(weights)  # the finished snapshot below then holds the averaged weights
    result = _ddpm_result(status, seconds_before, losses[:done], start)
    if snapshot is not None:
        save(True, losses[:done], result.seconds)
    return result


def _ddpm_result(status: str, seconds_before: float, losses: torch.Tensor, start: float | None = None) -> TrainResult:
    """The :class:`TrainResult` of :func:`train_ddpm`: ``losses`` (one per step kept) as its history;
    its seconds are ``seconds_before`` plus those since ``start`` (the snapshot's, then this run's)."""
    kept = losses.tolist()  # waits for the device, so the time below is complete
    seconds = seconds_before + (time.perf_counter() - start if start is not None else 0.0)
    history = [{"step": i, "train_loss": loss} for i, loss in enumerate(kept, 1)]
    return TrainResult(status=status, seconds=seconds, history=history)


def _as_labels(labels: Any, n: int, device: torch.device) -> torch.Tensor | None:
    if labels is None:
        return None
    y = torch.as_tensor(labels, dtype=torch.long, device=device)
    return y.expand(n).clone() if y.dim() == 0 else y


def sample(
    model: nn.Module,
    scheduler: NoiseScheduler,
    n: int,
    *,
    generator: torch.Generator | None = None,
    prior: torch.Tensor | None = None,
    labels: Any = None,
    return_intermediate: bool = False,
    deterministic: bool | None = None,
    batch_size: int = 65536,
    eps_fn=None,
):
    """Draw ``n`` samples by ancestral sampling ``x_{T-1} -> ... -> x_0`` (Ho et al. Alg. 2).

    ``prior`` ``(n, d)`` fixes ``x_{T-1}`` (the study's prior file); then, unless
    ``deterministic=False``, no noise is added at later steps either, so the same prior
    always gives the same samples (this is the mean path, not a draw from the model).
    Without a prior, ``x_{T-1}`` and the step noise come from ``generator``.
    ``labels``: ``None`` (unconditional), an int, or ``(n,)`` ints for conditional models.
    ``eps_fn(x, t_vec, y) -> eps`` replaces ``model(x, t_vec, y)`` (guidance uses this).
    Runs under ``torch.inference_mode`` in chunks of ``batch_size``.  Returns ``(n, d)``
    samples, or ``(samples, [x_{T-1}, ..., x_0])`` (CPU tensors) with ``return_intermediate``.
    """
    device = _device_of(model)
    d = model.n_dim
    if prior is not None:
        prior = torch.as_tensor(prior, dtype=torch.float32)
        if prior.shape != (n, d):
            raise ConfigError(f"prior has shape {tuple(prior.shape)} but {n} samples of dim {d} were asked for")
    if deterministic is None:
        deterministic = prior is not None
    y_all = _as_labels(labels, n, device)
    eps_fn = eps_fn or model
    model.eval()
    outs, inter = [], []
    with torch.inference_mode():
        for lo in range(0, n, batch_size):
            m = min(batch_size, n - lo)
            x = prior[lo : lo + m].to(device) if prior is not None else gaussian_noise((m, d), generator, device)
            y = None if y_all is None else y_all[lo : lo + m]
            traj = [x.cpu()] if return_intermediate else None
            for t in range(scheduler.T - 1, -1, -1):
                t_vec = torch.full((m,), t, dtype=torch.long, device=device)
                eps = eps_fn(x, t_vec, y)
                noise = torch.zeros_like(x) if deterministic else None
                x = scheduler.step(eps, t, x, generator=generator, noise=noise)
                if traj is not None:
                    traj.append(x.cpu())
            outs.append(x)
            inter.append(traj)
    samples = torch.cat(outs)
    if not return_intermediate:
        return samples
    steps = [torch.cat([traj[i] for traj in inter]) for i in range(len(inter[0]))]
    return samples, steps



def clipped_x0_eps(model: nn.Module, scheduler: NoiseScheduler) -> Callable[..., torch.Tensor]:
    """An ``eps_fn`` for :func:`sample` that clips the implied clean point to [-1, 1] (diffusers' ``clip_sample``).

    eps is turned into x0 = (x - b eps) / a (a = sqrt(abar_t), b = sqrt(1 - abar_t)), x0 is
    clipped, and the eps consistent with the clipped x0 is returned, so the ordinary DDPM
    step then uses the clipped x0. Schedules whose last betas reach ~1 (cosine) need it:
    without it the first reverse step multiplies the noise-prediction error by 1/sqrt(1 - beta).
    """
    device = _device_of(model)
    a_all = scheduler.sqrt_alphas_cumprod.to(device)
    b_all = scheduler.sqrt_one_minus_alphas_cumprod.to(device)

    def eps_fn(x: torch.Tensor, t: torch.Tensor, y: Any = None) -> torch.Tensor:
        eps = model(x, t, y)
        a, b = a_all[t][:, None], b_all[t][:, None]
        x0 = ((x - b * eps) / a).clamp(-1.0, 1.0)
        return (x - a * x0) / b

    return eps_fn
