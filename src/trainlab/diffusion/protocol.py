"""Train, sample and score unconditional noise models on point sets: the toy-set studies' protocol.

    train, held = split_points(points, heldout=4000, seed=0, device=device)
    specs = [FitSpec(make_scheduler("linear", T), train, held, seed=T) for T in (10, 50, 100)]
    for row, samples, model in fit_and_score_all(specs, Protocol(train_steps=3000)):
        print(row["emd_ratio"], row["nll"])

Every model trains on a seeded training split and is scored against a disjoint held-out
split (:func:`trainlab.diffusion.metrics.sample_quality`). With ``stacked=True`` the models
of one data dimension train and sample as stacks (:mod:`trainlab.diffusion.stacked`), the
stacks side by side on the cores (:func:`trainlab.workers.run_independent`); ``stacked=False``
trains them one at a time, the reference: the same tables up to float rounding. Each model's
generator lives on its data's device, so its draws need no copy to the device at every step;
the CPU's and a GPU's random streams differ, so a GPU run's tables differ from a CPU run's
(as any two seeds do), while each device repeats its own. Every
trained model comes back with its row: ``make_noise_model(**noise_model_architecture(...))``
rebuilds it for its weights.

Given ``slots`` (``slots(job)`` is a :class:`~trainlab.train.snapshots.SnapshotSlot`, such as
a run's ``out.snapshots(every_s).slot``), every training job (a stack ``stack<j>``, or one
model ``model<i>`` when not stacked) snapshots its training under its name and, once sampled
and scored, keeps its rows and samples under ``<job>.scored``: a resumed run takes them back
instead of sampling and scoring again (the trainer's finished snapshot gives the weights).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np
import torch

from trainlab.device import global_seed, torch_generator
from trainlab.diffusion.ddpm import clipped_x0_eps, make_noise_model, sample, train_ddpm
from trainlab.diffusion.metrics import EMDFloor, emd_floor, sample_quality
from trainlab.diffusion.schedules import NoiseScheduler
from trainlab.diffusion.stacked import StackMember, plan_stacks, sample_stack, train_ddpm_stack
from trainlab.train.result import training_flops
from trainlab.train.snapshots import SnapshotSlot, pack, unpack
from trainlab.workers import run_independent


@dataclass
class Protocol:
    """How every model of a study is built, trained, sampled and scored (the same for all).

    A plain dataclass so that a recipe's config can inherit it (as ``CNNConfig`` inherits
    ``train.cnn.CNNTraining``): the config *is* the settings, with no second copy of the fields.
    """

    arch: str = "default"
    """Noise model: default (residual MLP) or study (the study's 2-hidden-layer MLP)."""
    hidden: int = 128
    """Width of the default residual MLP (ignored by arch=study)."""
    train_steps: int = 3000
    """Optimizer steps per model. 1000 (3x fewer FLOPs) loses quality at T=100 whatever the recipe
    (bench/ddpm_quality.py, 3 seeds: circles' EMD ratio 0.97 +- 0.16 -> 1.42, NLL 0.41 -> 0.98 nats; at those
    FLOPs batch 256 x 2000 steps or lr 6e-3 still give 0.80 / 0.89: bench/ddpm_recipe_curves.csv)."""
    batch_size: int = 512
    """Training batch size."""
    lr: float = 3e-3
    """Adam learning rate (cosine-decayed to 0); at 1e-3 the two rings of circles blur into one."""
    warmup_steps: int = 0
    """Steps of linear learning-rate warm-up before the cosine decay (100 with ema_decay=0.995 measured no
    better than without at 1000 steps: mean EMD ratio 1.30 vs 1.28 over five sets x 2 seeds)."""
    ema_decay: float = 0.0
    """Decay of the weights' exponential moving average used for sampling; 0 samples the trained weights
    (with the cosine decay to 0 the last weights already average: see warmup_steps)."""
    n_samples: int = 4000
    """Samples generated per model for the metrics."""
    emd_k: int = 5
    """Disjoint subsample pairs for the EMD mean and std (the study's five splits)."""
    emd_n: int = 800
    """Points per EMD subsample."""
    ratio_n: int = 2000
    """Points per set for the EMD ratio (generated vs held-out over training vs held-out)."""
    clip_x0: bool = True
    """Clip the predicted clean point to [-1, 1] while sampling (needed by cosine; no effect on the study's betas)."""
    seed: int = 0
    """Seeds the EMD ratio's real-vs-real floor of each data split."""


def split_points(X: np.ndarray, heldout: int, seed: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, heldout) float32 device tensors from a seeded permutation of ``X``."""
    perm = np.random.default_rng(seed).permutation(len(X))
    points = torch.from_numpy(np.asarray(X, dtype=np.float32)[perm]).to(device)
    return points[heldout:], points[:heldout]


@dataclass
class FitSpec:
    """One model of a study: its schedule, its data split and its seed."""

    scheduler: NoiseScheduler
    train: torch.Tensor
    """Training points (on the device)."""
    held: torch.Tensor
    """Held-out points for the metrics."""
    seed: int
    """Seeds the initial weights, the training draws, the sampler and the metrics' subsamples."""


class Scored(NamedTuple):
    """One trained and scored model."""

    row: dict[str, Any]
    """Metrics and timings."""
    samples: np.ndarray
    """The generated points, in the data's scale."""
    model: torch.nn.Module
    """The trained noise model (on the data's device)."""


Slots = Callable[[str], SnapshotSlot]
"""``slots(job)``: where training job ``job`` keeps its snapshot (a run's ``RunSnapshots.slot``)."""


def fit_and_score_all(specs: Sequence[FitSpec], protocol: Protocol, stacked: bool = True,
                      slots: Slots | None = None) -> list[Scored]:
    """Train, sample and score every model: a :class:`Scored` per spec, in the order of ``specs``.

    With ``stacked`` the models of one data dimension train and sample as stacks (each
    model equals its solo run up to float rounding) and the stacks, scoring included,
    run side by side on the cores; ``train_time_s`` and ``sample_time_s`` are then each
    model's share of its stack's time. Without it, one model at a time (:func:`fit_and_score`).
    """
    if not stacked:
        floors = Floors(protocol)
        return [fit_and_score(protocol, spec.scheduler, spec.train, spec.held, spec.seed,
                              floor=floors.of(spec.train, spec.held), slots=slots, job=f"model{i}")
                for i, spec in enumerate(specs)]
    models = [new_noise_model(protocol, spec.train.shape[1], spec.scheduler.T, spec.seed, spec.train.device)
              for spec in specs]
    stacks = plan_stacks([spec.train.shape[1] for spec in specs])
    params = [sum(p.numel() for p in model.parameters()) for model in models]
    # FLOPs: training, then 2 per parameter per sampled point and denoising step (forward only)
    cost = [training_flops(params[i], protocol.batch_size * protocol.train_steps)
            + 2.0 * params[i] * protocol.n_samples * spec.scheduler.T for i, spec in enumerate(specs)]

    floors = Floors(protocol)

    def one_stack(j: int, alone: bool) -> list[Scored]:
        stack = stacks[j]
        return _fit_and_score_stack(protocol, [specs[i] for i in stack], [models[i] for i in stack], progress=alone,
                                    slots=slots, job=f"stack{j}", floors=floors)

    per_stack = run_independent(one_stack, range(len(stacks)), costs=[sum(cost[i] for i in stack) for stack in stacks],
                                step_flops=max(training_flops(sum(params[i] for i in stack), protocol.batch_size)
                                               for stack in stacks),
                                device=specs[0].train.device, tell_alone=True)
    out: list[Any] = [None] * len(specs)
    for stack, results in zip(stacks, per_stack):
        for i, result in zip(stack, results):
            out[i] = result
    return out


def noise_model_architecture(protocol: Protocol, n_dim: int, T: int) -> dict[str, Any]:
    """The arguments of :func:`~trainlab.diffusion.ddpm.make_noise_model` for a model of ``protocol``
    (a checkpoint's description): ``make_noise_model(**architecture)`` builds it."""
    return {"arch": protocol.arch, "n_dim": n_dim, "T": T,
            **({"hidden": protocol.hidden} if protocol.arch == "default" else {})}


def new_noise_model(protocol: Protocol, n_dim: int, T: int, seed: int, device: torch.device) -> torch.nn.Module:
    """The noise model a fit starts from (module initialisers draw from the global generator, seeded here)."""
    with global_seed(seed):
        return make_noise_model(**noise_model_architecture(protocol, n_dim, T)).to(device)


def fit_and_score(protocol: Protocol, scheduler: NoiseScheduler, train: torch.Tensor, held: torch.Tensor,
                  seed: int, floor: EMDFloor | None = None, slots: Slots | None = None,
                  job: str = "model") -> Scored:
    """Train one noise model on ``train``, sample ``protocol.n_samples`` points, score them.

    ``floor`` is the split's EMD floor when other models share it (see :class:`Floors`).
    With ``slots`` the model snapshots as job ``job`` (see the module docstring).
    """
    model = new_noise_model(protocol, train.shape[1], scheduler.T, seed, train.device)
    gen = torch_generator(seed, train.device)  # draws on the device: no copy per step (module doc)
    result = train_ddpm(model, scheduler, train, steps=protocol.train_steps, batch_size=protocol.batch_size,
                        lr=protocol.lr, warmup_steps=protocol.warmup_steps, ema_decay=protocol.ema_decay,
                        generator=gen, snapshot=slots(job) if slots is not None else None)

    def sample_and_score() -> list[tuple[dict[str, Any], np.ndarray]]:
        start = time.perf_counter()
        eps_fn = clipped_x0_eps(model, scheduler) if protocol.clip_x0 else None
        samples = sample(model, scheduler, protocol.n_samples, generator=gen, eps_fn=eps_fn).cpu().numpy()
        split_floor = floor if floor is not None else Floors(protocol).of(train, held)
        return [(_score(protocol, result, samples, train, held, seed, time.perf_counter() - start, split_floor),
                 samples)]

    (row, samples), = _scored_once(slots, job, sample_and_score)
    return Scored(row, samples, model)


class Floors:
    """The EMD ratio's real-vs-real floor of each data split, drawn when its first model is scored.

    The floor depends on the split only (seeded by ``protocol.seed``), so every model of a
    data set is divided by the same number, and the exact EMD behind it is solved once
    per split rather than once per model (its three exact 2000-point EMDs took 1.3 s of CPU time
    against 2.0 s for all of one model's scoring, ``bench/ddpm_scoring.py``). One instance serves
    every stack of a study: stacks score in worker threads, and a split's models are spread over
    several stacks (ddpm-schedules' 19 per data set over three), so the
    first to need a split's floor draws it while any other needing that split waits for it.
    """

    def __init__(self, protocol: Protocol):
        self.protocol = protocol
        self.known: dict[int, EMDFloor] = {}
        self._locks: dict[int, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def of(self, train: torch.Tensor, held: torch.Tensor) -> EMDFloor:
        key = id(held)  # the models of one data set share its held-out tensor
        with self._locks_lock:
            split_lock = self._locks.setdefault(key, threading.Lock())
        with split_lock:
            if key not in self.known:
                self.known[key] = emd_floor(held.cpu(), train.cpu(), n=self.protocol.ratio_n, seed=self.protocol.seed)
        return self.known[key]


def _fit_and_score_stack(protocol: Protocol, specs: Sequence[FitSpec], models: Sequence[torch.nn.Module],
                         progress: bool, slots: Slots | None, job: str, floors: Floors) -> list[Scored]:
    """:func:`fit_and_score` for the models of one stack (one data dimension); ``floors`` is shared by all stacks."""
    members = [StackMember(model, spec.scheduler, spec.train, torch_generator(spec.seed, spec.train.device))
               for model, spec in zip(models, specs)]
    results = train_ddpm_stack(members, steps=protocol.train_steps, batch_size=protocol.batch_size, lr=protocol.lr,
                               warmup_steps=protocol.warmup_steps, ema_decay=protocol.ema_decay, progress=progress,
                               snapshot=slots(job) if slots is not None else None)

    def sample_and_score() -> list[tuple[dict[str, Any], np.ndarray]]:
        start = time.perf_counter()
        samples = sample_stack(models, [spec.scheduler for spec in specs], protocol.n_samples,
                               generators=[m.generator for m in members], clip_x0=protocol.clip_x0)
        sample_s = (time.perf_counter() - start) / len(specs)
        out = []
        for spec, result, points in zip(specs, results, samples):
            points = points.cpu().numpy()
            floor = floors.of(spec.train, spec.held)
            out.append((_score(protocol, result, points, spec.train, spec.held, spec.seed, sample_s, floor), points))
        return out

    return [Scored(row, points, model) for (row, points), model in zip(_scored_once(slots, job, sample_and_score),
                                                                         models)]


def _scored_once(slots: Slots | None, job: str,
                 sample_and_score: Callable[[], list[tuple[dict[str, Any], np.ndarray]]]) -> list[tuple[dict, np.ndarray]]:
    """The (row, samples) of each model of ``job``: kept in slot ``<job>.scored`` once computed, so that
    a resumed run does not sample and score its finished models again."""
    slot = slots(f"{job}.scored") if slots is not None else None
    saved = slot.load() if slot is not None else None
    if saved is not None:
        state = unpack(saved)
        return list(zip(state["rows"], state["samples"]))
    scored = sample_and_score()
    if slot is not None:
        slot.save(pack(finished=True, rows=[row for row, _ in scored], samples=[points for _, points in scored]))
    return scored


def _score(protocol: Protocol, result: Any, samples: np.ndarray, train: torch.Tensor, held: torch.Tensor,
           seed: int, sample_s: float, floor: EMDFloor) -> dict[str, Any]:
    scores = sample_quality(samples, held.cpu(), train.cpu(), emd_k=protocol.emd_k, emd_n=protocol.emd_n,
                            ratio_n=protocol.ratio_n, seed=seed, floor=floor)
    status = result.status if np.isfinite(samples).all() else "diverged"
    return {**scores, "train_time_s": result.seconds, "sample_time_s": sample_s,
            "final_loss": result.final_loss(100), "status": status}
