"""Energy-based model study, Task 1: sample p(x) ∝ exp(-E(x)) with MALA and ULA, timed and diagnosed.

The study ran Algorithm 1 (MALA: a Langevin proposal with a Metropolis-Hastings
accept/reject) and Algorithm 2 (ULA: the same step, always accepted) on its
EnergyRegressor with 1000 burn-in steps, then 1000 samples, step tau = 0.01; it timed
burn-in and the whole run and showed the samples with t-SNE in 2-D and 3-D. Here the
same settings run many chains as one batch (trainlab.mcmc.langevin), with ESS and R-hat
of the energy and of the first two principal components, energy traces, and t-SNE of the
samples pooled over chains and thinned. On the default energy (a Gaussian fitted to images,
see ebm-eval) exact samples exist: each method's samples are compared with exact draws, and
the samplers run again on the true energy in place of the regressor, which separates the
sampler's error from the regressor's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import numpy as np
import torch

from trainlab.analysis.embedding import tsne
from trainlab.config import check, one_of, positive
from trainlab.device import threads_for_step, torch_generator, use_threads
from trainlab.diffusion.metrics import sliced_wasserstein
from trainlab.experiments._data import load_data
from trainlab.experiments._ebm import (EnergyConfig, energy_pixels, error_rows, failed_fit_note, load_run, predict,
                                      prepare, reusable_eval_run, save_models)
from trainlab.experiments._resume import Checkpointing
from trainlab.files import read_json
from trainlab.mcmc.diagnostics import pca_projections, summarize
from trainlab.mcmc.langevin import sample
from trainlab.nn.energy import energy_flops
from trainlab.report.figures import new_figure
from trainlab.runs import Run

NAME = "ebm-sample"
STUDY = "ebm"
QUESTION = "Task 1"
SUMMARY = "MALA and ULA over many chains: times, acceptance, ESS, R-hat, t-SNE, distance to exact samples"
RUNTIME = "~110 s"  # bench/runtimes.py, 2026-12-06 (packed weights: 110.0, 117.4 s; A/B 111.3, 108.4 s)
QUICK = {"dataset": "digits", "train_limit": None, "first_width": 64, "epochs": 10, "draws_per_image": 4,
         "lr": 1e-3, "chains": 8, "burn_in": 100, "n_samples": 100, "tsne_points": 60, "sw_points": 400}

STUDY_NOTE = """The study (one chain, Apple GPU): Algorithm 1 (MALA) burn-in 26.6 s, total 48.6 s;
Algorithm 2 (ULA) 10.5 s and 21.4 s, so MALA took 2.3x ULA's time, which the study put down to
the accept/reject test. That test costs almost nothing: the cost is a second energy and gradient
evaluation per step when the gradient at the current point is recomputed instead of kept. Here
MALA keeps (x, E(x), grad E(x)) per chain and evaluates once per step, at the proposal, as ULA
does. The study reported no acceptance rate, no effective sample size and no check that its
samples follow exp(-E)."""


@dataclass
class Config(Checkpointing, EnergyConfig):
    from_run: Optional[str] = None
    """An ebm-eval run folder: sample its saved regressor (and true energy) instead of training one."""
    reuse_eval: bool = True
    """Without from_run: sample the regressor of the newest finished ebm-eval run in the same --out trained
    with the same energy settings (the weights this run would train) instead of training it again."""
    methods: List[str] = field(default_factory=lambda: ["mala", "ula"])
    """Samplers: mala (accept/reject) and/or ula (always accept)."""
    chains: int = 16
    """Chains run side by side as one batch."""
    tau: float = 0.01
    """Step size: x' = x - tau grad E(x) + sqrt(2 tau) xi (the study's 0.01)."""
    burn_in: int = 1000
    """Steps discarded before the first sample (the study's 1000)."""
    n_samples: int = 1000
    """Samples kept per chain (the study's 1000)."""
    thin: int = 1
    """Steps per kept sample."""
    start: str = "data"
    """Chain starts: data (held-out images, or x of data=) or noise (uniform over the data's range)."""
    bounds: Optional[List[float]] = None
    """[lo, hi]: reject proposals outside this box (a proper target for any ReLU energy); null: no box."""
    adapt: bool = False
    """MALA only: tune tau during burn-in by dual averaging towards acceptance 0.574, then freeze it."""
    true_energy: bool = True
    """Also sample the true energy (when known) to separate the sampler's error from the regressor's."""
    tsne_points: int = 500
    """Points per sampler (pooled over chains, randomly thinned) in the t-SNE maps; 0 skips them."""
    sw_points: int = 2000
    """Points per set for the sliced Wasserstein distance to exact draws."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(len(self.methods) > 0, "methods must name at least one of mala, ula")
        for m in self.methods:
            one_of("methods", m, ("mala", "ula"))
        one_of("start", self.start, ("data", "noise"))
        positive("chains", self.chains)
        positive("tau", self.tau)
        positive("n_samples", self.n_samples)
        positive("thin", self.thin)
        positive("sw_points", self.sw_points)
        check(self.burn_in >= 0 and self.tsne_points >= 0, "burn_in and tsne_points must be >= 0")
        check(self.bounds is None or (len(self.bounds) == 2 and self.bounds[0] < self.bounds[1]),
              f"bounds must be [lo, hi] with lo < hi (got {self.bounds})")


def run(cfg: Config, out: Run) -> None:
    device = out.device
    snapshots = out.snapshots(cfg.checkpoint_every)

    # The energy: a saved run's regressor (from_run=, or an ebm-eval run beside this one with the same
    # energy settings), the user's weights, or one trained here on a known energy.
    reused = None if cfg.from_run or not cfg.reuse_eval else reusable_eval_run(out.path, cfg)
    if cfg.from_run or reused:
        folder = Path(cfg.from_run or reused).expanduser()
        regressor, target = load_run(str(folder), device)
        pool = energy_pixels(load_data(cfg).test_images, cfg, device)  # held-out images: the starts
        source = (f"Regressor and true energy from the ebm-eval run {folder.name}." if cfg.from_run else
                  f"Regressor and true energy reused from the ebm-eval run {reused.name} in the same output folder "
                  "(trained with the same energy settings, so the same weights): nothing was trained here "
                  "(reuse_eval=false trains it again).")
        r2, trained_by = read_json(folder / "summary.json", {}).get("r2"), folder.name  # that run's test R^2
    else:
        setup = prepare(cfg, device, need_data=False, snapshot=snapshots.slot("regressor"))
        regressor, target, source = setup.regressor, setup.target, setup.describe
        if setup.history:  # trained here: saved as ebm-eval saves it, so from_run= can reuse it
            save_models(out, setup, cfg)
        pool = setup.images if setup.images is not None else setup.x_test
        r2, trained_by = None, "here" if setup.history else None
        if setup.x_test is not None and setup.e_test is not None:
            r2 = error_rows(predict(regressor, setup.x_test), setup.e_test, setup.part)[-1]["r2"]
    # a regressor that learnt nothing makes every number below about the wrong energy: the verdict says so
    fit_note = ""
    if isinstance(r2, (int, float)):
        source += f" The regressor's test R^2: {r2:.3f}."
        fit_note = failed_fit_note(r2, trained_by, cfg.seed)
    energies = {"regressor": regressor.frozen_energy(cfg.chains)}
    if target is not None and cfg.true_energy:
        energies["true"] = target

    # Starts: held-out images (or the data file's x), else uniform noise over [0, 1] or the data's range.
    gen = torch_generator(cfg.seed, device)
    d = regressor.in_dim
    lo, hi = (float(pool.min()), float(pool.max())) if pool is not None else (0.0, 1.0)
    if cfg.start == "data" and pool is not None:
        x0 = pool[torch.randperm(len(pool), generator=gen, device=device)[: cfg.chains]]
        check(len(x0) == cfg.chains, f"chains={cfg.chains} but only {len(pool)} start points; lower chains")
        starts = f"{cfg.chains} chains start at {cfg.chains} points drawn at random from the {len(pool)} start points."
    else:
        x0 = lo + (hi - lo) * torch.rand(cfg.chains, d, generator=gen, device=device)
        starts = (f"{cfg.chains} chains start at uniform noise on [{lo:.3g}, {hi:.3g}]^{d}"
                  + (" (no start data: give data=)." if pool is None and cfg.start == "data" else "."))
    out.text("setup", f"{source} {starts}", title="Energy and starts")
    exact = target.sample(2 * cfg.sw_points, torch_generator(cfg.seed + 1, device)) if target is not None else None
    axes_ref = exact if exact is not None else pool

    # Sample: every energy with every method, the same starts and random numbers.
    rows, diag_rows, close_rows, results = [], [], [], {}
    for ename, energy in energies.items():
        for method in cfg.methods:
            # The regressor's step is a few large GEMMs, worth every idle core; the chains' numbers are the
            # same at any thread count (tests/mcmc/test_langevin_threads.py). The true energy is tiny.
            step_flops = energy_flops(regressor, cfg.chains) if ename == "regressor" else 0.0
            with use_threads(threads_for_step(step_flops, device, threads_change_numbers=False), device):
                res = sample(energy, x0, method=method, tau=cfg.tau, burn_in=cfg.burn_in, n_samples=cfg.n_samples,
                             thin=cfg.thin, bounds=tuple(cfg.bounds) if cfg.bounds else None,
                             generator=torch_generator(cfg.seed + 2, device), adapt=cfg.adapt and method == "mala",
                             snapshot=snapshots.slot(f"{ename}_{method}"))
            results[(ename, method)] = res
            quantities = {"energy": res.sample_energy}
            if axes_ref is not None:
                pcs = pca_projections(res.samples, 2, axes_ref)
                quantities.update(pc1=pcs[..., 0], pc2=pcs[..., 1])
            diag = {q: summarize(v) for q, v in quantities.items()}
            for q, s in diag.items():
                diag_rows.append({"energy": ename, "method": method, "quantity": q, **s})
            flat = res.samples.reshape(-1, d)
            rows.append({"energy": ename, "method": method, "chains": cfg.chains, "burn_in_s": res.burn_in_s,
                         "total_s": res.total_s, "accept_rate": float(res.accept_rate.mean()),
                         **diag["energy"], "ess_per_s": diag["energy"]["ess_bulk"] / res.total_s,
                         "tau": res.tau, "outside_data_range": float(((flat < lo) | (flat > hi)).float().mean())})
            if exact is not None:
                pick = _thin(len(flat), cfg.sw_points, cfg.seed)
                sw = sliced_wasserstein(flat[pick], exact[: cfg.sw_points], seed=cfg.seed)
                floor = sliced_wasserstein(exact[cfg.sw_points:], exact[: cfg.sw_points], seed=cfg.seed)
                close_rows.append({"energy": ename, "method": method, "sw_to_exact": sw, "sw_exact_vs_exact": floor,
                                   "sw_ratio": sw / floor, "true_energy_mean": float(target(flat).mean()),
                                   "exact_true_energy_mean": d / 2 + target.log_norm,
                                   "exact_outside_data_range": float(((exact < lo) | (exact > hi)).float().mean())})
            out.log(energy=ename, method=method, burn_in_s=res.burn_in_s, total_s=res.total_s,
                    accept_rate=rows[-1]["accept_rate"])

    out.table("sampling", rows, title="Sampling: time, acceptance and effective sample size",
              columns=["energy", "method", "chains", "burn_in_s", "total_s", "accept_rate", "ess_bulk", "ess_tail",
                       "rhat", "ess_per_s", "tau", "outside_data_range"],
              caption=f"{cfg.chains} chains, {cfg.burn_in} burn-in steps, {cfg.n_samples} samples per chain "
              f"(thin {cfg.thin}). ess_bulk, ess_tail, rhat: of the energy trace of the samples, all chains "
              "together (rank-normalised split R-hat, Vehtari et al. 2021); ess_per_s: bulk ESS per second of "
              "the whole run; outside_data_range: share of sampled values outside the range of the start data.")
    out.table("diagnostics", diag_rows, columns=["energy", "method", "quantity", "ess_bulk", "ess_tail", "rhat"],
              title="Diagnostics per scalar summary",
              caption="pc1, pc2: the samples projected on the first two principal axes of "
              + ("exact draws." if exact is not None else "the start data.") + " R-hat above 1.01: not mixed.")
    if close_rows:
        out.table("exact", close_rows, title="Distance to exact samples",
                  columns=["energy", "method", "sw_to_exact", "sw_exact_vs_exact", "sw_ratio", "true_energy_mean",
                           "exact_true_energy_mean", "exact_outside_data_range"],
                  caption=f"Sliced Wasserstein-2 (500 projections, POT) between {cfg.sw_points} pooled samples and "
                  f"{cfg.sw_points} exact draws, beside the same distance between two sets of exact draws (the "
                  "floor from finite samples; sw_ratio 1 is as good as exact). true_energy_mean: mean true energy "
                  "of the samples; under the target it is d/2 + log Z (exact_true_energy_mean); "
                  "exact_outside_data_range: share of exact draws' values outside the start data's range (compare "
                  "outside_data_range above).")
    out.figure("energy_traces", _plot_traces(results, cfg.burn_in), title="Energy traces",
               caption="Energy of 4 chains at every step (under the energy being sampled); burn-in left of the line.")
    if cfg.tsne_points:
        groups = {f"{m.upper()} ({e})": _pooled(r.samples, cfg.tsne_points, cfg.seed) for (e, m), r in results.items()}
        if exact is not None:
            groups["exact draws"] = exact[: cfg.tsne_points]
        for dims in (2, 3):
            out.figure(f"tsne_{dims}d", _plot_tsne(groups, dims, cfg.seed), title=f"t-SNE of the samples, {dims}-D",
                       caption=f"Up to {cfg.tsne_points} samples per sampler, drawn at random from all chains and "
                       "steps (pooled and thinned); openTSNE.")
    out.text("convention", f"Proposal x' = x - tau grad E(x) + sqrt(2 tau) xi, xi ~ N(0, I), tau = {cfg.tau}; MALA "
             "accepts with min(1, exp(E(x) - E(x')) q(x|x') / q(x'|x)), q the Gaussian transition density; ULA "
             "always moves. NaN or infinite proposals are rejected. MALA evaluates energy and gradient once per "
             "step, at the proposal.", title="Sampler")
    out.text("verdict", (fit_note.strip() + " " if fit_note else "") + _verdict(rows, close_rows, target, cfg),
             title="Verdict")
    out.text("study_numbers", STUDY_NOTE, title="The study's numbers")
    summary = {f"{r['method']}_{r['energy']}_{k}": r[k] for r in rows for k in ("total_s", "accept_rate", "ess_per_s")}
    summary.update({f"{r['method']}_{r['energy']}_sw_ratio": r["sw_ratio"] for r in close_rows})
    times = {r["method"]: r["total_s"] for r in rows if r["energy"] == "regressor"}
    if {"mala", "ula"} <= set(times):
        summary["mala_ula_time_ratio"] = times["mala"] / times["ula"]
    out.summary(headline="mala_ula_time_ratio" if "mala_ula_time_ratio" in summary else None, **summary)


def _thin(n: int, k: int, seed: int) -> torch.Tensor:
    """``k`` of ``n`` pooled samples at random (seeded): neighbours along a chain rarely both."""
    return torch.as_tensor(np.sort(np.random.default_rng(seed).permutation(n)[:k]))


def _pooled(samples: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    flat = samples.reshape(-1, samples.shape[-1])
    return flat[_thin(len(flat), k, seed).to(flat.device)]


def _verdict(rows: list[dict], close: list[dict], target, cfg: Config) -> str:
    by = {(r["energy"], r["method"]): r for r in rows}
    parts = []
    if ("regressor", "mala") in by and ("regressor", "ula") in by:
        m, u = by[("regressor", "mala")], by[("regressor", "ula")]
        parts.append(f"On the regressor MALA took {m['total_s'] / u['total_s']:.2f}x ULA's time (the study: 2.3x), "
                     f"accepting {m['accept_rate']:.1%} of its proposals.")
    worst = max(rows, key=lambda r: r["rhat"])
    parts.append(f"Largest energy R-hat: {worst['rhat']:.3f} ({worst['method'].upper()} on the {worst['energy']} "
                 f"energy){': not mixed (above 1.01)' if worst['rhat'] > 1.01 else ''}.")
    if target is not None:
        s = target.describe_scales(cfg.tau)
        parts.append(f"The true energy's variances run from {s['smallest_variance']:.3g} to "
                     f"{s['largest_variance']:.3g}: tau / smallest = {s['tau_over_smallest']:.3g}, and the widest "
                     f"axis needs about {s['relax_steps_largest']:.0f} steps of tau to forget the start "
                     f"(the run had {cfg.burn_in + cfg.n_samples * cfg.thin}).")
    for r in close:
        parts.append(f"{r['method'].upper()} on the {r['energy']} energy: sliced Wasserstein to exact draws "
                     f"{r['sw_ratio']:.2f}x the exact-vs-exact floor; mean true energy {r['true_energy_mean']:.4g} "
                     f"against {r['exact_true_energy_mean']:.4g} under the target"
                     + (f" and {target.ula_mean_energy(cfg.tau):.4g} under ULA's own stationary law (closed form: "
                        "its O(tau) bias)." if (r["energy"], r["method"]) == ("true", "ula") else "."))
    return " ".join(parts)


def _plot_traces(results: dict, burn_in: int):
    keys = list(results)
    fig, axes = new_figure(1, len(keys), size=(3.6, 2.8))
    for ax, key in zip(axes[0], keys):
        trace = results[key].energy.cpu().numpy()
        ax.plot(trace[:, :4], lw=0.6)
        ax.axvline(burn_in, color="black", lw=0.8, ls="--")
        ax.set(title=f"{key[1].upper()} ({key[0]} energy)", xlabel="step", ylabel="energy")
    return fig


def _plot_tsne(groups: dict[str, torch.Tensor], dims: int, seed: int):
    points = torch.cat([g.detach().cpu() for g in groups.values()]).numpy()  # tsne takes it as float64
    labels = np.concatenate([[name] * len(g) for name, g in groups.items()])
    emb = tsne(points, dims, seed)
    fig, axes = new_figure(size=(5.2, 4.4), subplot_kw={"projection": "3d"} if dims == 3 else None)
    ax = axes[0, 0]
    for name in groups:
        m = labels == name
        ax.scatter(*emb[m].T, s=4, alpha=0.6, label=name)
    ax.legend(markerscale=3, fontsize=7)
    return fig
