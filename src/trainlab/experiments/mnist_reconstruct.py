"""MNIST MLP study, Q4: reconstruct digits with a one-hidden-layer MLP (784 -> 50 -> 784).

The study trained ``784 -> 50 (ReLU) -> 784 (Tanh)`` with MSE and Adam (lr 1e-3)
on all ten digits, reported train, validation and test MSE, and showed five test
images per digit beside their reconstructions. Here the same, with the loss
against epoch and the MSE stated in two pixel scales.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from trainlab.checkpoints import save_checkpoint
from trainlab.config import one_of, positive
from trainlab.data import describe_splits
from trainlab.device import global_seed, torch_generator
from trainlab.experiments._data import SplitDataConfig, load_splits
from trainlab.nn.autoencoder import MLPAutoencoder
from trainlab.nn.mlp import ACTIVATIONS
from trainlab.report.figures import new_figure
from trainlab.runs import Run
from trainlab.train.loop import OPTIMIZERS, check_lr, fit, make_optimizer
from trainlab.train.metrics import mean_loss

NAME = "mnist-reconstruct"
STUDY = "mlp"
QUESTION = "Q4"
SUMMARY = "MLP autoencoder 784 -> 50 -> 784 on all digits, MSE and reconstructions"
RUNTIME = "~23 s"  # bench/runtimes.py, 2026-12-06 (22.9 s), one at a time on the 2-core machine
QUICK = {"dataset": "digits", "epochs": 10}

STUDY_NUMBERS = """The study (MNIST, Adam lr 1e-3, 20 epochs) printed one loss per epoch, falling from
0.099 (epoch 1) to about 0.07 and then wandering between 0.064 and 0.075, and reported
validation and test MSE of 0.07 (two decimals). Its per-epoch numbers jump up and down
because they look like the loss of the last minibatch of each epoch; ours are the mean
over the whole epoch (training) and over the whole split (validation, test). The study
does not state its pixel scale; an MSE of 0.07 against a Tanh output fits pixels scaled
to [-1, 1] (torchvision's Normalize((0.5,), (0.5,))), which is our default."""


@dataclass
class Config(SplitDataConfig):
    hidden: int = 50
    """Width of the hidden layer (the code)."""
    activation: str = "relu"
    """Hidden activation."""
    output_activation: str = "tanh"
    """Output activation; tanh needs pixel_range=pm1 to reach every target value."""
    pixel_range: str = "pm1"
    """Scale of inputs and targets: pm1 ([-1, 1], matching Tanh) or unit ([0, 1])."""
    optimizer: str = "adam"
    """adam or sgd."""
    lr: float = 1e-3
    """Learning rate."""
    epochs: int = 20
    """Passes over the training split."""
    batch_size: int = 64
    """Minibatch size."""
    per_digit: int = 5
    """Test images shown per class, each beside its reconstruction."""

    def __post_init__(self) -> None:
        super().__post_init__()
        one_of("activation", self.activation, ACTIVATIONS)
        one_of("output_activation", self.output_activation, ACTIVATIONS)
        one_of("pixel_range", self.pixel_range, ("pm1", "unit"))
        one_of("optimizer", self.optimizer, OPTIMIZERS)
        positive("hidden", self.hidden)
        check_lr(self.optimizer, self.lr)
        positive("epochs", self.epochs)
        positive("batch_size", self.batch_size)
        positive("per_digit", self.per_digit)


def run(cfg: Config, out: Run) -> None:
    device = out.device

    # Data: all classes; pixels in [0, 1] from to_tensor, then optionally [-1, 1] for the Tanh output.
    data, pairs = load_splits(cfg, device)
    scale = 2.0 if cfg.pixel_range == "pm1" else 1.0
    split = {name: x * scale - (scale - 1.0) for name, (x, _) in pairs.items()}
    out.text("data", f"{describe_splits(data, pairs)}; pixels scaled to "
             f"{'[-1, 1]' if cfg.pixel_range == 'pm1' else '[0, 1]'}.", title="Data")

    # Model and training: reconstruct the input, MSE loss.
    with global_seed(cfg.seed):
        model = MLPAutoencoder(split["train"].shape[1], cfg.hidden, cfg.activation, cfg.output_activation).to(device)
    optimizer = make_optimizer(cfg.optimizer, model.parameters(), cfg.lr)
    loss_fn = nn.MSELoss()

    def validate(epoch: int) -> dict[str, float]:
        values = {"val_mse": mean_loss(model, split["val"], split["val"], loss_fn)}
        out.report_epoch(epoch, **values)  # a tune (--metric val_mse --mode min) may stop the run here
        return values

    result = fit(model, split["train"], split["train"], optimizer=optimizer, loss_fn=loss_fn, epochs=cfg.epochs,
                 batch_size=cfg.batch_size, generator=torch_generator(cfg.seed), on_epoch=validate,
                 desc="autoencoder")
    for record in result.history:
        out.log(**record)

    # Measure: MSE on every split after training, in the training scale and in [0, 1] pixel units.
    to_unit = 1.0 / scale**2  # MSE scales with the square of the pixel scale
    rows = []
    for name, x in split.items():
        mse = mean_loss(model, x, x, loss_fn) if result.status == "done" else float("nan")
        rows.append({"split": name, "mse": mse, "mse_unit_pixels": mse * to_unit, "images": len(x)})
    out.table("mse", rows, columns=["split", "mse", "mse_unit_pixels", "images"], title="Reconstruction MSE",
              caption=f"mse: mean over pixels and images in the training scale ({cfg.pixel_range}); "
                      "mse_unit_pixels: the same for pixels in [0, 1].")
    out.figure("loss", _plot_loss(result.history), title="Loss against epoch",
               caption="Training: mean minibatch loss over each epoch; validation: MSE after each epoch.")
    picks = _pick_per_class(data.test_labels, cfg.per_digit)
    with torch.inference_mode():
        model.eval()
        recon = model(split["test"][torch.as_tensor(picks, device=device)])
    images = ((split["test"][torch.as_tensor(picks, device=device)] + (scale - 1.0)) / scale).cpu().numpy()
    recon_np = ((recon + (scale - 1.0)) / scale).clamp(0, 1).cpu().numpy()
    out.figure("reconstructions",
               _plot_pairs(images, recon_np, data.image_shape, data.class_names, cfg.per_digit),
               title="Test images (left) and their reconstructions (right)",
               caption=f"The first {cfg.per_digit} test images of every class.")
    out.text("model", str(model), title="Model (print(model))", code=True)
    save_checkpoint(out, "autoencoder", model, config=cfg, architecture={
        "in_dim": split["train"].shape[1], "hidden": cfg.hidden, "activation": cfg.activation,
        "output_activation": cfg.output_activation})
    out.text("training", f"MSE loss, {cfg.optimizer} lr {cfg.lr}, {cfg.epochs} epochs, batch size "
             f"{cfg.batch_size}, {result.seconds:.1f} s of training on {device}; status {result.status}.",
             title="Training details")
    out.text("study_numbers", STUDY_NUMBERS, title="The study's numbers")
    out.summary(headline="test_mse", **{f"{r['split']}_mse": r["mse"] for r in rows},
                test_mse_unit_pixels=rows[-1]["mse_unit_pixels"], train_time_s=result.seconds)


def _pick_per_class(labels: np.ndarray, per_class: int) -> list[int]:
    """Indices of the first ``per_class`` examples of every class, class by class."""
    picks = []
    for c in np.unique(labels):
        picks.extend(np.flatnonzero(labels == c)[:per_class].tolist())
    return picks


def _plot_loss(history: list[dict]):
    fig, axes = new_figure()
    epochs = [r["epoch"] for r in history]
    axes[0, 0].plot(epochs, [r["train_loss"] for r in history], marker="o", label="train (epoch mean)")
    axes[0, 0].plot(epochs, [r.get("val_mse", float("nan")) for r in history], marker="s", label="validation")
    axes[0, 0].set(xlabel="epoch", ylabel="MSE", title="Reconstruction loss")
    axes[0, 0].legend()
    return fig


def _plot_pairs(images: np.ndarray, recon: np.ndarray, shape: tuple[int, int], class_names: list[str], per: int):
    """One row per class: ``per`` pairs of (original, reconstruction), drawn as one mosaic image."""
    rows, (h, w) = len(images) // per, shape
    gap, pair_gap = 1, 3  # pixels between images, and wider between pairs
    cell_w = 2 * w + gap + pair_gap
    mosaic = np.ones((rows * (h + gap), per * cell_w))
    for i in range(rows * per):
        r, c = divmod(i, per)
        top, left = r * (h + gap), c * cell_w
        mosaic[top : top + h, left : left + w] = images[i].reshape(shape)
        mosaic[top : top + h, left + w + gap : left + 2 * w + gap] = recon[i].reshape(shape)
    fig, axes = new_figure(size=(0.42 * 2 * per + 0.5, 0.42 * rows + 0.3))
    ax = axes[0, 0]
    ax.imshow(mosaic, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([c * cell_w + w for c in range(per)], ["orig | recon"] * per, fontsize=7)
    ax.set_yticks([r * (h + gap) + h / 2 for r in range(rows)], class_names[:rows], fontsize=7)
    ax.tick_params(length=0)
    return fig
