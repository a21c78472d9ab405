"""Diffusion study, section 2.2: a conditional DDPM used as a classifier, with no extra training.

The study's ClassifierDDPM noised an input at ``n_t = 10`` random timesteps, ran the
conditional network for every class and for the unconditional label, and picked the class
whose prediction moved furthest from the unconditional one; it reported about 90%
accuracy.  Here the same trained model is scored two ways on a held-out split, for
several ``n_t``: the study's score and the denoising-error score of Li et al. (2023)
(lowest noise-prediction error wins), both on shared ``(t, noise)`` draws, next to an
ordinary MLP classifier trained on the same split as the reference point.

Checkpoints (:mod:`trainlab.checkpoints`): the conditional model of every data set whose
training did not diverge, named by the data set (``moons``); ``make_noise_model(**info["architecture"])``
and ``make_scheduler(**info["schedule"])`` rebuild the model and its schedule.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import List

import numpy as np
from sklearn.model_selection import train_test_split

from trainlab.checkpoints import save_checkpoint
from trainlab.config import check, one_of, positive
from trainlab.diffusion.classifier import DiffusionClassifier
from trainlab.diffusion.conditional import REFERENCE_CLASSIFIER, fit_conditional_models, reference_classifier
from trainlab.experiments._resume import Checkpointing
from trainlab.experiments._toy_ddpm import ConditionalDDPMConfig, labelled_point_sets
from trainlab.report.figures import new_figure
from trainlab.runs import Run

NAME = "ddpm-classifier"
STUDY = "diffusion"
QUESTION = "§2.2"
SUMMARY = "conditional DDPM as a zero-shot classifier (study score vs denoising error) against n_t"
RUNTIME = "~45 s"  # bench/runtimes.py, 2026-12-06 (43.8 s), one at a time on the 2-core machine
QUICK = {"datasets": ["moons"], "train_steps": 150, "hidden": 32, "depth": 1, "n_ts": [1, 5], "max_test": 200,
         "mlp_max_iter": 20}

SCORE_NAMES = ("error", "study", "study-min", "error-adaptive")


@dataclass
class Config(Checkpointing, ConditionalDDPMConfig):
    scores: List[str] = field(default_factory=lambda: ["error", "study", "study-min"])
    """Scores: error (Li et al.), study (the study's, largest wins), study-min (smallest wins), error-adaptive."""
    n_ts: List[int] = field(default_factory=lambda: [1, 5, 10, 25, 50])
    """Timesteps per prediction to compare."""
    test_fraction: float = 0.2
    """Held-out share of each data set (stratified)."""
    max_test: int = 1000
    """Classify at most this many held-out points (a seeded subset)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for s in self.scores:
            one_of("scores", s, SCORE_NAMES)
        positive("n_ts", self.n_ts)
        positive("max_test", self.max_test)
        check(0 < self.test_fraction < 1, "test_fraction must be in (0, 1)")

def run(cfg: Config, out: Run) -> None:
    rows, splits = [], []
    sets = labelled_point_sets(cfg)
    for name, X, y in sets:
        # data: stratified held-out split, and a seeded subset of it to classify
        X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=cfg.test_fraction, stratify=y,
                                                  random_state=cfg.seed)
        keep = np.random.default_rng(cfg.seed).permutation(len(X_te))[: cfg.max_test]
        splits.append((X_tr, X_te[keep], y_tr, y_te[keep], int(y.max()) + 1))

    # models: a conditional DDPM per data set (stacked where they share a shape)
    settings = cfg  # the config is the ConditionalSettings
    fits = fit_conditional_models(settings, [(X_tr, y_tr, c) for X_tr, _, y_tr, _, c in splits],
                                  out.device, stacked=cfg.stacked, slots=out.snapshots(cfg.checkpoint_every).slot)
    for (name, _, _), (X_tr, X_te, y_tr, y_te, n_classes), (model, scheduler, info) in zip(sets, splits, fits):
        # reference: an ordinary MLP classifier on the same split
        mlp = reference_classifier(X_tr, y_tr, cfg.mlp_max_iter, cfg.seed)
        mlp_acc = 100 * float((mlp.predict(X_te) == y_te).mean())
        out.log(dataset=name, train_seconds=round(info.seconds, 2), status=info.status, final_loss=info.final_loss(100))
        if info.status != "done":
            rows.append({"dataset": name, "score": "-", "n_t": 0, "accuracy": float("nan"),
                         "mlp_accuracy": mlp_acc, "seconds_per_prediction": float("nan"), "status": info.status})
            continue
        save_checkpoint(out, name, model, architecture=settings.architecture(X_tr.shape[1], n_classes), config=cfg,
                        schedule=settings.schedule_args())

        # measure: every score at every n_t on the same held-out points
        for score in cfg.scores:
            for n_t in cfg.n_ts:
                clf = DiffusionClassifier(model, scheduler, n_classes, n_t=n_t, score=score.removesuffix("-adaptive"),
                                          adaptive=score.endswith("-adaptive"), seed=cfg.seed)
                start = time.perf_counter()
                pred = clf.predict(X_te)
                seconds = time.perf_counter() - start
                acc = 100 * float((pred == y_te).mean())
                rows.append({"dataset": name, "score": score, "n_t": n_t, "accuracy": acc, "mlp_accuracy": mlp_acc,
                             "seconds_per_prediction": seconds / len(X_te), "status": "done"})
                out.log(dataset=name, score=score, n_t=n_t, accuracy=acc, network_rows=clf.evaluations)

    out.table("classifier", rows, title="Diffusion classifier accuracy on held-out points",
              columns=["dataset", "score", "n_t", "accuracy", "mlp_accuracy", "seconds_per_prediction", "status"],
              caption=f"Accuracy in percent on up to {cfg.max_test} held-out points per set; mlp_accuracy: "
                      f"{REFERENCE_CLASSIFIER} on the same split. error = lowest denoising error "
                      "(Li et al. 2023); study = the study's largest distance to the unconditional prediction.")
    _plot(out, rows, cfg)
    out.text("method", METHOD_NOTE, title="What the scores compute")
    done = [r for r in rows if r["status"] == "done"]
    summary = {f"{r['dataset']}_{r['score']}_nt{r['n_t']}": round(r["accuracy"], 2) for r in done}
    best = max(cfg.n_ts)
    headline = f"{sets[0][0]}_{cfg.scores[0]}_nt{best}"
    out.summary(headline=headline if headline in summary else None, **summary)


METHOD_NOTE = """Both scores reuse one conditional DDPM and the same (t, noise) draws for every class.
*error*: e_c = mean over the n_t draws of ||noise - eps(x_t, t, c)||^2, the class-conditional
denoising loss (a Monte-Carlo estimate of -ELBO(x | c) up to weights); the lowest error wins
(Li et al. 2023, Clark & Jaini 2023). *study*: the study's D_c = sum ||eps(x_t, t, c) - eps(x_t, t, uncond)||^2,
largest wins. Because eps_c - eps_uncond is proportional to -grad log p(c | x_t), the study's score
favours the class whose posterior changes fastest near x_t, not the most probable class: deep
inside class c, p(c | x_t) is flat near 1, so eps_c stays close to eps_uncond while the wrong
classes move it most. *study-min* (smallest D_c wins) is that reading of the same numbers; the
table shows which of the two agrees with the labels.
The helix labels are Bernoulli((sin(4 x0 x1 x2) + 1) / 2) draws on the raw coordinates, so no
classifier can exceed about 81% there (E[max(p, 1 - p)] = 0.806 on the study's helix.npy). The study wrote x_t = sqrt(alpha_t) x + sqrt(1 - alpha_t) z; the
forward process needs the cumulative product alpha-bar_t, which is what is used here."""


def _plot(out, rows, cfg: Config) -> None:
    names = list(dict.fromkeys(r["dataset"] for r in rows))
    fig, axes = new_figure(1, len(names))
    for ax, name in zip(axes[0], names):
        for score in cfg.scores:
            pts = [(r["n_t"], r["accuracy"]) for r in rows if r["dataset"] == name and r["score"] == score]
            if pts:
                ax.plot(*zip(*pts), marker="o", label=score)
        mlp = [r["mlp_accuracy"] for r in rows if r["dataset"] == name]
        if mlp:
            ax.axhline(mlp[0], color="grey", ls="--", label="MLP")
        ax.set_xscale("log")
        ax.set(title=name, xlabel="n_t (timesteps per prediction)", ylabel="accuracy (%)")
        ax.legend(fontsize=7)
    out.figure("accuracy_vs_nt", fig, title="Accuracy against timesteps per prediction")
