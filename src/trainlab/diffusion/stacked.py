"""Many DDPM noise models of one architecture trained and sampled as one stacked model.

The toy-set studies train dozens of small noise models that differ only in what
they are trained on and with (number of steps T, noise schedule, seed, data set of
the same dimension). Each alone is too small to keep a core busy, so here their
weights are stacked along a new first axis (``torch.func.stack_module_state``) and
one ``vmap`` of the model's own ``forward`` (``torch.func.functional_call``) runs all
of them as batched matrix products. Every model keeps its own everything:

- its own data (``StackMember.X``; sets may differ in size) and its own generator,
  from which it draws exactly what :func:`trainlab.diffusion.ddpm.train_ddpm` would
  draw alone, in the same order (permutation, timesteps, noise, label dropout), so
  each model sees the same batches and the same noise as its solo run;
- its own schedule: per-model tables of ``sqrt(abar_t)`` and ``sqrt(1 - abar_t)``,
  padded to the largest T (a model never indexes past its own T);
- its own loss: the stack minimises the sum of the per-model losses, whose gradient
  with respect to model k's weights is model k's own gradient; Adam (and the cosine
  learning-rate decay) is elementwise, so model k's update is its solo update.

The tests train every model alone with ``train_ddpm`` and compare weights step by
step (float tolerance: the batched products add in a different order). Sampling
(:func:`sample_stack`) is Ho et al.'s ancestral sampler for every model at once;
models with a shorter chain join when the countdown reaches their own ``T - 1``.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap
from tqdm.auto import tqdm

from trainlab.device import threads_for_step, use_threads
from trainlab.diffusion.ddpm import gaussian_noise
from trainlab.diffusion.schedules import NoiseScheduler
from trainlab.errors import ConfigError
from trainlab.train.adam import make_adam
from trainlab.train.result import StackResult, training_flops
from trainlab.train.snapshots import SnapshotSlot, pack, restore_rng, rng_states, unpack
from trainlab.train.warmup_ema import WeightEMA, warmup_cosine


@dataclass
class StackMember:
    """One model of a stack and what it is trained on."""

    model: nn.Module
    """An initialised noise model (built as the solo path builds it); trained in place."""
    scheduler: NoiseScheduler
    """Its noise schedule (T may differ between members)."""
    X: torch.Tensor
    """Its training points, ``(N, d)``; d is the same for every member, N may differ."""
    generator: torch.Generator | None = None
    """Its own source of randomness, used exactly as ``train_ddpm`` would use it."""
    labels: torch.Tensor | None = None
    """``(N,)`` integer class labels for conditional models (every member or none)."""


def _check_same_architecture(models: Sequence[nn.Module]) -> None:
    first = models[0]
    shapes = [(name, tuple(p.shape)) for name, p in first.named_parameters()]
    for model in models[1:]:
        if type(model) is not type(first) or [(n, tuple(p.shape)) for n, p in model.named_parameters()] != shapes:
            raise ConfigError("stacked models must share one architecture (same class and parameter shapes); "
                              "stack models of the same arch, width, data dimension and number of classes")
    devices = {p.device for m in models for p in m.parameters()}
    if len(devices) != 1:
        raise ConfigError(f"stacked models must live on one device (found {sorted(map(str, devices))})")


def _stacked_forward(models: Sequence[nn.Module]):
    """(params, buffers, fn) with ``fn(params, buffers, x, t, y)`` running model k on row k of every input."""
    params, buffers = stack_module_state(list(models))
    base = copy.deepcopy(models[0]).to("meta")  # the structure only; weights come from ``params``

    def one(p: dict, b: dict, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return functional_call(base, (p, b), (x, t, y))

    return params, buffers, one


def _padded(values: Sequence[torch.Tensor], device: torch.device) -> torch.Tensor:
    """Rows of different lengths as one zero-padded ``(M, max_len, ...)`` tensor."""
    longest = max(v.shape[0] for v in values)
    out = torch.zeros((len(values), longest, *values[0].shape[1:]), dtype=values[0].dtype, device=device)
    for k, v in enumerate(values):
        out[k, : v.shape[0]] = v.to(device)
    return out


def _write_back(model: nn.Module, params: dict[str, torch.Tensor], k: int) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(params[name][k])


def train_ddpm_stack(
    members: Sequence[StackMember],
    *,
    steps: int,
    batch_size: int = 512,
    lr: float = 1e-3,
    label_dropout: float = 0.1,
    weight_decay: float = 0.0,
    lr_decay: bool = True,
    warmup_steps: int = 0,
    ema_decay: float = 0.0,
    check_every: int = 100,
    progress: bool = True,
    snapshot: SnapshotSlot | None = None,
) -> list[StackResult]:
    """Train every member's model as :func:`~trainlab.diffusion.ddpm.train_ddpm` would alone.

    The optimisation settings are shared by the stack; everything else is per member
    (see the module docstring). A member whose loss turns NaN/Inf stops at the same
    check as it would alone (its weights are those of that moment; it draws nothing
    more from its generator), and the others go on. Trained weights are written into
    each ``member.model``. Returns one :class:`StackResult` per member, in order, with the
    ``{"step", "train_loss"}`` records ``train_ddpm`` keeps.
    Threads follow :func:`trainlab.device.cpu_plan` for the whole stack's step.

    With a ``snapshot`` slot the stack is one job: it continues from the slot's last boundary
    (the NaN checks, every ``check_every`` steps) or, finished, returns its results at once
    with every member's weights and generator as training left them. One slot for the whole
    stack, not one per member: the members share one optimizer and step together, so no
    member can stop or continue without the others. A snapshot holds the stacked weights,
    Adam, the learning-rate schedule, the EMA, every member's generator, permutation and position, which members
    stopped (and their weights at that check), and the losses so far; a finished one holds
    only what the results need: the members' weights, generators and losses.
    """
    if not members:
        raise ConfigError("a stack needs at least one model")
    if steps < 1 or batch_size < 1:
        raise ConfigError(f"steps and batch_size must be >= 1 (got {steps}, {batch_size})")
    models = [m.model for m in members]
    _check_same_architecture(models)
    device = next(models[0].parameters()).device
    n_classes = getattr(models[0], "n_classes", 0)
    conditional = members[0].labels is not None
    if any((m.labels is not None) != conditional for m in members):
        raise ConfigError("give labels for every member of a stack or for none")
    if conditional and n_classes < 1:
        raise ConfigError("labels given but the model is unconditional; build it with n_classes > 0")
    sizes = [m.X.shape[0] for m in members]
    if len({min(batch_size, n) for n in sizes}) != 1:
        raise ConfigError(f"members with fewer points than batch_size={batch_size} cannot share a stack "
                          f"(training set sizes {sizes})")
    b = min(batch_size, sizes[0])
    M, d = len(members), members[0].X.shape[1]
    rows = torch.arange(M, device=device)[:, None]

    X = _padded([m.X for m in members], device)
    Y = _padded([m.labels.long() for m in members], device) if conditional else None
    sqrt_ab = _padded([m.scheduler.sqrt_alphas_cumprod for m in members], device)
    sqrt_1mab = _padded([m.scheduler.sqrt_one_minus_alphas_cumprod for m in members], device)
    params, buffers, one = _stacked_forward(models)
    forward = vmap(one, in_dims=(0, 0, 0, 0, 0 if conditional else None))
    opt = make_adam(params.values(), lr=lr, weight_decay=weight_decay)
    sched = warmup_cosine(opt, steps, warmup_steps, lr_decay) if lr_decay or warmup_steps > 0 else None
    ema = WeightEMA(params, ema_decay) if ema_decay > 0 else None
    final = ema.shadow if ema is not None else params  # the weights each member ends with

    idx = torch.zeros(M, b, dtype=torch.long, device=device)
    t = torch.zeros(M, b, dtype=torch.long, device=device)
    noise = torch.zeros(M, b, d, device=device)
    drop = torch.zeros(M, b, dtype=torch.bool, device=device)
    perms: list[torch.Tensor | None] = [None] * M
    pos = list(sizes)  # start with a new pass, as train_ddpm does
    alive = [True] * M
    done = [steps] * M
    losses = torch.empty(steps, M, device=device)
    generators = tuple(m.generator for m in members if m.generator is not None)
    first, seconds_before = 0, 0.0
    saved = snapshot.load() if snapshot is not None else None
    if saved is not None:
        state = unpack(saved)
        restore_rng(state["rng"], *generators)
        first, seconds_before, alive, done = len(state["losses"]), state["seconds"], state["alive"], state["done"]
        losses[:first] = state["losses"].to(device)
        if saved.finished:
            for model, weights in zip(models, state["models"]):
                model.load_state_dict(weights)
            return _stack_results(models, alive, done, losses[:first], seconds_before)
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(state["params"][name])
        opt.load_state_dict(state["optimizer"])
        if sched is not None:
            sched.load_state_dict(state["lr_schedule"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        for k, weights in state["stopped"].items():
            models[int(k)].load_state_dict(weights)
        perms = [p.to(device) if p is not None else None for p in state["perms"]]
        pos = state["pos"]
    alive_mask = torch.tensor(alive, dtype=torch.bool, device=device)

    def save(finished: bool, kept: torch.Tensor, seconds: float) -> None:
        common = {"rng": rng_states(*generators), "losses": kept, "seconds": seconds, "alive": alive, "done": done}
        if finished:
            snapshot.save(pack(finished=True, models=[model.state_dict() for model in models], **common))
        else:
            snapshot.save(pack(params=params, optimizer=opt.state_dict(), perms=perms, pos=pos,
                               lr_schedule=sched.state_dict() if sched is not None else None,
                               ema=ema.state_dict() if ema is not None else None,
                               stopped={str(k): models[k].state_dict() for k in range(M) if not alive[k]}, **common))

    params_count = sum(p.numel() for model in models for p in model.parameters())
    with use_threads(threads_for_step(training_flops(params_count, b), device), device):
        for model in models:
            model.train()
        start = time.perf_counter()
        for step in tqdm(range(first, steps), desc=f"ddpm x{M}", disable=None if progress else True, leave=False):
            # every member's draws, in train_ddpm's order, from its own generator
            for k, member in enumerate(members):
                if not alive[k]:
                    continue
                gen = member.generator
                gen_dev = gen.device if gen is not None else device
                if pos[k] + b > sizes[k]:
                    perms[k], pos[k] = torch.randperm(sizes[k], generator=gen, device=gen_dev).to(device), 0
                idx[k] = perms[k][pos[k] : pos[k] + b]
                pos[k] += b
                t[k] = torch.randint(0, member.scheduler.T, (b,), generator=gen, device=gen_dev)
                noise[k] = torch.randn((b, d), generator=gen, device=gen_dev)
                if conditional:
                    drop[k] = torch.rand(b, generator=gen, device=gen_dev) < label_dropout
            x0 = X[rows, idx]
            xt = sqrt_ab[rows, t].unsqueeze(-1) * x0 + sqrt_1mab[rows, t].unsqueeze(-1) * noise
            y = torch.where(drop, n_classes, Y[rows, idx]) if conditional else None
            pred = forward(params, buffers, xt, t, y)
            loss = vmap(F.mse_loss)(pred, noise)
            opt.zero_grad(set_to_none=True)
            # a stopped member's loss (and so its gradient) is 0: its NaNs stay in its own slices
            torch.where(alive_mask, loss, torch.zeros_like(loss)).sum().backward()
            opt.step()
            if sched is not None:
                sched.step()
            if ema is not None:
                ema.update(params)
            losses[step] = loss.detach()
            if (step + 1) % check_every == 0 or step + 1 == steps:
                bad = ~torch.isfinite(losses[: step + 1])
                for k in (bad.any(0) & alive_mask).nonzero().flatten().tolist():  # one sync per check
                    done[k] = int(bad[:, k].nonzero()[0, 0])
                    alive[k] = False
                    alive_mask[k] = False
                    _write_back(models[k], final, k)  # its weights at the check that stopped it
                if not any(alive):
                    break
                if snapshot is not None and step + 1 < steps and snapshot.due():
                    save(False, losses[: step + 1], seconds_before + time.perf_counter() - start)
    kept = losses[: max(done)].cpu()
    seconds = seconds_before + time.perf_counter() - start  # after the copy to the CPU waited for the device
    for k, model in enumerate(models):
        if alive[k]:
            _write_back(model, final, k)
    if snapshot is not None:
        save(True, kept, seconds)
    return _stack_results(models, alive, done, kept, seconds)


def _stack_results(models: Sequence[nn.Module], alive: list[bool], done: list[int], losses: torch.Tensor,
                   seconds: float) -> list[StackResult]:
    """Each member's :class:`StackResult` from its column of ``losses`` (steps x members) up to ``done``."""
    M = len(models)
    history = losses.cpu()
    for model in models:
        model.eval()
    return [StackResult(status="done" if alive[k] else "diverged", seconds=seconds / M,
                        history=[{"step": i, "train_loss": v} for i, v in enumerate(history[: done[k], k].tolist(), 1)],
                        stack_seconds=seconds, stack_size=M)
            for k in range(M)]


@torch.inference_mode()
def sample_stack(
    models: Sequence[nn.Module],
    schedulers: Sequence[NoiseScheduler],
    n: int,
    *,
    generators: Sequence[torch.Generator | None],
    clip_x0: bool = False,
    batch_size: int = 65536,
) -> list[torch.Tensor]:
    """``n`` samples of every model, as :func:`~trainlab.diffusion.ddpm.sample` draws them alone.

    Each model draws its start point and step noise from its own generator in the solo
    order. ``clip_x0`` clips the predicted clean point ``(x - sqrt(1-abar) eps) / sqrt(abar)``
    to [-1, 1] and steps with the noise consistent with it (what
    ``trainlab.diffusion.protocol.clipped_x0`` does for one model). Returns one
    ``(n, d)`` tensor per model, in order. Unconditional models only.
    """
    if not (len(models) == len(schedulers) == len(generators)) or not models:
        raise ConfigError("sample_stack needs one scheduler and one generator per model")
    _check_same_architecture(models)
    device = next(models[0].parameters()).device
    d = models[0].n_dim
    # longest chain first, so the models still sampling at step t are always a prefix of the stack
    order = sorted(range(len(models)), key=lambda k: -schedulers[k].T)
    scheds = [schedulers[k] for k in order]
    gens = [generators[k] for k in order]
    params, buffers, one = _stacked_forward([models[k] for k in order])
    forward = vmap(one, in_dims=(0, 0, 0, 0, None))
    Ts = [s.T for s in scheds]

    def table(values) -> torch.Tensor:  # (M, T_max, 1, 1) per-model coefficients, zero-padded
        return _padded([torch.as_tensor(v, dtype=torch.float32) for v in values], device)[..., None, None]

    c_x = table([s._c_x for s in scheds])
    c_eps = table([s._c_eps for s in scheds])
    sigma = table([s._sigma for s in scheds])
    a = table([s.sqrt_alphas_cumprod for s in scheds])
    b = table([s.sqrt_one_minus_alphas_cumprod for s in scheds])

    chunks: list[list[torch.Tensor]] = [[] for _ in order]
    for lo in range(0, n, batch_size):
        m = min(batch_size, n - lo)
        x = torch.zeros(len(order), m, d, device=device)
        for t in range(Ts[0] - 1, -1, -1):
            k = sum(T > t for T in Ts)  # models still sampling
            for j in range(k):
                if Ts[j] - 1 == t:  # this model's chain starts here: x_{T-1} ~ N(0, I)
                    x[j] = gaussian_noise((m, d), gens[j], device)
            xs = x[:k]
            t_vec = torch.full((k, m), t, dtype=torch.long, device=device)
            eps = forward({n_: p[:k] for n_, p in params.items()}, {n_: v[:k] for n_, v in buffers.items()},
                          xs, t_vec, None)
            if clip_x0:
                x0 = ((xs - b[:k, t] * eps) / a[:k, t]).clamp(-1.0, 1.0)
                eps = (xs - a[:k, t] * x0) / b[:k, t]
            mean = c_x[:k, t] * xs - c_eps[:k, t] * eps
            if t > 0:
                z = torch.stack([gaussian_noise((m, d), gens[j], device) for j in range(k)])
                mean = mean + sigma[:k, t] * z
            x[:k] = mean
        for j in range(len(order)):
            chunks[j].append(x[j].clone())
    out: list[torch.Tensor | None] = [None] * len(order)
    for j, k in enumerate(order):
        out[k] = torch.cat(chunks[j])
    return out  # type: ignore[return-value]




MAX_STACK = 8
"""Models per stack: past ~8 small noise models the stacked activations outgrow a core's
L2 cache and a bigger stack is no faster per model; smaller stacks also spread over cores."""


def plan_stacks(keys: Sequence[Any], max_size: int = MAX_STACK) -> list[list[int]]:
    """Indices of jobs grouped into stacks: equal ``keys`` (for example the data dimension and
    number of classes, which fix the architecture) share a stack, split into near-equal
    stacks of at most ``max_size``. Depends on the jobs only, never on the machine, so
    a run's stacks (and with them its float rounding) are the same everywhere."""
    groups: dict[Any, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    stacks = []
    for members in groups.values():
        parts = -(-len(members) // max_size)  # ceil
        size, extra = divmod(len(members), parts)
        start = 0
        for p in range(parts):
            stop = start + size + (p < extra)
            stacks.append(members[start:stop])
            start = stop
    return stacks
