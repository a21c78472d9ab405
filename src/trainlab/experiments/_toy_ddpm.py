"""Plumbing the four toy-set DDPM recipes share: their configs, data, protocol and report prose.

``ddpm-steps`` and ``ddpm-schedules`` train unconditional models on a seeded training split
and score them against a disjoint held-out split (:func:`fit_and_score`); ``ddpm-cfg`` and
``ddpm-classifier`` train one class-conditional model per data set
(:func:`fit_conditional_model`) and compare it with an ordinary classifier
(:func:`reference_classifier`). Every recipe accepts the user's own points (``data_file=``)
in place of the toy sets.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional, Sequence

import numpy as np
import torch

from trainlab.config import BaseConfig, check, one_of, positive
from trainlab.data.toy import TOY_DATASETS, labelled_sets, load_array, make_toy
from trainlab.device import cpu_plan, global_seed, torch_generator
from trainlab.diffusion.ddpm import ARCHS, clipped_x0_eps, make_noise_model, sample, train_ddpm
from trainlab.diffusion.guidance import fit_conditional, make_conditional_model
from trainlab.diffusion.metrics import EMDFloor, emd_floor, sample_quality
from trainlab.diffusion.schedules import SCHEDULES, NoiseScheduler, make_scheduler
from trainlab.diffusion.stacked import StackMember, plan_stacks, sample_stack, train_ddpm_stack
from trainlab.train.loop import check_lr
from trainlab.workers import run_planned

STUDY_NOTE = """**About the two NLLs.** `nll` is the main number: a Gaussian kernel density
(normalised, so it integrates to 1) is fitted to the generated samples, its bandwidth is
chosen on one half of the held-out real points and `-mean log p(x)` is reported on the
other half, in nats per point; it rises when samples stray *and* when modes are missing.
`nll_study` reproduces the course's `utils.get_nll(data, samples, temperature=0.1)` exactly
so that values can be compared with the Diffusion study's Figures 1-5. It is not a negative
log-likelihood: its kernel has variance 2·0.1 but the normalising constant of variance 0.1
(each kernel integrates to 2^(d/2)), it takes `-log` of the *mean* of the likelihoods, and it
is the density of the real data at the generated points, so a model that collapses onto a
dense mode scores well. Its scale depends on the dimension and the temperature; compare it
only within one dataset."""


@dataclass
class ToySetsConfig(BaseConfig):
    """Which points the models learn: toy sets by name, or the user's own file."""

    datasets: List[str] = field(default_factory=lambda: list(TOY_DATASETS))
    """Toy sets to study: any of moons, circles, manycircles, blobs, helix."""
    data_file: Optional[str] = None
    """A .npy (N, ...) array of the user's own points, used instead of the toy sets (scaled to [-1, 1])."""
    helix_file: Optional[str] = None
    """Raw helix points (.npy, N x 3), e.g. the study's helix.npy; None generates a matching helix."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(bool(self.datasets) or bool(self.data_file), "datasets is empty; e.g. datasets=[moons]")
        for name in self.datasets:
            one_of("datasets", name, TOY_DATASETS)


@dataclass
class ToyProtocolConfig(ToySetsConfig):
    """Data split, noise model, training and scoring settings of the unconditional toy-set studies."""

    arch: str = "default"
    """Noise model: default (residual MLP) or study (the study's 2-hidden-layer MLP)."""
    hidden: int = 128
    """Width of the default residual MLP (ignored by arch=study)."""
    train_steps: int = 3000
    """Optimizer steps per model."""
    batch_size: int = 512
    """Training batch size."""
    lr: float = 3e-3
    """Adam learning rate (cosine-decayed to 0); at 1e-3 the two rings of circles blur into one."""
    n_points: int = 10000
    """Points drawn from each toy set (training split + held-out split); a data_file uses all its points."""
    heldout: int = 4000
    """Points held out of training for the metrics."""
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
    stacked: bool = True
    """Train and sample the models as stacks, one single-threaded worker per core; false trains them one at
    a time (the reference: the same tables up to float rounding, several times slower)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        one_of("arch", self.arch, ARCHS)
        for name in ("hidden", "train_steps", "batch_size", "emd_k", "emd_n", "ratio_n"):
            positive(name, getattr(self, name))
        check_lr("adam", self.lr)
        check(0 < self.heldout < self.n_points, "heldout must be between 0 and n_points")
        check(self.emd_k * self.emd_n <= min(self.heldout, self.n_samples),
              "emd_k * emd_n must be <= heldout and n_samples; lower emd_n")
        check(self.ratio_n <= min(self.heldout, self.n_points - self.heldout, self.n_samples),
              "ratio_n must be <= heldout, the training split and n_samples; lower ratio_n")


def point_sets(cfg: ToyProtocolConfig) -> list[tuple[str, np.ndarray]]:
    """``[(name, points), ...]``: the user's ``data_file`` (named after the file) or each toy set."""
    if cfg.data_file:
        X, _ = load_array(cfg.data_file)
        need = cfg.heldout + cfg.ratio_n
        check(len(X) >= need, f"data_file has {len(X)} points; heldout + ratio_n needs {need}: lower them")
        return [(Path(cfg.data_file).stem, X)]
    return [(name, make_toy(name, n=cfg.n_points, helix_file=cfg.helix_file if name == "helix" else None)[0])
            for name in cfg.datasets]


def split_points(X: np.ndarray, heldout: int, seed: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, heldout) float32 device tensors from a seeded permutation of ``X``."""
    perm = np.random.default_rng(seed).permutation(len(X))
    points = torch.from_numpy(np.asarray(X, dtype=np.float32)[perm]).to(device)
    return points[heldout:], points[:heldout]


@dataclass
class ToyJob:
    """One model of a toy-study grid: its schedule, its data split and its seed."""

    scheduler: NoiseScheduler
    train: torch.Tensor
    """Training points (on the device)."""
    held: torch.Tensor
    """Held-out points for the metrics."""
    seed: int
    """Seeds the initial weights, the training draws, the sampler and the metrics' subsamples."""


def fit_and_score_all(cfg: ToyProtocolConfig, jobs: Sequence[ToyJob]) -> list[tuple[dict[str, Any], np.ndarray]]:
    """Train, sample and score every job: ``(row of metrics and timings, samples)`` in the order of ``jobs``.

    With ``cfg.stacked`` the jobs of one data dimension train and sample as stacks
    (:mod:`trainlab.diffusion.stacked`: each model equals its solo run up to float
    rounding) and the stacks, scoring included, run on the cores ``device.cpu_plan``
    gives them; ``train_time_s`` and ``sample_time_s`` are then each model's share of
    its stack's time. Without it, one model at a time (:func:`fit_and_score`).
    """
    if not cfg.stacked:
        floors = Floors(cfg)
        return [fit_and_score(cfg, job.scheduler, job.train, job.held, job.seed, floor=floors.of(job.train, job.held))
                for job in jobs]
    models = [new_model(cfg, job.train.shape[1], job.scheduler.T, job.seed, job.train.device) for job in jobs]
    stacks = plan_stacks([job.train.shape[1] for job in jobs])
    params = [sum(p.numel() for p in model.parameters()) for model in models]
    # FLOPs: 6 per parameter and training point, 2 per parameter and sampled point and step
    cost = [params[i] * (6.0 * cfg.batch_size * cfg.train_steps + 2.0 * cfg.n_samples * job.scheduler.T)
            for i, job in enumerate(jobs)]
    order = sorted(stacks, key=lambda stack: -sum(cost[i] for i in stack))
    step = max(6.0 * cfg.batch_size * sum(params[i] for i in stack) for stack in stacks)
    plan = cpu_plan(jobs[0].train.device, step, tasks=len(stacks), total_flops=sum(cost))

    def one_stack(stack: list[int]) -> list[tuple[dict[str, Any], np.ndarray]]:
        return _fit_and_score_stack(cfg, [jobs[i] for i in stack], [models[i] for i in stack],
                                    progress=plan.workers == 1)

    out: list[Any] = [None] * len(jobs)
    for stack, results in zip(order, run_planned(one_stack, order, plan)):
        for i, result in zip(stack, results):
            out[i] = result
    return out


def new_model(cfg: ToyProtocolConfig, n_dim: int, T: int, seed: int, device: torch.device) -> torch.nn.Module:
    """The noise model a job starts from (module initialisers draw from the global generator, seeded here)."""
    kwargs = {"hidden": cfg.hidden} if cfg.arch == "default" else {}
    with global_seed(seed):
        return make_noise_model(cfg.arch, n_dim, T, **kwargs).to(device)


def fit_and_score(cfg: ToyProtocolConfig, scheduler: NoiseScheduler, train: torch.Tensor, held: torch.Tensor,
                  seed: int, floor: EMDFloor | None = None) -> tuple[dict[str, Any], np.ndarray]:
    """Train one noise model on ``train``, sample ``cfg.n_samples`` points, score them.

    ``floor`` is the split's EMD floor when other models share it (see :class:`Floors`).
    Returns (row of metrics and timings, samples as a NumPy array in the data's scale).
    """
    model = new_model(cfg, train.shape[1], scheduler.T, seed, train.device)
    gen = torch_generator(seed)
    result = train_ddpm(model, scheduler, train, steps=cfg.train_steps, batch_size=cfg.batch_size,
                        lr=cfg.lr, generator=gen)
    start = time.perf_counter()
    eps_fn = clipped_x0_eps(model, scheduler) if cfg.clip_x0 else None
    samples = sample(model, scheduler, cfg.n_samples, generator=gen, eps_fn=eps_fn).cpu().numpy()
    floor = floor if floor is not None else Floors(cfg).of(train, held)
    return _score(cfg, result, samples, train, held, seed, time.perf_counter() - start, floor), samples


class Floors:
    """The EMD ratio's real-vs-real floor of each data split, drawn when its first model is scored.

    The floor depends on the split only (seeded by the run's seed), so every model of a
    data set is divided by the same number, and the exact EMD behind it is solved once
    per split rather than once per model (on moons it was 1.6 s of each model's 5.9 s of scoring).
    """

    def __init__(self, cfg: ToyProtocolConfig):
        self.cfg = cfg
        self.known: dict[int, EMDFloor] = {}

    def of(self, train: torch.Tensor, held: torch.Tensor) -> EMDFloor:
        key = id(held)  # the jobs of one data set share its held-out tensor
        if key not in self.known:
            self.known[key] = emd_floor(held.cpu(), train.cpu(), n=self.cfg.ratio_n, seed=self.cfg.seed)
        return self.known[key]


def _fit_and_score_stack(cfg: ToyProtocolConfig, jobs: Sequence[ToyJob], models: Sequence[torch.nn.Module],
                         progress: bool) -> list[tuple[dict[str, Any], np.ndarray]]:
    """:func:`fit_and_score` for the jobs of one stack (one data dimension)."""
    members = [StackMember(model, job.scheduler, job.train, torch_generator(job.seed))
               for model, job in zip(models, jobs)]
    results = train_ddpm_stack(members, steps=cfg.train_steps, batch_size=cfg.batch_size, lr=cfg.lr,
                               progress=progress)
    start = time.perf_counter()
    samples = sample_stack(models, [job.scheduler for job in jobs], cfg.n_samples,
                           generators=[m.generator for m in members], clip_x0=cfg.clip_x0)
    sample_s = (time.perf_counter() - start) / len(jobs)
    out, floors = [], Floors(cfg)
    for job, result, points in zip(jobs, results, samples):
        points = points.cpu().numpy()
        floor = floors.of(job.train, job.held)
        out.append((_score(cfg, result, points, job.train, job.held, job.seed, sample_s, floor), points))
    return out


def _score(cfg: ToyProtocolConfig, result: Any, samples: np.ndarray, train: torch.Tensor, held: torch.Tensor,
           seed: int, sample_s: float, floor: EMDFloor) -> dict[str, Any]:
    scores = sample_quality(samples, held.cpu(), train.cpu(), emd_k=cfg.emd_k, emd_n=cfg.emd_n,
                            ratio_n=cfg.ratio_n, seed=seed, floor=floor)
    status = result.status if np.isfinite(samples).all() else "diverged"
    return {**scores, "train_time_s": result.seconds, "sample_time_s": sample_s,
            "final_loss": result.final_loss(100), "status": status}


@dataclass
class ConditionalDDPMConfig(ToySetsConfig):
    """Data, noise model, schedule and training of a class-conditional DDPM (ddpm-cfg, ddpm-classifier)."""

    labels_file: Optional[str] = None
    """A .npy (N,) array of integer labels for data_file."""
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
    """Optimizer steps (batches) of the conditional model."""
    batch_size: int = 512
    """Training batch size."""
    lr: float = 1e-3
    """Adam learning rate (cosine-decayed to 0)."""
    label_dropout: float = 0.1
    """Probability of training a row with the unconditional label."""
    mlp_max_iter: int = 300
    """Iterations of the scikit-learn MLP trained on the real points (the independent classifier)."""
    stacked: bool = True
    """Train the models of data sets with the same dimension and number of classes as stacks, on every
    core; false trains them one at a time (the reference: the same tables up to float rounding)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        one_of("arch", self.arch, ARCHS)
        one_of("schedule", self.schedule, SCHEDULES)
        for name in ("hidden", "depth", "T", "train_steps", "batch_size", "mlp_max_iter"):
            positive(name, getattr(self, name))
        check_lr("adam", self.lr)
        check(0 < self.beta_low <= self.beta_high < 1, "need 0 < beta_low <= beta_high < 1")
        check(0 <= self.label_dropout < 1, "label_dropout must be in [0, 1)")


def labelled_point_sets(cfg: ConditionalDDPMConfig) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``[(name, X, y), ...]``: the user's ``data_file`` + ``labels_file``, or each toy set."""
    return labelled_sets(cfg.datasets, cfg.data_file, cfg.labels_file, helix_file=cfg.helix_file)


def fit_conditional_model(cfg: ConditionalDDPMConfig, X: Any, y: Any, n_classes: int, device: torch.device):
    """Train the conditional model on (X, y) as configured; returns (model, scheduler, info) as fit_conditional does."""
    model_kwargs = {"hidden": cfg.hidden, "depth": cfg.depth} if cfg.arch == "default" else {}
    return fit_conditional(
        torch.as_tensor(X).to(device), torch.as_tensor(y).to(device), n_classes=n_classes,
        arch=cfg.arch, T=cfg.T, schedule=cfg.schedule, beta_low=cfg.beta_low, beta_high=cfg.beta_high,
        steps=cfg.train_steps, batch_size=cfg.batch_size, lr=cfg.lr, label_dropout=cfg.label_dropout,
        generator=torch_generator(cfg.seed), model_kwargs=model_kwargs,
    )


def fit_conditional_models(cfg: ConditionalDDPMConfig, data: Sequence[tuple[Any, Any, int]],
                           device: torch.device) -> list[tuple[torch.nn.Module, NoiseScheduler, Any]]:
    """:func:`fit_conditional_model` for every ``(X, y, n_classes)`` in ``data``, in order.

    With ``cfg.stacked`` the models are built one after another from the global
    generator, as the one-at-a-time path builds them, and data sets of the same
    dimension and number of classes train as one stack (each model equals its solo
    run up to float rounding), stacks side by side on the cores ``device.cpu_plan`` gives.
    """
    if not cfg.stacked:
        return [fit_conditional_model(cfg, X, y, n_classes, device) for X, y, n_classes in data]
    model_kwargs = {"hidden": cfg.hidden, "depth": cfg.depth} if cfg.arch == "default" else {}
    scheduler = make_scheduler(cfg.schedule, cfg.T, cfg.beta_low, cfg.beta_high)
    members = [StackMember(make_conditional_model(cfg.arch, np.shape(X)[1], cfg.T, c, **model_kwargs).to(device),
                           scheduler, torch.as_tensor(X).to(device), torch_generator(cfg.seed),
                           labels=torch.as_tensor(y).to(device))
               for X, y, c in data]
    stacks = plan_stacks([(np.shape(X)[1], c) for X, _, c in data])
    params = [sum(p.numel() for p in m.model.parameters()) for m in members]
    step = [6.0 * min(cfg.batch_size, len(m.X)) * sum(params[i] for i in stack)
            for stack, m in zip(stacks, (members[s[0]] for s in stacks))]
    plan = cpu_plan(device, max(step), tasks=len(stacks), total_flops=sum(step) * cfg.train_steps)
    order = sorted(range(len(stacks)), key=lambda k: -step[k])

    def one_stack(k: int) -> list[Any]:
        return train_ddpm_stack([members[i] for i in stacks[k]], steps=cfg.train_steps, batch_size=cfg.batch_size,
                                lr=cfg.lr, label_dropout=cfg.label_dropout, progress=plan.workers == 1)

    out: list[Any] = [None] * len(data)
    for k, results in zip(order, run_planned(one_stack, order, plan)):
        for i, result in zip(stacks[k], results):
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
