"""Optimisation & CNN study, Question 3: decode the mean of the training set's codes.

The study takes the convolutional autoencoders of Q2.2 (λ = 2 and λ = 32), passes the
whole training set through the encoder, averages the codes, z_mean = mean_i z_i, feeds
z_mean to the decoder and asks what the image shows (one figure of two sub-images):
the weights are said to hold what images have in common and the code what is
particular to each. Here the models come from an ``autoencoder`` run
(``from_run=RUN_DIR``, loaded from its checkpoints) or are trained here. Beyond the
study: the mean code of each class decoded, the decoded mean beside the pixel-wise
mean image and the mean of the reconstructions, and a note, computed from the run,
on where the mean code lies among the training codes and what the decoder makes of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import numpy as np
import torch
import torch.nn.functional as F

from trainlab.analysis.reconstruction import edge_strength
from trainlab.checkpoints import checkpoint_info, load_checkpoint, save_checkpoint
from trainlab.config import check, one_of, positive
from trainlab.errors import ConfigError
from trainlab.experiments._autoencoder import (AutoencoderConfig, best_val_l1, checkpoint_name, load_images_and_labels,
                                               raise_if_all_pruned, train_all)
from trainlab.nn.autoencoder import STUDY_ARCHS, build_autoencoder, dead_units, decode_all, encode_all
from trainlab.report.figures import mosaic, new_figure
from trainlab.runs import Run
from trainlab.train.autoencoder import AutoencoderSpec

NAME = "autoencoder-mean-latent"
STUDY = "optim-cnn"
QUESTION = "Q3"
SUMMARY = "decode the mean code of the training set (and of each class) for code sizes 2 and 32"
RUNTIME = "~85 s"  # bench/runtimes.py, 2026-12-06 (85.5 s), one at a time on the 2-core machine
QUICK = {"dataset": "digits", "epochs": 15, "batch_size": 64}

NEIGHBOURS = 50
SHARP = 80.0
"""Edge strength, in % of a typical test image's, from which a decoded image counts as sharp."""


@dataclass
class Config(AutoencoderConfig):
    from_run: Optional[str] = None
    """Folder of an ``autoencoder`` run whose checkpoints to decode; None trains the models here."""
    arch: str = "conv"
    """Model whose codes are averaged: conv (the study's Q2.2 model) or mlp."""
    latents: List[int] = field(default_factory=lambda: [2, 32])
    """Code sizes λ, one model each (the study: 2 and 32)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        one_of("arch", self.arch, STUDY_ARCHS)
        check(len(self.latents) > 0, "latents must list at least one code size, e.g. latents=[2,32]")
        positive("latents", self.latents)


def run(cfg: Config, out: Run) -> None:
    device = out.device
    checkpoints = _from_run_checkpoints(cfg)  # before the data: a wrong from_run is wrong whatever data is installed
    data, x_train, y_train, x_test, y_test, x_val = load_images_and_labels(cfg, device)
    shape, n_classes = data.image_shape, data.num_classes
    pixel_mean = x_train.mean(dim=0)
    class_means = torch.stack([x_train[y_train == c].mean(dim=0) for c in range(n_classes)])
    typical_edges = edge_strength(x_test, shape)

    models, trained = _models(cfg, out, data, x_train, x_val, device, checkpoints)
    rows, class_rows, decoded, per_class, recon_means, notes = [], [], {}, {}, {}, []
    for latent in cfg.latents:
        model, origin = models[latent]
        codes = encode_all(model, x_train)
        mu = codes.mean(dim=0, keepdim=True)  # the study's z_mean over the whole training set
        decoded[latent] = decode_all(model, mu)[0]
        out.save_array(f"arrays/mean_code_latent{latent}.npy", mu[0].cpu().numpy())
        out.save_array(f"arrays/decoded_mean_latent{latent}.npy", decoded[latent].reshape(shape).cpu().numpy())
        recon_means[latent] = decode_all(model, codes).mean(dim=0)
        mu_c = torch.stack([codes[y_train == c].mean(dim=0) for c in range(n_classes)])
        per_class[latent] = decode_all(model, mu_c)
        stats = _where_the_mean_lies(codes, y_train, mu[0])
        row = {"latent": latent, "model": origin, "dead_units": int(dead_units(codes).sum()), **stats,
               "l1_to_pixel_mean": F.l1_loss(decoded[latent], pixel_mean).item(),
               "recon_mean_l1_to_pixel_mean": F.l1_loss(recon_means[latent], pixel_mean).item(),
               "edges_pct": 100 * edge_strength(decoded[latent][None], shape) / typical_edges,
               "collapsed": bool(decode_all(model, codes[:1000]).std(dim=0).max() < 1e-6)}
        dist = (class_means - decoded[latent]).abs().mean(dim=1)
        row["closest_class_mean"] = data.class_names[int(dist.argmin())]
        row["l1_to_closest_class_mean"] = float(dist.min())
        row["neighbour_class"] = data.class_names[row["neighbour_class"]]
        rows.append(row)
        for c in range(n_classes):
            class_rows.append({"latent": latent, "class": data.class_names[c],
                               "l1_to_class_pixel_mean": F.l1_loss(per_class[latent][c], class_means[c]).item(),
                               "edges_pct": 100 * edge_strength(per_class[latent][c][None], shape) / typical_edges})
        notes.append(_explain(row, pixel_edges=100 * edge_strength(pixel_mean[None], shape) / typical_edges))

    out.text("data", f"{data.name} ({data.source}): the codes of all {len(x_train)} training images are averaged. "
             f"Models: {cfg.arch}, " + "; ".join(f"λ = {r['latent']}: {r['model']}" for r in rows) + ".",
             title="Data and models")
    out.figure("mean_code", _plot_row([decoded[l] for l in cfg.latents], [f"decode(mean code), λ = {l}"
                                                                         for l in cfg.latents], shape),
               title="The decoded mean code (the study's figure)",
               caption="The codes of every training image averaged, then decoded.")
    images = [img for l in cfg.latents for img in (decoded[l], recon_means[l])] + [pixel_mean]
    titles = [t for l in cfg.latents for t in (f"decode(mean z), λ={l}", f"mean of decode(z), λ={l}")]
    out.figure("against_pixel_mean", _plot_row(images, titles + ["pixel-wise mean"], shape),
               title="Decoding the mean is not the mean of the decoded images",
               caption="L1 to the pixel-wise mean image: " + "; ".join(
                   f"λ = {r['latent']}: decoded mean code {r['l1_to_pixel_mean']:.3f}, mean of the reconstructions "
                   f"{r['recon_mean_l1_to_pixel_mean']:.3f}" for r in rows) + ".")
    out.figure("class_means", _plot_classes(per_class, class_means, cfg.latents, data.class_names, shape),
               title="The mean code of each class, decoded, beside the class's pixel-wise mean")
    out.table("mean_code", rows, title="Where the mean code lies and what it decodes to",
              columns=["latent", "collapsed", "dead_units", "isolation", "zero_share", "all_on_share",
                       "neighbour_class", "neighbour_share", "closest_class_mean", "l1_to_closest_class_mean",
                       "l1_to_pixel_mean", "recon_mean_l1_to_pixel_mean", "edges_pct"],
              caption=f"isolation: distance from the mean code to the nearest training code over the median "
                      f"distance between a training code and its nearest neighbour (>> 1: a region no image maps "
                      f"to); zero_share: % of the live code entries that the ReLU sets to zero; all_on_share: % of "
                      f"training codes with every live unit on, as in the mean code; neighbour_class, "
                      f"neighbour_share: the commonest class among the {NEIGHBOURS} training codes nearest the "
                      f"mean code and its %; l1_*: mean absolute pixel difference; edges_pct: edge strength in % "
                      f"of a typical test image's (low: blurred).")
    out.table("class_means", class_rows, columns=["latent", "class", "l1_to_class_pixel_mean", "edges_pct"],
              title="Decoded class-mean codes against the class's pixel-wise mean image")
    out.text("explanation", "\n\n".join(notes), title="What the decoded mean shows")
    out.summary(headline=f"l1_to_pixel_mean_latent{cfg.latents[0]}",
                **{f"l1_to_pixel_mean_latent{r['latent']}": r["l1_to_pixel_mean"] for r in rows},
                **{f"isolation_latent{r['latent']}": r["isolation"] for r in rows},
                **best_val_l1(trained))  # with val_fraction > 0: a tune's objective
    raise_if_all_pruned(trained)


def _from_run_checkpoints(cfg: Config) -> dict[int, dict]:
    """λ -> the description of ``from_run``'s checkpoint (none without from_run), each checked against the config."""
    if cfg.from_run is None:
        return {}
    infos = {}
    for latent in cfg.latents:
        info = checkpoint_info(cfg.from_run, checkpoint_name(cfg.arch, latent, cfg.seed))
        if info.get("dataset") not in (None, cfg.dataset):
            raise ConfigError(f"from_run={cfg.from_run} was trained on {info['dataset']}; "
                              f"add dataset={info['dataset']}")
        infos[latent] = info
    return infos


def _models(cfg: Config, out, data, x_train: torch.Tensor, x_val: torch.Tensor | None, device,
            checkpoints: dict[int, dict]) -> tuple[dict[int, tuple], list]:
    """λ -> (model, where it came from): loaded from ``from_run``'s checkpoints, or trained (and saved) here;
    and the trained models' results (none when loaded)."""
    if cfg.from_run is None:
        trained = train_all([AutoencoderSpec(cfg.arch, latent, cfg.seed) for latent in cfg.latents], cfg, x_train,
                            data.image_shape, out, x_val)
        models = {}
        for t in trained:
            for record in t.result.history:
                out.log(latent=t.spec.latent, **record)
            save_checkpoint(out, checkpoint_name(cfg.arch, t.spec.latent, cfg.seed), t.model,
                            architecture=t.description, config=cfg, dataset=data.name)
            models[t.spec.latent] = (t.model, f"trained here ({cfg.epochs} epochs, {t.result.seconds:.0f} s, final "
                                          f"train L1 {t.result.final_loss():.4f}, status {t.result.status})")
        return models, trained
    return {latent: _load(cfg, data, latent, checkpoints[latent], device) for latent in cfg.latents}, []


def _load(cfg: Config, data, latent: int, info: dict, device) -> tuple:
    """The model of this λ from ``from_run``'s checkpoint (described by ``info``), after checking its image size."""
    name = checkpoint_name(cfg.arch, latent, cfg.seed)
    arch = dict(info["architecture"])
    try:  # the JSON description is checked in full (keys, types, sizes, memory) before anything is built
        model = build_autoencoder(arch.pop("kind", None), **arch).to(device)
    except ConfigError as exc:
        raise ConfigError(f"from_run={cfg.from_run}: checkpoint {name!r}: {exc}") from None
    size = arch.get("image_shape") or [arch.get("in_dim", 784)]
    if int(np.prod(size)) != int(np.prod(data.image_shape)):
        raise ConfigError(f"from_run={cfg.from_run}: checkpoint {name!r} takes images of {size} pixels, "
                          f"{data.name} has {list(data.image_shape)}")
    load_checkpoint(cfg.from_run, name, model, architecture={"kind": cfg.arch, "latent": latent})
    return model, f"checkpoint {Path(cfg.from_run) / 'checkpoints' / name}.pt"


def _where_the_mean_lies(codes: torch.Tensor, labels: torch.Tensor, mu: torch.Tensor, sample: int = 5000) -> dict:
    """How far the mean code is from the training codes, and which classes surround it."""
    rng = np.random.default_rng(0)
    pick = torch.as_tensor(rng.permutation(len(codes))[:sample], device=codes.device)
    sub = codes[pick]
    d = torch.cdist(sub, sub)
    d.fill_diagonal_(float("inf"))
    spacing = d.min(dim=1).values.median().item()
    to_mu = (codes - mu).norm(dim=1)
    near = labels[to_mu.argsort()[:NEIGHBOURS]]
    counts = torch.bincount(near)
    live = ~dead_units(codes)
    on = codes[:, live] > 0
    return {"isolation": to_mu.min().item() / max(spacing, 1e-12), "neighbour_class": int(counts.argmax()),
            "neighbour_share": 100.0 * counts.max().item() / NEIGHBOURS,
            "zero_share": 100.0 * (1 - on.float().mean().item()) if live.any() else float("nan"),
            "all_on_share": 100.0 * on.all(dim=1).float().mean().item() if live.any() else float("nan")}


def _explain(row: dict, pixel_edges: float) -> str:
    """The note on one λ, every clause chosen and filled in from the run's numbers."""
    latent, name = row["latent"], row["neighbour_class"]
    text = f"**λ = {latent}:** "
    if row["collapsed"]:
        return text + (f"this model has collapsed: it decodes every training image to the same image, so its mean "
                       f"code decodes to that image too (L1 {row['l1_to_pixel_mean']:.3f} from the pixel-wise mean, "
                       f"{row['edges_pct']:.0f}% of a typical image's edge strength) and shows nothing about the "
                       "data. Train it again with another seed or latent_activation=identity.")
    if row["dead_units"]:
        text += f"{row['dead_units']} of {latent} code units are dead, so the mean is 0 there as for every image. "
    if row["zero_share"] == row["zero_share"] and row["zero_share"] > 0:
        text += (f"The ReLU sets {row['zero_share']:.0f}% of the live code entries to zero; {row['all_on_share']:.0f}% "
                 "of training codes have every live unit on, as the mean code has. ")
    if row["isolation"] > 2:
        text += (f"The mean code lies {row['isolation']:.1f} times the typical spacing between neighbouring training "
                 "codes from the nearest one, in a region no training image maps to, so the decoder is "
                 "extrapolating. ")
    else:
        text += (f"The mean code lies among the training codes ({row['isolation']:.1f} times the typical spacing "
                 f"from the nearest one); {row['neighbour_share']:.0f}% of its {NEIGHBOURS} nearest codes belong to "
                 f"class {name}. ")
    text += (f"Decoded, it has {row['edges_pct']:.0f}% of a typical image's edge strength (the pixel-wise mean "
             f"image: {pixel_edges:.0f}%) and is closest to the mean image of class {row['closest_class_mean']} "
             f"(L1 {row['l1_to_closest_class_mean']:.3f}; to the pixel-wise mean of all images "
             f"{row['l1_to_pixel_mean']:.3f}). ")
    recon = row["recon_mean_l1_to_pixel_mean"]
    if row["edges_pct"] >= SHARP:
        text += ("So it is not an average image but one sharp image of the decoder's own making: averaging codes "
                 "does not average images, because the decoder is non-linear (the mean of the reconstructions, "
                 f"by contrast, is at L1 {recon:.3f} from the pixel-wise mean).")
    elif row["l1_to_pixel_mean"] <= 1.5 * recon:
        text += (f"So it is a blur close to the pixel-wise mean image, as the mean of the reconstructions is (L1 "
                 f"{recon:.3f} from it): what all images share, with the details of each averaged away.")
    else:
        text += (f"So it is a blur, but not the pixel-wise mean image (the mean of the reconstructions is at L1 "
                 f"{recon:.3f} from that): averaging codes does not average images, because the decoder is "
                 "non-linear.")
    return text


def _plot_row(images: list[torch.Tensor], titles: list[str], shape):
    fig, axes = new_figure(ncols=len(images), size=(2.2, 2.4))
    for ax, image, title in zip(axes[0], images, titles):
        ax.imshow(image.reshape(shape).cpu().numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    return fig


def _plot_classes(per_class: dict, class_means: torch.Tensor, latents: list[int], class_names: list[str], shape):
    rows = [per_class[l].cpu().numpy() for l in latents] + [class_means.cpu().numpy()]
    names = [f"decoded, λ={l}" for l in latents] + ["pixel-wise mean"]
    n = len(class_names)
    fig, axes = new_figure(size=(0.8 * n + 1.4, 0.85 * len(rows) + 0.6))
    ax = axes[0, 0]
    ax.imshow(mosaic(np.concatenate(rows), shape, n), cmap="gray", vmin=0, vmax=1)
    ax.set_yticks([i * (shape[0] + 1) + shape[0] / 2 for i in range(len(rows))], names, fontsize=8)
    ax.set_xticks([i * (shape[1] + 1) + shape[1] / 2 for i in range(n)], class_names, fontsize=7,
                  rotation=30 if max(map(len, class_names)) > 2 else 0)
    ax.tick_params(length=0)
    return fig
