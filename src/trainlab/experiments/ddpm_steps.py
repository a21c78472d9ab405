"""Diffusion study, section 1.2.1: the effect of the number of diffusion steps T on toy data.

The study trained one DDPM per T in {10, 50, 100, 150, 200} on each toy set
(moons, circles, manycircles, blobs, helix), linear betas 0.001 -> 0.02, and
judged the samples by the course's kernel "NLL"; its EMD "was taking too much
time" and was left out. Here every (dataset, T) model is trained on a seeded
training split and scored against a disjoint held-out split with a normalised
Parzen NLL, the study's score (reproduced exactly, for comparison), and the exact
EMD on disjoint splits, plus the ratio of that EMD to the real-vs-real noise floor.

Checkpoints (:mod:`trainlab.checkpoints`): every trained noise model that did not diverge,
named ``<dataset>_T<T>`` like its samples (``moons_T100``); its description holds the
model's arguments and its schedule: ``make_noise_model(**info["architecture"])`` and
``make_scheduler(**info["schedule"])`` rebuild them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

import numpy as np

from trainlab.checkpoints import save_checkpoint
from trainlab.config import check, one_of, positive
from trainlab.diffusion.metrics import DESCRIPTIONS
from trainlab.diffusion.protocol import FitSpec, fit_and_score_all, noise_model_architecture, split_points
from trainlab.diffusion.schedules import SCHEDULES, make_scheduler
from trainlab.experiments._resume import Checkpointing
from trainlab.experiments._toy_ddpm import STUDY_NOTE, ToyProtocolConfig, point_sets
from trainlab.report.figures import new_figure
from trainlab.runs import Run

NAME = "ddpm-steps"
STUDY = "diffusion"
QUESTION = "§1.2.1"
SUMMARY = "DDPM sample quality (NLL, exact EMD) against the number of diffusion steps T"
RUNTIME = "~6 min"  # bench/runtimes.py, 2026-12-06 (349.1 s; the same code took 387.9 s that morning)
QUICK = {"datasets": ["moons"], "Ts": [10, 50], "train_steps": 120, "hidden": 32, "n_points": 1400,
         "heldout": 600, "n_samples": 600, "emd_n": 100, "ratio_n": 300}

@dataclass
class Config(Checkpointing, ToyProtocolConfig):
    Ts: List[int] = field(default_factory=lambda: [10, 50, 100, 150, 200])
    """Numbers of diffusion steps T, one model each (the study's 10, 50, 100, 150, 200)."""
    schedule: str = "linear"
    """Noise schedule: linear, cosine or sigmoid."""
    beta_low: float = 1e-3
    """First beta of the linear/sigmoid schedule (the study's best: 0.001)."""
    beta_high: float = 0.02
    """Last beta of the linear/sigmoid schedule (the study's 0.02)."""
    reference_T: int = 100
    """T whose EMD ratio per dataset goes to summary.json (the nearest T in Ts is used)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(len(self.Ts) > 0, "Ts must list at least one T, e.g. Ts=[100]")
        positive("Ts", self.Ts)
        positive("reference_T", self.reference_T)
        one_of("schedule", self.schedule, SCHEDULES)
        check(0 < self.beta_low <= self.beta_high < 1, "need 0 < beta_low <= beta_high < 1")


def scatter(ax, points: np.ndarray, title: str) -> None:
    """2-D scatter, or 3-D for the helix (``ax`` must then be a 3-D axis)."""
    pts = np.clip(points, -1.6, 1.6)  # a few far-off samples must not squash the plot
    if points.shape[1] == 3:
        ax.scatter(pts[:, 0], pts[:, 1], pts[:, 2], s=1, alpha=0.4)
    else:
        ax.scatter(pts[:, 0], pts[:, 1], s=1, alpha=0.4)
        ax.set_xlim(-1.65, 1.65)
        ax.set_ylim(-1.65, 1.65)
        ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def sample_grid(real: dict[str, np.ndarray], samples: dict[tuple[str, int], np.ndarray],
                datasets: List[str], Ts: List[int], label: str = "T"):
    """A figure with one row per dataset: the held-out data, then the samples per T."""
    fig, axes = new_figure(len(datasets), len(Ts) + 1, size=(2.3, 2.3))
    for r, name in enumerate(datasets):
        for c in range(len(Ts) + 1):
            ax = axes[r, c]
            if real[name].shape[1] == 3:  # replace the 2-D axis by a 3-D one in the same cell
                ax.remove()
                ax = fig.add_subplot(len(datasets), len(Ts) + 1, r * (len(Ts) + 1) + c + 1, projection="3d")
            if c == 0:
                scatter(ax, real[name], f"{name}: held-out data")
            else:
                scatter(ax, samples[(name, Ts[c - 1])], f"{name}: {label}={Ts[c - 1]}")
    return fig


def grid(cfg: Config, sets: list[tuple[str, np.ndarray]], device) -> tuple[list, list[FitSpec], dict]:
    """The study's models: their (dataset, T) keys, their specs, and each dataset's held-out points."""
    real, keys, specs = {}, [], []
    for d_i, (name, points) in enumerate(sets):
        # data: the toy set (or the user's points), a seeded split; the held-out part is never trained on
        train, held = split_points(points, cfg.heldout, cfg.seed, device)
        real[name] = held.cpu().numpy()
        for T in sorted(set(cfg.Ts)):
            scheduler = make_scheduler(cfg.schedule, T, cfg.beta_low, cfg.beta_high)
            keys.append((name, T))
            specs.append(FitSpec(scheduler, train, held, seed=cfg.seed + 1000 * d_i + T))
    return keys, specs, real


def run(cfg: Config, out: Run) -> None:
    Ts = sorted(set(cfg.Ts))
    sets = point_sets(cfg)
    names = [name for name, _ in sets]
    keys, specs, real = grid(cfg, sets, out.device)

    # one model per (dataset, T), trained, sampled and scored (as stacks on every core unless stacked=false)
    rows, samples = [], {}
    fits = fit_and_score_all(specs, cfg, stacked=cfg.stacked,  # the config is the Protocol
                             slots=out.snapshots(cfg.checkpoint_every).slot)
    for (name, T), spec, (row, points, model) in zip(keys, specs, fits):
        samples[(name, T)] = points
        if row["status"] == "done":  # a diverged model is no model to hand back
            save_checkpoint(out, f"{name}_T{T}", model, config=cfg,
                            architecture=noise_model_architecture(cfg, spec.train.shape[1], T),
                            schedule={"kind": cfg.schedule, "T": T, "beta_low": cfg.beta_low, "beta_high": cfg.beta_high})
        row = {"dataset": name, "T": T, "abar_T": float(spec.scheduler.alphas_cumprod[-1]), **row}
        rows.append(row)
        out.log(**row)
        out.save_array(f"samples/{name}_T{T}.npy", points)

    columns = ["dataset", "T", "nll", "nll_study", "emd_mean", "emd_std", "train_time_s", "sample_time_s",
               "emd_ratio", "abar_T", "nll_bandwidth", "final_loss", "status"]
    out.table("steps", rows, columns=columns, title="Sample quality against the number of diffusion steps T",
              caption=f"{cfg.schedule} betas {cfg.beta_low} -> {cfg.beta_high}, arch={cfg.arch}, "
                      f"{cfg.train_steps} Adam steps of {cfg.batch_size}, clip_x0={cfg.clip_x0}; "
                      f"metrics on {cfg.heldout} held-out points; abar_T is the signal left at the last step. "
                      + " ".join(f"{k}: {v}" for k, v in DESCRIPTIONS.items()))
    out.text("metrics", STUDY_NOTE, title="How the samples are scored")
    if cfg.schedule != "cosine":
        left = ", ".join(f"T={T}: {make_scheduler(cfg.schedule, T, cfg.beta_low, cfg.beta_high).alphas_cumprod[-1]:.3f}"
                         for T in Ts)
        out.text("confound", "**T is not the only thing that changes.** With betas fixed between "
                 f"{cfg.beta_low} and {cfg.beta_high}, a longer chain also adds more noise in total: the share "
                 f"of signal left at the last step, abar_T, is {left}. Sampling starts from N(0, I), so a short "
                 "chain starts far from the distribution it was trained on; part of the gain with T is this "
                 "mismatch shrinking, not finer steps. `schedule=cosine` (abar_T ~ 0 for every T) separates the two.",
                 title="What changes with T")

    out.figure("samples", sample_grid(real, samples, names, Ts), title="Samples per dataset and T",
               caption="First column: held-out real points; then samples of the model trained with each T.")
    fig, axes = new_figure(1, 3)
    for name in names:
        mine = [r for r in rows if r["dataset"] == name]
        for ax, key in zip(axes[0], ("nll", "nll_study", "emd_ratio")):
            ax.plot([r["T"] for r in mine], [r[key] for r in mine], marker="o", label=name)
            ax.set_xlabel("T")
            ax.set_title(key)
    axes[0, 2].axhline(1.0, color="gray", lw=0.8, ls="--")
    axes[0, 0].legend(fontsize=8)
    out.figure("metrics_vs_T", fig, title="Metrics against T",
               caption="Parzen NLL (nats/point), the study's score, and EMD / real-vs-real EMD (1 = noise floor).")

    ref_T = min(Ts, key=lambda t: (abs(t - cfg.reference_T), t))
    summary = {f"emd_ratio_{r['dataset']}": r["emd_ratio"] for r in rows if r["T"] == ref_T}
    summary.update({f"nll_{r['dataset']}": r["nll"] for r in rows if r["T"] == ref_T})
    out.summary(headline=f"emd_ratio_{names[0]}", reference_T=ref_T, **summary)
