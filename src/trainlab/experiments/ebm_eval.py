"""Energy-based model study, Task 0: evaluate the EnergyRegressor on a test set of (x, energy).

The study loaded the course's weights into its ``EnergyRegressor`` (784 -> 4096 -> ... -> 2 -> 1,
ReLU) and its test set (x of shape [100000, 784], energy [100000, 1]) and printed the test
loss, 288.1554 (MSE). ``weights=FILE data=FILE`` does exactly that with the user's files,
loaded weights-only. The course files are not public, so by default the answer is known:
the energy is the exact negative log-density of a Gaussian fitted to images (probabilistic
PCA), and a regressor of the study's shape is trained here on images and exact draws,
evaluated, and saved as ``checkpoints/regressor.pt`` (a state_dict the study's class
loads) beside ``checkpoints/target.pt`` (the Gaussian) for ``ebm-sample from_run=``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from trainlab.config import positive
from trainlab.experiments._ebm import EnergyConfig, error_rows, failed_fit_note, predict, prepare, save_models
from trainlab.experiments._resume import Checkpointing
from trainlab.nn.energy import parameter_count
from trainlab.report.figures import new_figure
from trainlab.runs import Run

NAME = "ebm-eval"
STUDY = "ebm"
QUESTION = "Task 0"
SUMMARY = "EnergyRegressor test MSE and MAE, predicted vs true energy; default energy known exactly (PPCA)"
RUNTIME = "~60 s"  # bench/runtimes.py, 2026-12-06 (59.2 s), one at a time on the 2-core machine
# the small digits regressor needs lr 1e-3 in 10 epochs (R^2 0.23-0.42 on seeds 0-3)
QUICK = {"dataset": "digits", "train_limit": None, "first_width": 64, "epochs": 10, "draws_per_image": 4,
         "lr": 1e-3}

STUDY_NOTE = """The study loaded the course's weights and test set (100000 points, 784 values each)
and reported one number, the test loss: MSE 288.1554 (on an Apple GPU, "mps"). It printed no
MAE, no baseline and no plot, so a loss of 288 cannot be read on its own: it depends on the
spread of the test energies, which the study does not give. Here every MSE stands beside the
MSE of predicting the mean training energy for every point (the baseline) and R^2 = 1 - MSE /
baseline."""


@dataclass
class Config(Checkpointing, EnergyConfig):
    plot_points: int = 4000
    """Test points drawn (seeded) in the predicted-vs-true plot."""

    def __post_init__(self) -> None:
        super().__post_init__()
        positive("plot_points", self.plot_points)


def run(cfg: Config, out: Run) -> None:
    device = out.device

    # The regressor and its test set: the user's files, or trained here on a known energy.
    setup = prepare(cfg, device, snapshot=out.snapshots(cfg.checkpoint_every).slot("regressor"))
    out.text("setup", setup.describe, title="Regressor and test set")
    out.text("model", f"{setup.regressor}\n# {parameter_count(setup.regressor):,} parameters", code=True,
             title="Model (print(model))")
    for record in setup.history:
        out.log(**record)

    # Measure: MSE (the study's loss) and MAE, per kind of test point and overall.
    pred = predict(setup.regressor, setup.x_test)
    rows = error_rows(pred, setup.e_test, setup.part)
    out.table("test", rows, columns=["points", "n", "mse", "mae", "baseline_mse", "r2", "energy_mean", "energy_std"],
              title="Test loss", caption="mse: the study's loss (mean squared error of the predicted energy); "
              "baseline_mse: predicting the mean energy of those points for each (their variance); "
              "r2 = 1 - mse / baseline_mse.")
    out.figure("predicted_vs_true", _plot_scatter(pred, setup.e_test, setup.part, cfg.plot_points, cfg.seed),
               title="Predicted against true energy",
               caption=f"Up to {cfg.plot_points} test points (seeded draw); the line is y = x.")
    if setup.history:
        out.figure("loss", _plot_loss(setup.history), title="Training loss",
                   caption="Mean MSE over each epoch on standardised energies (1 = predicting the mean).")
        save_models(out, setup, cfg)
        out.text("training", f"{len(setup.history)} epochs in {setup.train_seconds:.1f} s on {device}; status "
                 f"{setup.status}; final training loss {setup.history[-1]['train_loss']:.4g} (standardised). "
                 "Saved checkpoints/regressor.pt (torch.save(model.state_dict()): the study's class loads it "
                 "as is; regressor.json describes it) and checkpoints/target.pt (the Gaussian: mean, principal axes and variances, noise "
                 "variance).", title="Training")
    overall = rows[-1]
    note = (f"Test MSE {overall['mse']:.4g} (the study: 288.1554 on its own test set) against a baseline of "
            f"{overall['baseline_mse']:.4g}: R^2 = {overall['r2']:.3f}.")
    if len(rows) > 2:  # several kinds of test point: where is the regressor worst, absolutely and relatively?
        by_mse, by_r2 = max(rows[:-1], key=lambda r: r["mse"]), min(rows[:-1], key=lambda r: r["r2"])
        note += f" By MSE the error is largest on the {by_mse['points']}s ({by_mse['mse']:.4g})"
        note += ("." if by_r2 is by_mse else
                 f"; relative to their spread it is worst on the {by_r2['points']}s (R^2 {by_r2['r2']:.3f}, energy "
                 f"std {by_r2['energy_std']:.4g}).")
    note += failed_fit_note(overall["r2"], "here" if setup.history else None, cfg.seed)
    out.text("verdict", note, title="Verdict")
    out.text("study_numbers", STUDY_NOTE, title="The study's numbers")
    status = "done" if setup.status == "done" and np.isfinite(overall["mse"]) else "diverged"
    out.summary(headline="test_mse", test_mse=overall["mse"], test_mae=overall["mae"], r2=overall["r2"],
                baseline_mse=overall["baseline_mse"], train_time_s=setup.train_seconds, status=status,
                **{f"mse_{r['points'].replace(' ', '_')}": r["mse"] for r in rows[:-1]})
    if status == "diverged":
        out.mark_diverged("the regressor's training diverged (NaN/Inf loss)" if setup.status == "diverged"
                          else "the regressor's predictions are NaN/Inf (they overflow float32)")


def _plot_scatter(pred: torch.Tensor, true: torch.Tensor, part: np.ndarray, n: int, seed: int):
    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(true))[:n]
    p, t = pred.cpu().numpy()[pick], true.cpu().numpy()[pick]
    fig, axes = new_figure(size=(4.6, 4.2))
    ax = axes[0, 0]
    for kind, marker in zip(dict.fromkeys(part.tolist()), ("o", "^", "s")):
        m = part[pick] == kind
        ax.scatter(t[m], p[m], s=4, alpha=0.4, marker=marker, label=f"{kind} ({int(m.sum())})")
    lo, hi = float(min(t.min(), p.min())), float(max(t.max(), p.max()))
    ax.plot([lo, hi], [lo, hi], color="black", lw=1)
    ax.set(xlabel="true energy", ylabel="predicted energy", title="Test points")
    ax.legend(markerscale=3, fontsize=8)
    return fig


def _plot_loss(history: list[dict]):
    fig, axes = new_figure()
    axes[0, 0].plot([r["epoch"] for r in history], [r["train_loss"] for r in history], marker="o")
    axes[0, 0].set(xlabel="epoch", ylabel="MSE (standardised energies)", yscale="log", title="Regressor training")
    return fig
