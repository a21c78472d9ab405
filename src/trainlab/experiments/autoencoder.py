"""Optimisation & CNN study, Question 2: MLP and convolutional autoencoders with a 2- and a 32-unit code.

Q2.1 trains ``784 -> 196 -> 49 -> λ -> 49 -> 196 -> 784`` with a ReLU after every layer
(the code's and the output's included) on the whole training set with L1 loss and
Adam, for λ = 2 and λ = 32 with every other setting equal, and shows the training loss
against epochs and inputs beside reconstructions (one figure of six sub-images). Q2.2
does the same with convolutions; the study's figure of that network is lost, so the
one here is stated in the report: strided convolutions down to 7x7, a linear
bottleneck, transposed convolutions back. Beyond the study: several seeds, test
errors, dead code units, the code space coloured by class, interpolation between two
test images and the error per class. Every model is saved as a checkpoint that
``autoencoder-mean-latent from_run=RUN_DIR`` decodes the mean code of.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

import numpy as np
import torch
import torch.nn.functional as F

from trainlab.analysis.reconstruction import class_knn_accuracy, edge_strength, per_class_l1
from trainlab.checkpoints import save_checkpoint
from trainlab.config import check, one_of, positive
from trainlab.experiments._autoencoder import (AutoencoderConfig, best_val_l1, checkpoint_name, design,
                                               load_images_and_labels, raise_if_all_pruned, train_all)
from trainlab.nn.autoencoder import INFERENCE_CHUNK, STUDY_ARCHS, dead_units, decode_all, encode_all
from trainlab.nn.flops import training_flops_per_example
from trainlab.report.figures import log_scale_if_any, mosaic, new_figure
from trainlab.report.tables import mean_std, with_std
from trainlab.runs import Run
from trainlab.train.autoencoder import AutoencoderSpec
from trainlab.workers import run_independent

NAME = "autoencoder"
STUDY = "optim-cnn"
QUESTION = "Q2"
SUMMARY = "MLP and convolutional autoencoders, code size 2 and 32, L1 loss: curves, reconstructions, code space"
RUNTIME = "~5 min"  # bench/runtimes.py, 2026-12-06 (307.3 s), one at a time on the 2-core machine
QUICK = {"dataset": "digits", "epochs": 12, "seeds": 2, "batch_size": 64}

TEST_VALUES = ["train_l1", "test_l1", "test_mse", "dead_units", "dead_pixels", "dead_pixel_l1", "code_knn_acc",
               "edges_kept", "train_time_s", "train_cpu_s"]

COLUMNS_EXPLAINED = (
    "L1 and MSE per pixel, pixels in [0, 1]. dead_units: code units that are zero for every training image; "
    "dead_pixels: output pixels that are zero for every test image although some test image has ink there, "
    "dead_pixel_l1: the part of test_l1 they cause; code_knn_acc: % of test images whose 5 nearest training "
    "codes vote for their class; edges_kept: the reconstructions' mean difference between neighbouring pixels "
    "in % of the inputs' (low: blurred; dead pixels add edges); train_time_s: wall time of the training loop; "
    "train_cpu_s: CPU time of the thread that trained it (on a shared machine, closer to what an idle one takes).")


@dataclass
class Config(AutoencoderConfig):
    archs: List[str] = field(default_factory=lambda: ["mlp", "conv"])
    """Models to train: mlp (the study's Q2.1 layer list), conv (Q2.2, strided convolutions)."""
    latents: List[int] = field(default_factory=lambda: [2, 32])
    """Code sizes λ; every other setting is the same for all of them, as the study asks."""
    seeds: int = 3
    """Models per (arch, λ), with seeds seed, seed+1, ...: tables give mean and std over them."""
    examples: int = 8
    """Test images shown with their reconstructions in each arch's six-sub-image figure."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(len(self.archs) > 0, "archs must list at least one of mlp, conv")
        for arch in self.archs:
            one_of("archs", arch, STUDY_ARCHS)
        check(len(self.latents) > 0, "latents must list at least one code size, e.g. latents=[2,32]")
        positive("latents", self.latents)
        positive("seeds", self.seeds)
        positive("examples", self.examples)


def run(cfg: Config, out: Run) -> None:
    device = out.device
    data, x_train, y_train, x_test, y_test, x_val = load_images_and_labels(cfg, device)
    shape = data.image_shape
    # The best constant image under L1 is the pixel-wise median: what a collapsed model can reach at most.
    median = x_train.median(dim=0).values
    constant_l1 = F.l1_loss(median.expand_as(x_test), x_test).item()
    out.text("data", f"{data.name} ({data.source}): {len(x_train)} training and {len(x_test)} test images of "
             f"{shape[0]}x{shape[1]} pixels in [0, 1]. {design(shape)}", title="Data and models")

    # Train: every (arch, λ, seed) is an independent model; they share the cores side by side.
    specs = [AutoencoderSpec(arch, latent, seed) for arch in cfg.archs for latent in cfg.latents
            for seed in range(cfg.seed, cfg.seed + cfg.seeds)]
    loss_rows, test_rows, class_rows, models, drawn_status = [], [], [], {}, {}
    trained = train_all(specs, cfg, x_train, shape, out, x_val)
    # Measuring a model on every image is independent of the others: side by side on the cores too
    # (each encodes and decodes every image once, in chunks of INFERENCE_CHUNK).
    per_image = [training_flops_per_example(t.model, x_train[:1]) / 3 for t in trained]
    measured = run_independent(lambda t: _measure(t.model, shape, x_train, y_train, x_test, y_test), trained,
                               costs=[f * (len(x_train) + len(x_test)) for f in per_image],
                               step_flops=INFERENCE_CHUNK * max(per_image), device=device)
    for t, measures in zip(trained, measured):
        arch, latent, seed = t.spec.arch, t.spec.latent, t.spec.seed
        for record in t.result.history:
            out.log(arch=arch, latent=latent, seed=seed, **record)
            loss_rows.append({"arch": arch, "latent": latent, "seed": seed, "epoch": record["epoch"],
                              "train_l1": record["train_loss"]})
        row = {"arch": arch, "latent": latent, "seed": seed, "status": t.result.status,
               "train_time_s": t.result.seconds, "train_cpu_s": t.cpu_seconds,
               **measures}
        test_rows.append(row)
        class_rows += [{"arch": arch, "latent": latent, "seed": seed, "class": data.class_names[c], "test_l1": v}
                       for c, v in enumerate(row.pop("per_class"))]
        save_checkpoint(out, checkpoint_name(arch, latent, seed), t.model, architecture=t.description, config=cfg,
                        dataset=data.name, test_l1=row["test_l1"], dead_units=row["dead_units"])
        if seed == cfg.seed:
            models[arch, latent] = t.model
            drawn_status[arch, latent] = t.result.status

    # Tables: the study's loss against epoch, then test errors and per-class errors over seeds.
    out.table("loss", loss_rows, columns=["arch", "latent", "seed", "epoch", "train_l1"], title="Training loss",
              caption="Mean L1 over each epoch's minibatches, per model.")
    summary = mean_std(test_rows, ["arch", "latent"], TEST_VALUES)
    extra = ["n"] if "n" in summary[0] else []
    out.table("test", summary, columns=["arch", "latent", *with_std(summary, TEST_VALUES), *extra],
              title="Errors after training",
              caption=f"Mean (and std) over {cfg.seeds} seed(s). {COLUMNS_EXPLAINED} The best constant image "
                      f"(the pixel-wise median) has test L1 {constant_l1:.4f}.")
    out.table("runs", test_rows, columns=["arch", "latent", "seed", "status", "collapsed", *TEST_VALUES],
              title="Every model", caption="collapsed: the model reconstructs every test image as the same image.")
    per_class = mean_std(class_rows, ["arch", "latent", "class"], ["test_l1"])
    out.table("per_class", per_class, columns=["arch", "latent", "class", *with_std(per_class, ["test_l1"])],
              title="Test L1 per class")

    # Figures: curves with bands, the study's six sub-images per arch, code spaces, interpolation.
    out.figure("loss", _plot_loss(loss_rows), title="Training loss against epoch",
               caption="Mean over seeds; the band spans the lowest to the highest seed.")
    picks = torch.as_tensor(_first_per_class(y_test.cpu().numpy(), cfg.examples), device=device)
    for arch in cfg.archs:
        out.figure(f"study_{arch}", _plot_study(loss_rows, models, arch, cfg.latents, x_test[picks], shape),
                   title=f"{arch}: loss, test inputs and reconstructions for each λ (the study's figure)",
                   caption=f"One row per λ: training loss (mean, band over seeds), {len(picks)} test images, "
                           f"and their reconstructions by the model of seed {cfg.seed}.")
    out.figure("codes", _plot_codes(models, x_test, y_test, data.class_names, cfg.seed),
               title="Test images in code space, coloured by class",
               caption="λ = 2: the code itself; larger λ: the first two principal components of the codes.")
    for arch in cfg.archs:
        if 2 in cfg.latents and drawn_status[arch, 2] == "done":  # a diverged model's codes are NaN
            out.figure(f"plane_{arch}", _plot_plane(models[arch, 2], x_test, y_test, shape),
                       title=f"{arch}, λ = 2: the code plane and what the decoder draws across it",
                       caption="Left: test codes by class; right: images decoded at a 12 x 12 grid of codes "
                               "spanning the same range (1st to 99th percentile of the test codes); a dead unit "
                               "stays at its one value, so the grid repeats one column.")
    pair = _pair(y_test)
    out.figure("interpolation", _plot_interpolation(models, x_test[pair], shape),
               title="Linear interpolation between two test images",
               caption="Each row decodes (1 - t) z_a + t z_b for t from 0 to 1; the last row blends pixels.")
    out.figure("per_class", _plot_per_class(per_class, data.class_names), title="Test L1 per class")
    out.text("comparison", _comparison(summary, test_rows, constant_l1),
             title=f"λ = {min(cfg.latents)} against λ = {max(cfg.latents)}")
    out.text("model", "\n\n".join(str(models[arch, cfg.latents[0]]) for arch in cfg.archs),
             title=f"Models (print(model), λ = {cfg.latents[0]})", code=True)
    finished = [r for r in summary if np.isfinite(r["test_l1"])]
    best = min(finished or summary, key=lambda r: r["test_l1"])  # a diverged model's NaN never wins
    out.summary(headline="best_test_l1", best_test_l1=best["test_l1"], best_model=f"{best['arch']} λ={best['latent']}",
                constant_test_l1=constant_l1,
                **{f"{r['arch']}_latent{r['latent']}_test_l1": r["test_l1"] for r in summary},
                **{f"{r['arch']}_latent{r['latent']}_train_time_s": r["train_time_s"] for r in summary},
                **{f"{r['arch']}_latent{r['latent']}_train_cpu_s": r["train_cpu_s"] for r in summary},
                **best_val_l1(trained))
    raise_if_all_pruned(trained)
    if not finished:
        out.mark_diverged("every autoencoder diverged (NaN/Inf loss)")


def _measure(model, shape, x_train, y_train, x_test, y_test) -> dict:
    """Errors, dead units and what the code knows of the class, for one trained model."""
    codes = encode_all(model, x_train)
    if not torch.isfinite(codes).all():
        return {k: float("nan") for k in TEST_VALUES if k not in ("train_time_s", "train_cpu_s")} | {
            "collapsed": False, "per_class": [float("nan")] * (int(y_test.max()) + 1)}
    test_codes = encode_all(model, x_test)
    recon = decode_all(model, test_codes)
    dead = (recon == 0).all(dim=0) & (x_test > 0).any(dim=0)
    return {"train_l1": F.l1_loss(decode_all(model, codes), x_train).item(),
            "test_l1": F.l1_loss(recon, x_test).item(), "test_mse": F.mse_loss(recon, x_test).item(),
            "dead_units": int(dead_units(codes).sum()),
            # output pixels the final ReLU has switched off for every test image although some image has ink there
            "dead_pixels": int(dead.sum()), "dead_pixel_l1": (x_test[:, dead].sum() / x_test.numel()).item(),
            "code_knn_acc": class_knn_accuracy(codes, y_train, test_codes, y_test),
            "edges_kept": 100.0 * edge_strength(recon, shape) / edge_strength(x_test, shape),
            # collapsed: the output no longer depends on the input (every image decodes alike)
            "collapsed": bool(recon.std(dim=0).max() < 1e-6),
            "per_class": per_class_l1(recon, x_test, y_test)}


def _first_per_class(labels: np.ndarray, n: int) -> list[int]:
    """``n`` test indices cycling through the classes (first of class 0, first of class 1, ...)."""
    classes = np.unique(labels)
    return [int(np.flatnonzero(labels == classes[i % len(classes)])[i // len(classes)]) for i in range(n)]


def _pair(labels: torch.Tensor) -> torch.Tensor:
    """The first test image of the first class and of the last: two that look different."""
    y = labels.cpu()
    return torch.stack([torch.nonzero(y == y.min())[0, 0], torch.nonzero(y == y.max())[0, 0]]).to(labels.device)


def _curves(loss_rows: list[dict], arch: str, latent: int) -> tuple[np.ndarray, np.ndarray]:
    rows = [r for r in loss_rows if r["arch"] == arch and r["latent"] == latent]
    seeds = sorted({r["seed"] for r in rows})
    epochs = max(r["epoch"] for r in rows)
    curves = np.full((len(seeds), epochs), np.nan)
    for r in rows:
        curves[seeds.index(r["seed"]), r["epoch"] - 1] = r["train_l1"]
    return np.arange(1, epochs + 1), curves


def _band(ax, epochs: np.ndarray, curves: np.ndarray, label: str) -> None:
    # Over the seeds that have a number (a diverged seed's epochs are NaN); an epoch no seed has stays
    # NaN, without the "mean of empty slice" warnings np.nanmean/nanmin would print for it.
    known = ~np.isnan(curves)
    mean = np.where(known, curves, 0).sum(axis=0) / np.where(known.any(axis=0), known.sum(axis=0), np.nan)
    line, = ax.plot(epochs, mean, label=label)
    if len(curves) > 1:
        ax.fill_between(epochs, np.fmin.reduce(curves, axis=0), np.fmax.reduce(curves, axis=0),
                        color=line.get_color(), alpha=0.25, linewidth=0)


def _plot_loss(loss_rows: list[dict]):
    fig, axes = new_figure(size=(5.5, 3.6))
    ax = axes[0, 0]
    for arch, latent in dict.fromkeys((r["arch"], r["latent"]) for r in loss_rows):
        _band(ax, *_curves(loss_rows, arch, latent), f"{arch} λ={latent}")
    ax.set(xlabel="epoch", ylabel="train L1", yscale=log_scale_if_any([[r["train_l1"] for r in loss_rows]]),
           title="Training loss (mean, min-max over seeds)")
    ax.legend(fontsize=8)
    return fig


def _plot_study(loss_rows, models, arch: str, latents: list[int], images: torch.Tensor, shape):
    fig, axes = new_figure(ncols=3, nrows=len(latents), size=(3.4, 2.6))
    columns = 4
    for i, latent in enumerate(latents):
        ax = axes[i, 0]
        _band(ax, *_curves(loss_rows, arch, latent), f"λ={latent}")
        ax.set(xlabel="epoch", ylabel="train L1", title=f"{arch}, λ = {latent}: training loss")
        recon = decode_all(models[arch, latent], encode_all(models[arch, latent], images))
        for j, (what, batch) in enumerate((("input", images), ("reconstruction", recon)), start=1):
            axes[i, j].imshow(mosaic(batch.cpu().numpy(), shape, columns), cmap="gray", vmin=0, vmax=1)
            axes[i, j].set_title(f"λ = {latent}: {what}")
            axes[i, j].axis("off")
    return fig


def _plot_codes(models, x_test, y_test, class_names, seed: int):
    from sklearn.decomposition import PCA

    keys = list(models)
    fig, axes = new_figure(ncols=len(keys), size=(3.6, 3.4))
    labels = y_test.cpu().numpy()
    scatter = None
    for ax, (arch, latent) in zip(axes[0], keys):
        codes = encode_all(models[arch, latent], x_test).cpu().numpy()
        if not np.isfinite(codes).all():  # a diverged model has no code space to draw (PCA refuses NaN)
            ax.set(title=f"{arch}, λ = {latent}: diverged", xticks=[], yticks=[])
            continue
        how = "code"
        if latent > 2:
            codes, how = PCA(n_components=2, random_state=seed).fit_transform(codes), "PCA of codes"
        elif latent == 1:
            codes, how = np.column_stack([codes[:, 0], np.zeros(len(codes))]), "code"
        scatter = ax.scatter(codes[:, 0], codes[:, 1], c=labels, cmap="tab10", s=2, alpha=0.6, vmin=-0.5,
                             vmax=len(class_names) - 0.5, rasterized=True)
        ax.set(title=f"{arch}, λ = {latent} ({how})", xticks=[], yticks=[])
    if scatter is not None:
        cbar = fig.colorbar(scatter, ax=axes[0].tolist(), ticks=range(len(class_names)), shrink=0.8)
        cbar.ax.set_yticklabels(class_names, fontsize=7)
    return fig


def _plot_plane(model, x_test, y_test, shape, n: int = 12):
    codes = encode_all(model, x_test).cpu().numpy()
    lo, hi = np.percentile(codes, 1, axis=0), np.percentile(codes, 99, axis=0)
    flat = hi - lo < 1e-6  # a dead unit: every image has the same value there
    u, v = np.linspace(lo[0], hi[0], n), np.linspace(hi[1], lo[1], n)  # top row = largest second unit
    grid = torch.tensor([[a, b] for b in v for a in u], dtype=torch.float32, device=x_test.device)
    # show a dead unit in a range as wide as the live one's: the grid is then one column repeated,
    # the only images this encoder and decoder can produce
    half = 0.5 * (max(hi - lo) if not flat.all() else 2.0)
    lo, hi = np.where(flat, lo - half, lo), np.where(flat, hi + half, hi)
    images = decode_all(model, grid).cpu().numpy()
    fig, axes = new_figure(ncols=2, size=(4.2, 4.0))
    axes[0, 0].scatter(codes[:, 0], codes[:, 1], c=y_test.cpu().numpy(), cmap="tab10", s=2, alpha=0.6,
                       rasterized=True)
    extent = (lo[0], hi[0], lo[1], hi[1])
    axes[0, 1].imshow(mosaic(images, shape, n, gap=0), cmap="gray", vmin=0, vmax=1, extent=extent, aspect="auto")
    dead = f" (dead: unit {' and '.join(str(i + 1) for i in np.flatnonzero(flat))})" if flat.any() else ""
    for ax, title in zip(axes[0], ("test codes by class" + dead, "decoded grid")):
        ax.set(xlim=extent[:2], ylim=extent[2:], xlabel="unit 1", ylabel="unit 2", title=title)
    return fig


def _plot_interpolation(models, pair: torch.Tensor, shape, steps: int = 9):
    t = torch.linspace(0, 1, steps, device=pair.device)[:, None]
    rows, names = [], []
    for (arch, latent), model in models.items():
        za, zb = encode_all(model, pair)
        rows.append(decode_all(model, (1 - t) * za + t * zb).cpu().numpy())
        names.append(f"{arch} λ={latent}")
    rows.append(((1 - t) * pair[0] + t * pair[1]).cpu().numpy())
    names.append("pixels")
    fig, axes = new_figure(size=(0.75 * steps + 1.2, 0.8 * len(rows) + 0.3))
    ax = axes[0, 0]
    ax.imshow(mosaic(np.concatenate(rows), shape, steps), cmap="gray", vmin=0, vmax=1)
    h = shape[0] + 1
    ax.set_yticks([i * h + shape[0] / 2 for i in range(len(rows))], names, fontsize=8)
    ax.set_xticks([i * (shape[1] + 1) + shape[1] / 2 for i in range(steps)],
                  [f"{v:.2g}" for v in t[:, 0].tolist()], fontsize=7)
    ax.set_xlabel("t")
    ax.tick_params(length=0)
    return fig


def _plot_per_class(per_class: list[dict], class_names: list[str]):
    keys = list(dict.fromkeys((r["arch"], r["latent"]) for r in per_class))
    fig, axes = new_figure(size=(max(5.0, 0.55 * len(class_names) * len(keys) / 2), 3.4))
    ax, width = axes[0, 0], 0.8 / len(keys)
    for k, (arch, latent) in enumerate(keys):
        values = [next(r["test_l1"] for r in per_class if (r["arch"], r["latent"], r["class"]) == (arch, latent, c))
                  for c in class_names]
        ax.bar(np.arange(len(class_names)) + (k - (len(keys) - 1) / 2) * width, values, width,
               label=f"{arch} λ={latent}")
    ax.set_xticks(range(len(class_names)), class_names, rotation=30 if max(map(len, class_names)) > 2 else 0,
                  fontsize=8)
    ax.set(ylabel="test L1", title="Reconstruction error per class (mean over seeds)")
    ax.legend(fontsize=7)
    return fig


def _comparison(summary: list[dict], test_rows: list[dict], constant_l1: float) -> str:
    """Per arch: how the smallest and the largest λ differ, in numbers from this run."""
    lines = []
    for arch in dict.fromkeys(r["arch"] for r in summary):
        rows = sorted((r for r in summary if r["arch"] == arch), key=lambda r: r["latent"])
        small, large = rows[0], rows[-1]
        text = f"**{arch}:** test L1 {small['test_l1']:.4f} at λ = {small['latent']}"
        if large is not small:
            text += (f" against {large['test_l1']:.4f} at λ = {large['latent']} "
                     f"({small['test_l1'] / large['test_l1']:.2f}x the error); the code predicts the class of "
                     f"{small['code_knn_acc']:.1f}% of test images (5 nearest training codes) at λ = "
                     f"{small['latent']} and {large['code_knn_acc']:.1f}% at λ = {large['latent']}; "
                     f"reconstructions have {small['edges_kept']:.0f}% and {large['edges_kept']:.0f}% of the "
                     "inputs' edge strength")
        for r in rows:
            if r["dead_pixels"] > 0:
                text += (f"; at λ = {r['latent']} the output ReLU is off for every image at {r['dead_pixels']:.3g} "
                         f"pixels on average (dark dots in the reconstructions), costing {r['dead_pixel_l1']:.2g} "
                         f"({100 * r['dead_pixel_l1'] / r['test_l1']:.0f}%) of its test L1 "
                         "(a sigmoid output, output_activation=sigmoid, is never exactly zero)")
            if r["dead_units"] > 0:
                text += (f"; at λ = {r['latent']} {r['dead_units']:.3g} of {r['latent']} code units are dead on "
                         "average (zero for every training image)")
            runs = [t for t in test_rows if (t["arch"], t["latent"]) == (arch, r["latent"])]
            collapsed = sum(t["collapsed"] for t in runs)
            if collapsed:
                text += (f"; at λ = {r['latent']} {collapsed} of {len(runs)} models collapsed to one constant output "
                         f"(test L1 {min(t['test_l1'] for t in runs if t['collapsed']):.4f} or more, the best constant "
                         f"image {constant_l1:.4f})")
                if any(t["dead_units"] == r["latent"] for t in runs):
                    text += ", some with every code unit dead: latent_activation=identity avoids that"
        lines.append(text + ".")
    lines.append(f"For scale: the best constant image (the pixel-wise median of the training set) has test L1 "
                 f"{constant_l1:.4f}.")
    return "\n\n".join(lines)
