"""Diffusion study, section 1.2.2: the effect of the noise schedule on toy-data DDPMs.

The study compared linear betas for several (beta_low, beta_high) pairs and two
alternative schedules, cosine and sigmoid, and plotted the course's NLL against
the number of steps T for each toy set (its Figures 1 to 5): linear looked best on
blobs, sigmoid on circles and moons, cosine in between. Here the same grid is run
with the protocol of ``ddpm-steps`` (seeded train/held-out split, normalised
Parzen NLL as the main number, the study's score beside it, exact EMD):
linear, cosine and sigmoid at every T, and every linear (beta_low, beta_high) pair
at the T values in ``linear_Ts``.

Checkpoints (:mod:`trainlab.checkpoints`): every trained noise model that did not diverge,
named ``<dataset>_<schedule>_T<T>`` with the schedule as the table labels it, spaces as
``_`` (``moons_linear_0.001-0.02_T100``, ``moons_cosine_T50``); ``make_noise_model(**info["architecture"])``
and ``make_scheduler(**info["schedule"])`` rebuild the model and its schedule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, List

from trainlab.checkpoints import save_checkpoint
from trainlab.config import check, one_of, positive
from trainlab.diffusion.metrics import DESCRIPTIONS
from trainlab.diffusion.protocol import FitSpec, fit_and_score_all, noise_model_architecture, split_points
from trainlab.diffusion.schedules import make_scheduler
from trainlab.experiments._resume import Checkpointing
from trainlab.experiments._toy_ddpm import STUDY_NOTE, ToyProtocolConfig, point_sets
from trainlab.report.figures import new_figure
from trainlab.runs import Run

NAME = "ddpm-schedules"
STUDY = "diffusion"
QUESTION = "§1.2.2"
SUMMARY = "linear (5 beta ranges), cosine and sigmoid schedules, NLL against T (the study's Figs 1-5)"
RUNTIME = "~4.5 min"  # bench/runtimes.py, 2026-12-06 (269.1 s; the same code took 302.2 s that morning)
QUICK = {"datasets": ["moons"], "Ts": [10, 40], "schedules": ["linear", "cosine", "sigmoid"], "beta_lows": [1e-4],
         "beta_highs": [0.02], "linear_Ts": [40], "train_steps": 60, "hidden": 32, "n_points": 1200, "heldout": 500,
         "n_samples": 500, "emd_k": 2, "emd_n": 200, "ratio_n": 300}

SCHEDULE_NOTE = """**Sigmoid** is the sigmoid ramp of betas between beta_low and beta_high (GeoDiff),
the form course codes use; **cosine** is Nichol & Dhariwal's, which ignores the betas."""


def sampler_note(cfg: "Config") -> str:
    """Why the sampler clips x0, with this config's numbers (last betas, abar_T, amplification)."""
    T = max(cfg.Ts)
    # x_{t-1} = (x_t - beta_t / sqrt(1 - abar_t) eps) / sqrt(alpha_t): an error in eps is scaled by this
    def gain(sched) -> float:
        beta, abar = float(sched.betas[-1]), float(sched.alphas_cumprod[-1])
        return beta / ((1 - abar) ** 0.5 * (1 - beta) ** 0.5)

    lines = []
    for kind in cfg.schedules:
        sched = make_scheduler(kind, T, cfg.beta_low, cfg.beta_high)
        lines.append(f"{kind} at T={T}: last beta {float(sched.betas[-1]):.4g}, abar_T "
                     f"{float(sched.alphas_cumprod[-1]):.3g}, first reverse step scales the noise-prediction "
                     f"error by {gain(sched):.3g}")
    clip = ("Every model here is sampled with the predicted clean point x0 = (x_t - sqrt(1 - abar_t) eps) / "
            "sqrt(abar_t) clipped to the data range [-1, 1] (`clip_x0=true`, diffusers' `clip_sample`); the clip "
            "changes a step only where the implied x0 leaves that range." if cfg.clip_x0 else
            "These models are sampled without clipping (`clip_x0=false`).")
    return (f"**Sampler.** {clip} A schedule whose last betas approach 1 amplifies the error of the predicted "
            "noise in the first reverse steps, so unclipped samples can land far outside the data for reasons "
            "that have nothing to do with the schedule's merit:\n\n" + "\n".join(f"- {line}" for line in lines)
            + "\n\n" + SCHEDULE_NOTE)


@dataclass
class Config(Checkpointing, ToyProtocolConfig):
    RENAMED: ClassVar[dict[str, str]] = {"others": "schedules", "linear_T": "linear_Ts"}
    Ts: List[int] = field(default_factory=lambda: [10, 50, 100, 150, 200])
    """T values for the NLL-against-T curves (the study's Figures 1 to 5)."""
    beta_low: float = 1e-3
    """First beta of the linear and sigmoid curves (the study's 0.001)."""
    beta_high: float = 0.02
    """Last beta of the linear and sigmoid curves (the study's 0.02)."""
    schedules: List[str] = field(default_factory=lambda: ["linear", "cosine", "sigmoid"])
    """Schedules drawn at every T: linear (the reference the others are compared with) and cosine and/or sigmoid."""
    beta_lows: List[float] = field(default_factory=lambda: [1e-4, 5e-4, 1e-3, 2e-3, 1e-3])
    """First betas of the linear pairs compared at linear_Ts; item i pairs with beta_highs[i]."""
    beta_highs: List[float] = field(default_factory=lambda: [0.02, 0.02, 0.02, 0.02, 0.05])
    """Last betas of the linear pairs (the study found 0.001 -> 0.02 best, 0.002 -> 0.02 on albatross)."""
    linear_Ts: List[int] = field(default_factory=lambda: [100])
    """T values at which every linear pair is trained (the study's T=100)."""
    hidden: int = 64
    """Width of the default residual MLP (narrower than ddpm-steps': this grid holds ~100 models)."""
    train_steps: int = 1500
    """Optimizer steps per model."""
    batch_size: int = 256
    """Training batch size."""
    lr: float = 2e-3
    """Adam learning rate (cosine-decayed to 0)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("Ts", "linear_Ts"):
            check(len(getattr(self, name)) > 0, f"{name} must list at least one T, e.g. {name}=[100]")
            positive(name, getattr(self, name))
        check(0 < self.beta_low <= self.beta_high < 1, "need 0 < beta_low <= beta_high < 1")
        check("linear" in self.schedules, "schedules must include linear, the reference; e.g. schedules=[linear,cosine]")
        for kind in self.schedules:
            one_of("schedules", kind, ("linear", "cosine", "sigmoid"))
        check(len(self.beta_lows) == len(self.beta_highs),
              "beta_lows and beta_highs must have the same length (one linear pair per item)")
        for lo, hi in zip(self.beta_lows, self.beta_highs):
            check(0 < lo <= hi < 1, f"need 0 < beta_low <= beta_high < 1 in every pair (got {lo}, {hi})")

def plan(cfg: Config) -> list[tuple[str, str, float, float, int]]:
    """(label, kind, beta_low, beta_high, T) of every model, without repeats."""
    items = []
    for T in sorted(set(cfg.Ts)):
        items.append((f"linear {cfg.beta_low:g}-{cfg.beta_high:g}", "linear", cfg.beta_low, cfg.beta_high, T))
        for kind in (k for k in cfg.schedules if k != "linear"):  # linear's label names its betas, above
            label = "cosine" if kind == "cosine" else f"sigmoid {cfg.beta_low:g}-{cfg.beta_high:g}"
            items.append((label, kind, cfg.beta_low, cfg.beta_high, T))
    for T in sorted(set(cfg.linear_Ts)):
        for lo, hi in zip(cfg.beta_lows, cfg.beta_highs):
            items.append((f"linear {lo:g}-{hi:g}", "linear", lo, hi, T))
    seen, out = set(), []
    for item in items:
        key = (item[0], item[4])  # (label, T)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def run(cfg: Config, out: Run) -> None:
    sets = point_sets(cfg)
    names = [name for name, _ in sets]
    keys, specs = [], []
    for d_i, (name, points) in enumerate(sets):
        train, held = split_points(points, cfg.heldout, cfg.seed, out.device)
        for label, kind, lo, hi, T in plan(cfg):
            keys.append((name, label, kind, lo, hi, T))
            specs.append(FitSpec(make_scheduler(kind, T, lo, hi), train, held, seed=cfg.seed + 1000 * d_i + T))

    # every model trained, sampled and scored (as stacks on every core unless stacked=false)
    rows = []
    fits = fit_and_score_all(specs, cfg, stacked=cfg.stacked,  # the config is the Protocol
                             slots=out.snapshots(cfg.checkpoint_every).slot)
    for (name, label, kind, lo, hi, T), spec, (row, _, model) in zip(keys, specs, fits):
        if row["status"] == "done":  # a diverged model is no model to hand back
            save_checkpoint(out, f"{name}_{label.replace(' ', '_')}_T{T}", model, config=cfg,
                            architecture=noise_model_architecture(cfg, spec.train.shape[1], T),
                            schedule={"kind": kind, "T": T, "beta_low": lo, "beta_high": hi})
        row = {"dataset": name, "schedule": label, "kind": kind,
               "beta_low": lo if kind != "cosine" else "", "beta_high": hi if kind != "cosine" else "",
               "T": T, "abar_T": float(spec.scheduler.alphas_cumprod[-1]), **row}
        rows.append(row)
        out.log(**row)

    columns = ["dataset", "schedule", "beta_low", "beta_high", "T", "nll", "nll_study", "emd_mean", "emd_std",
               "emd_ratio", "abar_T", "train_time_s", "sample_time_s", "status"]
    out.table("schedules", rows, columns=columns, title="Sample quality per noise schedule and T",
              caption=f"arch={cfg.arch} (hidden {cfg.hidden}), {cfg.train_steps} Adam steps of {cfg.batch_size}, "
                      f"clip_x0={cfg.clip_x0}; abar_T is how much signal is left at the last step. "
                      + " ".join(f"{k}: {v}" for k, v in DESCRIPTIONS.items()))
    out.text("sampler", sampler_note(cfg), title="Sampler and schedules")
    out.text("metrics", STUDY_NOTE, title="How the samples are scored")

    # the study's Figures 1-5: NLL against T, one figure per dataset, one line per schedule
    curves = [lab for lab, _, _, _, T in plan(cfg) if T == min(cfg.Ts)]
    verdict = []
    for name in names:
        fig, axes = new_figure(1, 3)
        for label in curves:
            pts = sorted((r["T"], r) for r in rows if r["dataset"] == name and r["schedule"] == label)
            for ax, key in zip(axes[0], ("nll_study", "nll", "emd_ratio")):
                ax.plot([t for t, _ in pts], [r[key] for _, r in pts], marker="o", label=label)
        for ax, key in zip(axes[0], ("study's NLL (temperature 0.1)", "Parzen NLL (nats/point)", "EMD ratio")):
            ax.set_xlabel("T")
            ax.set_title(key, fontsize=10)
        axes[0, 2].axhline(1.0, color="gray", lw=0.8, ls="--")
        axes[0, 2].set_yscale("log")
        axes[0, 0].legend(fontsize=8)
        out.figure(f"nll_vs_T_{name}", fig, title=f"NLL against T: {name}",
                   caption="Left: the study's score, as its Figures 1-5; middle: the normalised Parzen NLL; "
                           "right: EMD over the real-vs-real floor (log scale, 1 = floor).")
        verdict.append(f"- {name}: " + "; ".join(_best(rows, name, curves, key) for key in ("nll", "nll_study")))
    out.text("verdict", "Which schedule wins, per dataset, by the mean over T of each score (the study, by its "
             "score: linear on blobs, sigmoid on circles and moons, cosine in between). At each T every schedule "
             "starts from the same weights and sees the same batches and noise draws, so the differences are "
             "the schedule's:\n\n" + "\n".join(verdict), title="Schedules compared")

    pairs = [r for r in rows if r["kind"] == "linear" and r["T"] in set(cfg.linear_Ts)]
    out.table("linear_pairs", pairs, columns=["dataset", "T", "beta_low", "beta_high", "abar_T", "nll",
                                              "nll_study", "emd_ratio"],
              title="Linear schedules: the (beta_low, beta_high) pairs at linear_Ts")
    summary = {f"nll_{r['schedule'].split()[0]}_{r['dataset']}": r["nll"] for r in rows
               if r["schedule"] in curves and r["T"] == min(cfg.Ts, key=lambda t: (abs(t - 100), t))}
    out.summary(headline=f"nll_linear_{names[0]}", **summary)


def _best(rows: list[dict], dataset: str, labels: list[str], key: str) -> str:
    """'by <key>: **<best label>** (value); other label value, ...' from the mean of ``key`` over T."""
    means = {}
    for label in labels:
        values = [r[key] for r in rows if r["dataset"] == dataset and r["schedule"] == label and r[key] == r[key]]
        means[label] = sum(values) / len(values) if values else float("inf")
    best = min(means, key=means.get)
    others = ", ".join(f"{lab} {v:.3f}" for lab, v in means.items() if lab != best)
    return f"by {key}: **{best}** ({means[best]:.3f}; {others})"
