"""Diffusion study, section 2: a conditional DDPM sampled with classifier-free guidance.

The study trained a conditional DDPM (class embedding from a one-hot of n_classes + 1
labels, the extra label meaning "unconditional") and showed scatter plots of guided
samples for one hand-picked guidance scale per data set.  Here every data set is
sampled at the same grid of guidance scales, and two numbers say what guidance did:
how often an independent classifier (an sklearn MLP trained on the real data) assigns
a sample to the requested class, and the earth mover's distance from the samples to
the real points of that class.

Checkpoints (:mod:`trainlab.checkpoints`): the conditional model of every data set whose
training did not diverge, named by the data set (``moons``); ``make_noise_model(**info["architecture"])``
and ``make_scheduler(**info["schedule"])`` rebuild the model and its schedule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np
import torch

from trainlab.checkpoints import save_checkpoint
from trainlab.config import check, positive
from trainlab.data.toy import load_array
from trainlab.device import torch_generator
from trainlab.diffusion.conditional import fit_conditional_models, reference_classifier
from trainlab.diffusion.guidance import sample_cfg
from trainlab.diffusion.metrics import emd
from trainlab.errors import ConfigError
from trainlab.experiments._resume import Checkpointing
from trainlab.experiments._toy_ddpm import ConditionalDDPMConfig, labelled_point_sets
from trainlab.report.figures import new_figure
from trainlab.report.tables import mean_std
from trainlab.runs import Run

NAME = "ddpm-cfg"
STUDY = "diffusion"
QUESTION = "§2"
SUMMARY = "classifier-free guidance on the toy sets, on-target rate and EMD against guidance scale"
RUNTIME = "~55 s"  # bench/runtimes.py, 2026-12-06 (56.4 s), one at a time on the 2-core machine
QUICK = {"datasets": ["moons"], "train_steps": 150, "hidden": 32, "depth": 1, "T": 50, "guidance_scales": [0.0, 2.0],
         "n_samples": 150, "mlp_max_iter": 40}

CONVENTION = """**Guidance convention.** Every reverse step uses the guided noise estimate
eps = (1 + w) * eps(x_t, t, y) - w * eps(x_t, t, unconditional), with w the guidance scale
of this table: w = 0 is plain conditional sampling and larger w pushes samples towards what
distinguishes class y from the whole data set (Ho & Salimans 2022; diffusers' guidance_scale
is 1 + w).  Both estimates come from one network evaluation on the stacked batch.  Since the
DDPM step is affine in eps, this equals the study's x_{t-1} = (1 + w) x_{t-1,cond} - w x_{t-1,uncond}
with shared noise.  The study's written update, x_{t-1} = sqrt(alpha_t) (x_t + (1 + w) eps_c - w eps_u)
+ sqrt(1 - alpha_t) z, is not the DDPM step; the step used here is
x_{t-1} = (x_t - beta_t / sqrt(1 - alphabar_t) eps) / sqrt(alpha_t) + sqrt(beta_t) z (Ho et al. 2020).

*on_target*: percent of samples that a scikit-learn MLPClassifier (64, 64), trained on the real
points, assigns to the requested class.  *emd_to_class*: exact earth mover's distance (W1,
Euclidean cost, uniform weights; POT) between the samples and as many real points of that
class, both in the [-1, 1] scaled coordinates; *emd_floor* is the same distance between two
disjoint real subsets of that class, the value a perfect sampler would reach."""


@dataclass
class Config(Checkpointing, ConditionalDDPMConfig):
    prior_file: Optional[str] = None
    """A .npy (n_samples, d) array of x_T; then every label and scale starts there and sampling adds no noise."""
    guidance_scales: List[float] = field(default_factory=lambda: [0.0, 0.2, 0.5, 1.0, 2.0, 5.0])
    """Guidance scales w to compare (w = 0: conditional sampling)."""
    n_samples: int = 500
    """Samples per (guidance scale, class)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        positive("n_samples", self.n_samples)
        check(all(w >= 0 for w in self.guidance_scales) and bool(self.guidance_scales),
              "guidance_scales must be a non-empty list of numbers >= 0")

def run(cfg: Config, out: Run) -> None:
    prior = None
    if cfg.prior_file:
        prior = torch.as_tensor(load_array(cfg.prior_file, scale=False)[0])
        check(prior.shape[0] == cfg.n_samples, f"prior_file has {prior.shape[0]} rows; set n_samples={prior.shape[0]}")
    sets = labelled_point_sets(cfg)
    for name, X, _ in sets:
        if prior is not None and prior.shape[1] != X.shape[1]:
            raise ConfigError(f"prior_file has {prior.shape[1]} columns but {name} has {X.shape[1]}")

    # models: a conditional DDPM with label dropout per data set (stacked where they share a shape)
    settings = cfg  # the config is the ConditionalSettings
    fits = fit_conditional_models(settings, [(X, y, int(y.max()) + 1) for _, X, y in sets], out.device,
                                  stacked=cfg.stacked, slots=out.snapshots(cfg.checkpoint_every).slot)
    rows, plots, floors = [], [], {}
    for (name, X, y), (model, scheduler, info) in zip(sets, fits):
        n_classes = int(y.max()) + 1

        # the judge: an ordinary classifier trained on the real points
        judge = reference_classifier(X, y, cfg.mlp_max_iter, cfg.seed)
        out.log(dataset=name, train_seconds=round(info.seconds, 2), status=info.status, final_loss=info.final_loss(100))
        if info.status != "done":
            rows.append({"dataset": name, "guidance_scale": float("nan"), "label": -1, "on_target": float("nan"),
                         "emd_to_class": float("nan"), "emd_floor": float("nan"), "status": info.status})
            continue
        save_checkpoint(out, name, model, architecture=settings.architecture(X.shape[1], n_classes), config=cfg,
                        schedule=settings.schedule_args())

        # sample: all classes at once for each guidance scale, from the same noise
        labels = torch.arange(n_classes).repeat_interleave(cfg.n_samples)
        start = None if prior is None else prior.repeat(n_classes, 1)
        per_scale = {}
        for w in cfg.guidance_scales:
            samples = sample_cfg(model, scheduler, len(labels), labels, w, prior=start,
                                 generator=torch_generator(cfg.seed + 1, out.device)).cpu().numpy()
            per_scale[w] = samples
            out.save_array(f"samples/{name}_w{w:g}.npy", samples)
            judged = judge.predict(samples)
            rng = np.random.default_rng(cfg.seed)
            for c in range(n_classes):
                mine = samples[labels.numpy() == c]
                real = X[y == c]
                pick = rng.permutation(len(real))
                m = min(len(mine), len(real) // 2)
                if (name, c) not in floors:  # two disjoint real subsets: what a perfect sampler would score
                    floors[name, c] = emd(real[pick[:m]], real[pick[m : 2 * m]])
                rows.append({"dataset": name, "guidance_scale": w, "label": c,
                             "on_target": 100 * float((judged[labels.numpy() == c] == c).mean()),
                             "emd_to_class": emd(mine[:m], real[pick[m : 2 * m]]), "emd_floor": floors[name, c],
                             "status": "done"})
            out.log(dataset=name, guidance_scale=w,
                    on_target=float(np.mean([r["on_target"] for r in rows if r["dataset"] == name
                                             and r["guidance_scale"] == w])))
        plots.append((name, X, per_scale, labels.numpy()))

    out.text("convention", CONVENTION, title="Guidance convention and measures")
    out.table("cfg_by_scale", _by_scale(rows), title="Averaged over classes",
              columns=["dataset", "guidance_scale", "on_target", "emd_to_class", "emd_floor"])
    for name, X, per_scale, labels in plots:
        _scatter(out, name, X, per_scale, labels)
    out.table("cfg", rows, title="Classifier-free guidance: on-target rate and EMD per class",
              columns=["dataset", "guidance_scale", "label", "on_target", "emd_to_class", "emd_floor", "status"],
              caption=f"{cfg.n_samples} samples per class and scale; on_target in percent; emd_floor: EMD "
                      "between two disjoint real subsets of the class of the same size (a perfect sampler's value).")
    summary = {f"{r['dataset']}_w{r['guidance_scale']:g}_on_target": round(r["on_target"], 2)
               for r in _by_scale(rows)}
    out.summary(headline=next(iter(summary), None), **summary)


def _by_scale(rows):
    """Finished rows averaged over classes, per dataset and guidance scale."""
    return mean_std([r for r in rows if r["status"] == "done"], by=["dataset", "guidance_scale"],
                    values=["on_target", "emd_to_class", "emd_floor"])


def _scatter(out, name, X, per_scale, labels) -> None:
    """One panel per guidance scale: samples coloured by the class they were asked for,
    over the real points in grey.  3-D sets show coordinates 0 and 2."""
    dims = (0, 1) if X.shape[1] == 2 else (0, X.shape[1] - 1)
    fig, axes = new_figure(1, len(per_scale), size=(3.0, 3.0))
    for ax, (w, samples) in zip(axes[0], per_scale.items()):
        ax.scatter(X[:, dims[0]], X[:, dims[1]], s=1, c="lightgrey", rasterized=True)
        ax.scatter(samples[:, dims[0]], samples[:, dims[1]], s=2, c=labels, cmap="tab10", vmin=0, vmax=9,
                   rasterized=True)
        ax.set(title=f"w = {w:g}", xlim=(-1.3, 1.3), ylim=(-1.3, 1.3), xticks=[], yticks=[])
    out.figure(f"samples_{name}", fig, title=f"Guided samples, {name}",
               caption="Colour = requested class; grey = real data.")
