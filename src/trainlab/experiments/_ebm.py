"""Plumbing the two energy-based-model recipes share: the regressor they evaluate or sample.

Either the user's files (``weights=`` a state_dict of the study's ``EnergyRegressor``,
``data=`` a ``.pt`` with ``x`` and ``energy``), both loaded weights-only, or the embedded
default with a known answer: the probabilistic-PCA Gaussian fitted to images
(:class:`trainlab.mcmc.targets.GaussianEnergy`, exact density, exact draws), and a
regressor of the study's shape trained here on images and exact draws labelled with
that energy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from trainlab.checkpoints import FOLDER, list_checkpoints, read_checkpoint, save_checkpoint
from trainlab.config import check, one_of, positive
from trainlab.data import random_subset, to_tensor
from trainlab.data.tensors import load_energy_data, load_tensor_file
from trainlab.device import global_seed, torch_generator
from trainlab.errors import ConfigError, DataError
from trainlab.experiments._data import ImageDataConfig, load_data
from trainlab.files import read_json
from trainlab.mcmc.targets import GaussianEnergy
from trainlab.nn.energy import EnergyRegressor, halving_widths
from trainlab.report.folder import RUN_INFO, config_values
from trainlab.run_list import list_runs
from trainlab.train.adam import make_adam
from trainlab.train.loop import check_lr, fit
from trainlab.train.snapshots import SnapshotSlot
from trainlab.train.warmup_ema import warmup_cosine


@dataclass
class EnergyConfig(ImageDataConfig):
    """Where the energy regressor comes from, and how the default one is built and trained."""

    dataset: str = "fashion-mnist"
    """Images for the default energy: mnist, fashion-mnist or digits (8x8, no files needed)."""
    train_limit: Optional[int] = 10000
    """Training images used (a seeded subset) for the default energy and regressor; None uses all."""
    weights: Optional[str] = None
    """A .pt state_dict of the study's EnergyRegressor (torch.save(model.state_dict(), path)); None trains one here."""
    data: Optional[str] = None
    """A .pt holding x (n, d) and energy (n, 1), as a dict or a tuple (x, energy); used with weights=."""
    components: int = 10
    """Principal axes of the probabilistic-PCA Gaussian fitted to the images (the default energy)."""
    pixel_range: str = "pm1"
    """Pixel scale for the default energy: pm1 ([-1, 1]) or unit ([0, 1], 4x smaller variances)."""
    first_width: int = 4096
    """First hidden width of the default regressor; widths halve down to 2 (4096: the study's 14.4M parameters)."""
    draws_per_image: int = 1
    """Exact draws of the Gaussian added to the regression set per training image (where samplers go)."""
    init_active: Optional[float] = 0.5
    """Mean pre-activation of every hidden unit of the default regressor at the start, set on training points
    (data-dependent initialisation: every ReLU unit alive); null: He-normal weights with biases 0.5 and the
    output alone standardised, the earlier recipe, whose 2- and 4-wide layers die on some seeds."""
    epochs: int = 3
    """Training passes of the default regressor (Adam, MSE on standardised energies)."""
    warmup_epochs: int = 1
    """Passes over which the learning rate rises linearly to lr at the start, one step at a time: Adam's first
    full-size steps kill the default regressor's narrow layers on some seeds (bench/ebm_regressor.py); 0: none."""
    lr: float = 3e-4
    """Adam learning rate of the default regressor, after the warm-up. At first_width=4096, 1e-3 kills its narrow
    layers on some seeds however it starts, and 3e-4 without the warm-up did on one of six (bench/ebm_regressor.py);
    narrow ones (the quick profile's 64) train at 1e-3."""
    batch_size: int = 128
    """Minibatch size of the default regressor."""

    def __post_init__(self) -> None:
        super().__post_init__()
        one_of("pixel_range", self.pixel_range, ("pm1", "unit"))
        positive("components", self.components)
        positive("epochs", self.epochs)
        check(0 <= self.warmup_epochs <= self.epochs,
              f"warmup_epochs must be between 0 and epochs={self.epochs} (got {self.warmup_epochs})")
        check(self.init_active is None or math.isfinite(self.init_active),
              f"init_active must be a number or null (got {self.init_active})")
        check_lr("adam", self.lr)
        positive("batch_size", self.batch_size)
        check(self.draws_per_image >= 0, f"draws_per_image must be >= 0 (got {self.draws_per_image})")
        check(self.first_width >= 2 and self.first_width & (self.first_width - 1) == 0,
              f"first_width must be a power of two >= 2 (got {self.first_width})")
        check(self.data is None or self.weights is not None,
              "data= needs weights= too: the default regressor was trained on another energy")


@dataclass
class EnergySetup:
    """A regressor with the points it is tested on and, for the default, the true energy."""

    regressor: EnergyRegressor
    """The energy network, in eval mode, weights frozen."""
    x_test: Optional[torch.Tensor]
    """Test points (n, d), or None (weights without data)."""
    e_test: Optional[torch.Tensor]
    """Their true energies (n,)."""
    part: np.ndarray = field(default_factory=lambda: np.array([]))
    """Per test point, what it is: "image", "exact draw" or "file"."""
    target: Optional[GaussianEnergy] = None
    """The true energy (default only)."""
    images: Optional[torch.Tensor] = None
    """Held-out images in the energy's pixel scale (default only): chains start there."""
    describe: str = ""
    """One paragraph on where the regressor and the test points come from."""
    history: list = field(default_factory=list)
    """Training records (default only)."""
    train_seconds: float = 0.0
    status: str = "done"
    """done, or diverged when training did."""


def prepare(cfg: EnergyConfig, device: torch.device, need_data: bool = True,
            snapshot: SnapshotSlot | None = None) -> EnergySetup:
    """The user's regressor (and test set) from files, or the default trained here (its
    training kept in ``snapshot``, a resumed run's continuing from there)."""
    if cfg.weights is None:
        return train_default(cfg, device, snapshot)
    x = e = None
    if cfg.data is not None:
        x, e = load_energy_data(cfg.data)
    elif need_data:
        raise ConfigError("weights= needs data= (a .pt with x and energy) to evaluate on")
    state = finite_state(load_tensor_file(cfg.weights, "weights"), f"weights file {cfg.weights}")
    model = EnergyRegressor.from_state_dict(state, source=f"weights file {cfg.weights}",
                                            in_dim=None if x is None else x.shape[1])
    text = (f"Weights from {cfg.weights} ({model.in_dim} -> {' -> '.join(map(str, model.widths))} -> 1)"
            + (f"; {len(x)} test points of dimension {x.shape[1]} from {cfg.data}." if x is not None else "."))
    return EnergySetup(_freeze(model, device), None if x is None else x.to(device),
                       None if e is None else e.to(device), np.full(0 if x is None else len(x), "file"),
                       describe=text)


def train_default(cfg: EnergyConfig, device: torch.device, snapshot: SnapshotSlot | None = None) -> EnergySetup:
    """Fit the PPCA Gaussian to images, label images and exact draws with it, train the regressor
    (continuing from ``snapshot``'s epoch boundary, if it has one; everything before replays)."""
    from sklearn.decomposition import PCA

    data = load_data(cfg)
    keep = random_subset(len(data.train_labels), cfg.train_limit, seed=cfg.seed)
    train = energy_pixels(data.train_images[keep], cfg, "cpu")
    test = energy_pixels(data.test_images, cfg, "cpu")
    check(cfg.components < train.shape[1], f"components must be < the image size {train.shape[1]} "
          f"(got {cfg.components})")
    pca = PCA(n_components=cfg.components, svd_solver="full").fit(train.double().numpy())
    target = GaussianEnergy.from_pca(pca)
    gen = torch_generator(cfg.seed)
    x_train = torch.cat([train, target.sample(len(train) * cfg.draws_per_image, gen)])
    x_test = torch.cat([test, target.sample(len(test), gen)])
    part = np.array(["image"] * len(test) + ["exact draw"] * len(test))
    y_train = target(x_train)
    mu, sd = float(y_train.mean()), float(y_train.std())

    # scaled on a seeded draw of the regression set (images and exact draws): the targets' scale at the start
    init_batch = x_train[torch.randperm(len(x_train), generator=gen)[:4096]]
    with global_seed(cfg.seed):
        model = EnergyRegressor(train.shape[1], halving_widths(cfg.first_width)).init_for_training(
            init_batch, gen, active=cfg.init_active)
    model.to(device)
    optimizer = make_adam(model.parameters(), lr=cfg.lr)
    steps_per_epoch = math.ceil(len(x_train) / cfg.batch_size)
    warmup = warmup_cosine(optimizer, cfg.epochs * steps_per_epoch, cfg.warmup_epochs * steps_per_epoch,
                           decay=False) if cfg.warmup_epochs else None
    result = fit(model, x_train.to(device), ((y_train - mu) / sd)[:, None].to(device), optimizer=optimizer,
                 loss_fn=nn.functional.mse_loss, epochs=cfg.epochs, batch_size=cfg.batch_size,
                 generator=torch_generator(cfg.seed + 1), desc="regressor", snapshot=snapshot, lr_schedule=warmup)
    model.fold_output_scale(sd, mu)  # predicts energies in their own units; state_dict keeps the study's keys
    text = (f"Default energy: the probabilistic-PCA Gaussian ({cfg.components} principal axes, noise variance "
            f"{target.noise_variance:.4g}) fitted to {len(train)} {data.name} training images with pixels in "
            f"{'[-1, 1]' if cfg.pixel_range == 'pm1' else '[0, 1]'}; E(x) = -log p(x) exactly (scikit-learn's "
            f"PCA.score_samples). Its variances run from {target.noise_variance:.3g} to "
            f"{float(target.variances.max()):.3g}. Regression set: those images plus "
            f"{len(train) * cfg.draws_per_image} "
            f"exact draws, labelled with E; test set: the {len(test)} test images plus {len(test)} fresh exact draws. "
            f"Regressor {model.in_dim} -> {' -> '.join(map(str, model.widths))} -> 1 (ReLU), He-normal weights "
            + (f"rescaled on 4096 training points so that every hidden unit's pre-activation has mean "
               f"{cfg.init_active:g} and std 1 and the output mean 0 and std 1 (data-dependent initialisation)"
               if cfg.init_active is not None else "and biases 0.5, the output rescaled to mean 0 and std 1 on "
               "4096 training points") + f", Adam lr {cfg.lr}"
            + (f" reached by a linear warm-up over the first {cfg.warmup_epochs} epoch(s)" if cfg.warmup_epochs else "")
            + f", batch {cfg.batch_size}, "
            f"{len(result.history)} epochs on energies "
            f"standardised by their training mean {mu:.4g} and std {sd:.4g} (folded back into the last layer).")
    return EnergySetup(_freeze(model, device), x_test.to(device), target(x_test).to(device), part,
                       target=_target_to(target, device), images=test.to(device), describe=text,
                       history=result.history, train_seconds=result.seconds, status=result.status)


FAILED_FIT_R2 = 0.1
"""Test R^2 at or below which the regressor counts as not having learnt the energy. Trained well it ends
at R^2 0.6-0.9; where training fails it ends at 0 (a constant) or far below, as the earlier recipe
(constant-bias init, lr 1e-3, 5 epochs) did on half the seeds or more (bench/ebm_regressor.py)."""


def failed_fit_note(r2: float, trained_by: Optional[str], seed: int) -> str:
    """The verdict's warning when the regressor predicts the test energies no better than their mean (or
    NaN); empty otherwise. ``trained_by``: "here" (this run trained it, with ``seed``), the name of the
    ebm-eval run that did, or None (the user's weights). A run's status stays ``done``: the numbers are
    real, the model is just useless."""
    if r2 > FAILED_FIT_R2:
        return ""
    retrain = "try a lower lr= or another seed=, and do not sample this regressor with ebm-sample"
    if trained_by is None:
        what = "The given weights do not fit this test set."
    elif trained_by == "here":
        what = (f"Its training failed (seed {seed}): this deep, narrowing ReLU stack can end as a constant or "
                f"far off (a learning rate of 1e-3 did on half the seeds); {retrain}.")
    else:
        what = f"The ebm-eval run {trained_by} trained it and its training failed; {retrain}."
    return f" **The regressor has not learnt the energy** (R^2 = {r2:.3g} <= {FAILED_FIT_R2}). {what}"


def error_rows(pred: torch.Tensor, true: torch.Tensor, part: np.ndarray) -> list[dict]:
    """The test table's rows: MSE, MAE, baseline MSE, R^2 and energy spread per kind of point
    (``part``) and for all. Summed in float64 on the CPU (one copy; an Apple GPU has no float64)."""
    err = (pred - true).detach().cpu().double()  # the float32 errors, summed in float64
    true = true.detach().cpu().double()
    rows = []
    for name in [*dict.fromkeys(part.tolist()), "all"]:
        mask = torch.as_tensor(part == name if name != "all" else np.ones(len(part), bool))
        e, t = err[mask], true[mask]
        mse, baseline = float((e**2).mean()), float(((t - t.mean()) ** 2).mean())
        rows.append({"points": name, "n": int(mask.sum()), "mse": mse, "mae": float(e.abs().mean()),
                     "baseline_mse": baseline, "r2": 1 - mse / baseline if baseline > 0 else float("nan"),
                     "energy_mean": float(t.mean()), "energy_std": float(t.std())})
    return rows


def finite_state(state: Any, source: str) -> Any:
    """``state`` unchanged, unless one of its float tensors holds NaN or Inf: a model that diverged
    would give NaN energies (and an MSE of NaN) with status done, so such a file is refused."""
    if isinstance(state, dict):
        bad = [str(k) for k, v in state.items()
               if isinstance(v, torch.Tensor) and v.is_floating_point() and not bool(torch.isfinite(v).all())]
        if bad:
            raise DataError(f"{source} holds NaN or Inf values (in {', '.join(bad[:3])}); its model diverged: "
                            "give weights that are all finite")
    return state


def energy_pixels(images: np.ndarray, cfg: EnergyConfig, device: torch.device | str) -> torch.Tensor:
    """uint8 images as flat float32 rows in the default energy's pixel scale (``cfg.pixel_range``)."""
    x = to_tensor(images, device)
    return x * 2 - 1 if cfg.pixel_range == "pm1" else x


@torch.inference_mode()
def predict(model: EnergyRegressor, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """Energies (n,) in chunks."""
    return torch.cat([model(x[i:i + batch_size]).squeeze(-1) for i in range(0, len(x), batch_size)])


def save_models(out: Any, setup: EnergySetup, cfg: EnergyConfig) -> None:
    """The trained regressor and its true energy as checkpoints ``regressor`` and ``target``
    (:mod:`trainlab.checkpoints`), which ``ebm-sample from_run=`` reads back."""
    model, target = setup.regressor, setup.target
    save_checkpoint(out, "regressor", model, config=cfg,
                    architecture={"in_dim": model.in_dim, "widths": list(model.widths)})
    save_checkpoint(out, "target", target, config=cfg, architecture={
        "kind": "ppca-gaussian", "dim": int(target.mean.shape[-1]), "components": int(target.components.shape[0])})


def load_run(folder: str, device: torch.device) -> tuple[EnergyRegressor, Optional[GaussianEnergy]]:
    """The regressor (and the true energy, when there is one) an ebm-eval run saved."""
    folder = str(Path(folder).expanduser())
    path = Path(folder) / FOLDER
    state, info = read_checkpoint(folder, "regressor")
    state = finite_state(state, str(path / "regressor.pt"))
    model = EnergyRegressor.from_state_dict(state, source=str(path / "regressor.pt"))
    described = info["architecture"]
    if [described.get("in_dim"), described.get("widths")] != [model.in_dim, list(model.widths)]:
        raise DataError(f"{path / 'regressor.pt'} does not fit its regressor.json "
                        f"(in_dim {described.get('in_dim')}, widths {described.get('widths')})")
    target = None
    if "target" in list_checkpoints(folder):
        state, _ = read_checkpoint(folder, "target")
        state = finite_state(state, str(path / "target.pt"))
        try:
            target = GaussianEnergy.from_state_dict(state)
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{path / 'target.pt'} is not a saved Gaussian energy ({exc})") from None
        target = _target_to(target, device)
    return _freeze(model, device), target


def reusable_eval_run(run_folder: Path, cfg: EnergyConfig) -> Optional[Path]:
    """The ebm-eval run beside ``run_folder`` (under the same output folder) whose regressor is the one
    ``cfg`` would train, or None: status done, finished before this run started (so a resumed run makes
    the same choice), the same value for every :class:`EnergyConfig` field (they decide the weights:
    data, energy, architecture, training, seed, device), its regressor saved; the newest of those."""
    if cfg.weights is not None:
        return None
    started = _when(read_json(run_folder / RUN_INFO, {}).get("started"))
    if started is None:
        return None
    wanted = {f.name: getattr(cfg, f.name) for f in fields(EnergyConfig)}
    for info in list_runs(run_folder.parent.parent):  # newest first
        folder = Path(info["path"])
        finished = _when(info.get("finished"))
        if info["experiment"] != "ebm-eval" or info["status"] != "done" or finished is None or finished > started:
            continue
        recorded = config_values(folder)  # empty when missing or damaged: matches nothing
        if (all(recorded.get(k, object()) == v for k, v in wanted.items())
                and "regressor" in list_checkpoints(str(folder))):
            return folder
    return None


def _when(stamp: Any) -> Optional[datetime]:
    """run.json's ``started`` or ``finished`` as a time, or None when missing or damaged."""
    try:
        return datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return None


def _freeze(model: EnergyRegressor, device: torch.device) -> EnergyRegressor:
    model = model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)  # samplers differentiate with respect to x only
    return model


def _target_to(target: GaussianEnergy, device: torch.device) -> GaussianEnergy:
    return GaussianEnergy(target.mean.to(device), target.components.to(device), target.variances.to(device),
                          target.noise_variance)
