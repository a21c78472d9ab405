"""Training :class:`trainlab.nn.cnn.FastCNN` the airbench way.

What makes airbench fast, and what this trainer does:

* decoupled hyperparameters: ``lr`` and ``weight_decay`` are per 1024 examples and
  independent of the momentum (the step is divided by ``1 + 1/(1 - momentum)``),
  so each can be tuned alone; Nesterov SGD on the summed loss;
* BatchNorm shifts learn ``bias_scaler`` times faster than the weights;
* a triangular schedule: the lr rises linearly from ``lr_start`` of its peak
  to the peak at ``lr_peak_at`` of the run, then falls to ``lr_end``;
* label smoothing; the whitening layer's bias trains for the first
  ``whiten_bias_epochs`` only;
* lookahead with an EMA whose decay grows over training (every ``ema_every``
  steps from ``ema_start`` of the run: the weights are pulled back to the
  average), which gives the last epochs' averaged weights;
* augmentation (random flip, translation by up to ``translate`` pixels with
  reflect padding) of the whole uint8 training set at the start of every epoch,
  on the device;
* test-time augmentation: the mean logits of the image and its mirror (level 1),
  plus both images shifted one pixel up-left and down-right (level 2);
* on CUDA: bf16 autocast and channels_last; ``torch.compile`` (``compile``) on the CPU
  only for now: compiled with bf16 autocast, the CPU's inductor gives non-finite gradients
  after one batch (a run that ends ``diverged`` at 10 %, where the same training uncompiled
  reaches 94 %), and no GPU run has yet shown CUDA's to be finite, so that combination is
  refused in one line rather than reported as a result of compiling.

Data-parallel runs (see ``train.distributed``) give every rank its shard of each
global batch; gradients are averaged by DistributedDataParallel, and the loss
is multiplied by the world size so that a step equals the single-process step
on the whole batch (BatchNorm statistics stay per rank); only rank 0 draws a progress bar.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from trainlab.config import check, positive
from trainlab.data.augment import augment, translate
from trainlab.errors import ConfigError
from trainlab.nn.cnn import FastCNN
from trainlab.train import distributed
from trainlab.train.result import TrainResult, loss_status
from trainlab.train.snapshots import SnapshotSlot, resume_training, training_snapshot


@dataclass
class CNNTraining:
    """Hyperparameters of :func:`train_cnn` (airbench94's values are the defaults, except epochs)."""

    epochs: float = 10.0
    """Passes over the training set (fractions allowed: 9.9 is airbench94's)."""
    batch_size: int = 1024
    """Images per optimizer step (over all processes when data-parallel); capped at the training-set size."""
    lr: float = 11.5
    """Peak learning rate per 1024 examples, decoupled from momentum (airbench's parametrisation)."""
    momentum: float = 0.85
    """Nesterov momentum."""
    weight_decay: float = 0.0153
    """Weight decay per 1024 examples, decoupled from the learning rate."""
    bias_scaler: float = 64.0
    """BatchNorm shifts train with this many times the learning rate (not the weight decay)."""
    label_smoothing: float = 0.2
    """Label smoothing of the training loss (the reported losses are plain cross-entropy)."""
    lr_start: float = 0.2
    """Learning rate at the first step, as a fraction of the peak (the warmup starts here)."""
    lr_peak_at: float = 0.23
    """Where the learning rate peaks, as a fraction of all steps."""
    lr_end: float = 0.07
    """Learning rate at the last step, as a fraction of the peak."""
    ema_start: float = 0.3
    """Start of lookahead-EMA averaging, as a fraction of all steps; 1 turns it off."""
    ema_every: int = 5
    """Steps between lookahead updates."""
    whiten_bias_epochs: float = 3.0
    """Epochs during which the whitening layer's bias trains (then it is frozen)."""
    flip: bool = True
    """Random horizontal flips in training and mirrored views in test-time augmentation."""
    translate: int = 2
    """Random translation by up to this many pixels (reflect padding); 0 turns it off."""
    tta_level: int = 2
    """Test-time augmentation of the final evaluation: 0 none, 1 mirror, 2 mirror and one-pixel shifts."""
    compile: bool = False
    """torch.compile the model (needs a C++ compiler on the CPU); refused with CUDA's bf16 autocast (module doc)."""

    def check_training(self) -> None:
        positive("epochs", self.epochs)
        positive("batch_size", self.batch_size)
        positive("lr", self.lr)
        check(0 <= self.momentum < 1, f"momentum must be in [0, 1) (got {self.momentum})")
        check(self.weight_decay >= 0, f"weight_decay must be >= 0 (got {self.weight_decay})")
        positive("bias_scaler", self.bias_scaler)
        check(0 <= self.label_smoothing < 1, f"label_smoothing must be in [0, 1) (got {self.label_smoothing})")
        check(0 <= self.lr_peak_at <= 1, f"lr_peak_at must be in [0, 1] (got {self.lr_peak_at})")
        check(self.lr_start >= 0 and self.lr_end >= 0, "lr_start and lr_end must be >= 0")
        check(0 <= self.ema_start <= 1, f"ema_start must be in [0, 1] (got {self.ema_start})")
        positive("ema_every", self.ema_every)
        check(self.whiten_bias_epochs >= 0, "whiten_bias_epochs must be >= 0")
        check(self.translate >= 0, f"translate must be >= 0 (got {self.translate})")
        check(self.tta_level in (0, 1, 2), f"tta_level must be 0, 1 or 2 (got {self.tta_level})")


def triangle(step: int, total: int, start: float, peak_at: float, end: float) -> float:
    """Piecewise-linear lr multiplier: ``start`` at step 0, 1 at ``peak_at * total``, ``end`` at ``total``."""
    peak = peak_at * total
    if step < peak:
        return start + (1.0 - start) * step / peak
    return 1.0 + (end - 1.0) * (step - peak) / max(total - peak, 1e-9)


class Lookahead:
    """airbench's lookahead: an EMA of the weights that the network is reset to at every update."""

    def __init__(self, model: nn.Module):
        self.average = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def update(self, model: nn.Module, decay: float) -> None:
        state = model.state_dict()
        for name, avg in self.average.items():
            avg.lerp_(state[name], 1.0 - decay)
            state[name].copy_(avg)


def _autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The reduced precision the forward pass runs in on ``device``: bf16 on CUDA, none elsewhere."""
    return torch.bfloat16 if device.type == "cuda" else None


def _autocast(device: torch.device):
    dtype = _autocast_dtype(device)
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


@dataclass
class Evaluation:
    loss: float
    """Mean cross-entropy (no label smoothing)."""
    acc: float
    """Accuracy in percent."""
    predictions: torch.Tensor
    """Predicted class of every image."""


def tta_logits(model: nn.Module, x: torch.Tensor, level: int, flip: bool = True) -> torch.Tensor:
    """Logits averaged over test-time views (see the module doc); float32."""
    def mirrored(inputs: torch.Tensor) -> torch.Tensor:
        out = model(inputs).float()
        return 0.5 * (out + model(inputs.flip(-1)).float()) if flip and level >= 1 else out

    logits = mirrored(x)
    if level >= 2:
        n = x.shape[0]
        ones = torch.ones(n, 2, dtype=torch.long, device=x.device)
        shifted = [mirrored(translate(x, s * ones)) for s in (-1, 1)]
        logits = 0.5 * logits + 0.25 * (shifted[0] + shifted[1])
    return logits


@torch.inference_mode()
def evaluate_cnn(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, tta_level: int = 0,
                 flip: bool = True, batch_size: int = 2000) -> Evaluation:
    """Loss, accuracy and predictions of ``model`` on uint8 ``images`` (N, C, H, W)."""
    model.eval()
    loss_sum = torch.zeros((), device=images.device)
    predictions = []
    for start in range(0, images.shape[0], batch_size):
        xb, yb = images[start : start + batch_size], labels[start : start + batch_size]
        with _autocast(images.device):
            logits = tta_logits(model, xb, tta_level, flip)
        loss_sum += F.cross_entropy(logits, yb, reduction="sum")
        predictions.append(logits.argmax(1))
    pred = torch.cat(predictions) if predictions else labels.new_zeros(0)
    n = max(images.shape[0], 1)
    return Evaluation(loss=(loss_sum / n).item(), acc=((pred == labels).sum() * 100.0 / n).item(),
                      predictions=pred)


def make_optimizer(model: FastCNN, settings: CNNTraining, batch_size: int) -> torch.optim.SGD:
    """Nesterov SGD with airbench's decoupled lr / weight decay and three groups:
    BatchNorm shifts (lr x bias_scaler), the whitening bias (zeroed after its epochs), the rest."""
    kilostep = 1024 * (1 + 1 / (1 - settings.momentum))
    lr = settings.lr / kilostep
    wd = settings.weight_decay * batch_size / kilostep
    lr_bias = lr * settings.bias_scaler
    norm, whiten, other = [], [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (norm if ".norm" in name else whiten if name == "whiten.bias" else other).append(p)
    groups = [dict(params=norm, lr=lr_bias, weight_decay=wd / lr_bias, role="norm"),
              dict(params=whiten, lr=lr, weight_decay=wd / lr, role="whiten"),
              dict(params=other, lr=lr, weight_decay=wd / lr, role="other")]
    optimizer = torch.optim.SGD([g for g in groups if g["params"]], momentum=settings.momentum, nesterov=True)
    for group in optimizer.param_groups:
        group["base_lr"] = group["lr"]
    return optimizer


def train_cnn(
    model: FastCNN,
    train: tuple[torch.Tensor, torch.Tensor],
    settings: CNNTraining,
    *,
    generator: torch.Generator,
    test: tuple[torch.Tensor, torch.Tensor] | None = None,
    on_epoch: Callable[[int], dict[str, float]] | None = None,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    dist_ctx: distributed.DistContext | None = None,
    progress: bool = True,
    snapshot: SnapshotSlot | None = None,
) -> TrainResult:
    """Train ``model`` on uint8 images (N, C, H, W) with int64 labels, all on one device.

    Batches are ``min(batch_size, N)`` images; an epoch's last partial batch is dropped
    (a BatchNorm batch of one image is undefined). Every epoch's record holds ``train_loss`` and ``train_acc`` (plain cross-entropy
    and accuracy on that epoch's augmented training batches, over all ranks) and,
    given ``test``, ``test_loss`` and ``test_acc`` without test-time augmentation
    (on rank 0 only), plus whatever ``on_epoch`` returns; ``on_record`` receives each
    finished record at once (to log it while training goes on). ``seconds`` counts the
    whitening initialisation and the training steps, not the evaluations.
    The model must already be on the images' device; ``generator`` must be seeded
    the same on every rank.

    With a ``snapshot`` slot (:mod:`trainlab.train.snapshots`) training continues from the
    slot's last epoch boundary (a finished job loads its weights and returns its result at
    once) and saves there when the slot says it is due: weights and buffers, the optimizer's
    momenta, the generator, the step (the schedule is a function of the step) and whether
    lookahead has started (its average is the network at an epoch's end). Data-parallel,
    every rank loads the same snapshot.
    """
    x, y = train
    device = x.device
    if settings.compile and _autocast_dtype(device) is not None:
        raise ConfigError(f"compile=true with bf16 autocast (how {device.type} trains) is refused until it is shown "
                          "to give finite gradients (the CPU's inductor diverges after one batch); use compile=false")
    n = x.shape[0]
    world = dist_ctx.world_size if dist_ctx else 1
    batch_size = min(settings.batch_size, n)
    steps_per_epoch = n // batch_size  # the last partial batch is dropped (a fresh permutation every epoch)
    total_steps = max(1, math.ceil(steps_per_epoch * settings.epochs))

    start = time.perf_counter()
    model.init_from_data(x[: min(n, 5000)])
    model.to(memory_format=torch.channels_last)  # faster convolutions and pools on GPUs and CPUs alike
    optimizer = make_optimizer(model, settings, batch_size)
    net: nn.Module = model
    if dist_ctx is not None:
        net = distributed.wrap(model, dist_ctx, device)
    if settings.compile:
        net = torch.compile(net)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=settings.label_smoothing, reduction="sum")
    lookahead: Lookahead | None = None
    train_seconds = time.perf_counter() - start

    history: list[dict[str, float]] = []
    status, step = "done", 0
    epochs = math.ceil(total_steps / steps_per_epoch)
    # Loaded after the set-up above, which the state overwrites but whose layouts (channels_last) stay.
    modules = {"model": model, "optimizer": optimizer}
    resumed = resume_training(snapshot, modules=modules, generators=(generator,))
    if resumed is not None:
        state, finished = resumed
        history, status, step, train_seconds = state["history"], state["status"], state["step"], state["seconds"]
        if finished:
            return TrainResult(status=status, seconds=train_seconds, history=history)
        if state["lookahead"]:  # every epoch ends with the network reset to its average: the two are equal
            lookahead = Lookahead(model)

    def save(finished: bool) -> None:
        if snapshot is not None and (finished or snapshot.due()):
            snapshot.save(training_snapshot(
                finished=finished, modules=modules, generators=(generator,), history=history, status=status,
                step=step, seconds=train_seconds, lookahead=lookahead is not None))

    # one bar per run, not per rank: N bars on one terminal overwrite each other
    shown = progress and (dist_ctx is None or dist_ctx.is_main)
    bar = tqdm(range(len(history) + 1, epochs + 1), desc="train", disable=None if shown else True, leave=False)
    for epoch in bar:
        start = time.perf_counter()
        model.train()
        whiten_on = (epoch - 1) < settings.whiten_bias_epochs
        images = augment(x, generator, flip=settings.flip, max_shift=settings.translate)
        order = torch.randperm(n, generator=generator, device=generator.device).to(device)
        sums = torch.zeros(2, device=device)  # loss, correct
        seen = 0  # images this rank trained on, counted on the host (a tensor per step would be a copy per step)
        for first in range(0, steps_per_epoch * batch_size, batch_size):
            if step >= total_steps:
                break
            idx = distributed.shard(order[first : first + batch_size], dist_ctx)
            xb, yb = images[idx], y[idx]
            xb = xb.contiguous(memory_format=torch.channels_last)
            mult = triangle(step, total_steps, settings.lr_start, settings.lr_peak_at, settings.lr_end)
            for group in optimizer.param_groups:
                group["lr"] = group["base_lr"] * mult * (whiten_on if group["role"] == "whiten" else 1.0)
            with _autocast(device):
                logits = net(xb)
                loss = loss_fn(logits.float(), yb) * world
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            with torch.no_grad():
                sums += torch.stack([F.cross_entropy(logits.float(), yb, reduction="sum"),
                                     (logits.argmax(1) == yb).sum().float()])
            seen += len(yb)
            if step >= settings.ema_start * total_steps and step % settings.ema_every == 0:
                if lookahead is None:
                    lookahead = Lookahead(model)
                else:  # the decay grows towards the end: move fast first, average hard at the end
                    lookahead.update(model, (0.95 ** settings.ema_every) * (step / total_steps) ** 3)
        if lookahead is not None:
            lookahead.update(model, 1.0)
        totals = torch.cat([sums, sums.new_tensor([float(seen)])])  # one copy to the device per epoch
        loss_sum, correct, count = distributed.all_sum(totals, dist_ctx).tolist()  # one sync per epoch
        train_seconds += time.perf_counter() - start
        record: dict[str, Any] = {"epoch": epoch, "train_loss": loss_sum / count, "train_acc": 100.0 * correct / count}
        status = loss_status(record["train_loss"])
        if status == "done":
            if test is not None and (dist_ctx is None or dist_ctx.is_main):
                result = evaluate_cnn(model, *test, tta_level=0)
                record.update(test_loss=result.loss, test_acc=result.acc)
            if on_epoch is not None:
                record.update(on_epoch(epoch))
        history.append(record)
        if on_record is not None:
            on_record(record)
        if status == "diverged":
            break
        bar.set_postfix(loss=f"{record['train_loss']:.3g}", acc=f"{record.get('test_acc', record['train_acc']):.3g}")
        if epoch < epochs:
            save(finished=False)
    save(finished=True)
    return TrainResult(status=status, seconds=train_seconds, history=history)
