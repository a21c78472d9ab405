"""fit / evaluate on device-resident tensors.

Batches are index slices of a seeded permutation of tensors that already live
on the device: no per-sample Dataset/DataLoader, no host-device copies per step.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterator

import torch
from torch import nn
from tqdm.auto import tqdm

from trainlab.config import FLOAT32_MAX, check, positive
from trainlab.device import threads_for_step, use_threads
from trainlab.errors import ConfigError
from trainlab.train.adam import make_adam
from trainlab.train.snapshots import SnapshotSlot, resume_training, training_snapshot
from trainlab.train.result import StopTraining, TrainResult, loss_status, training_flops

OPTIMIZERS = ("adam", "sgd")
ADAM_LR_MAX = FLOAT32_MAX * (1 - 0.9)
"""Adam's first step size is lr / (1 - beta1): above this it overflows float32 (torch raises)."""


def check_lr(optimizer: str, lr: float, name: str = "lr") -> None:
    """Refuse a learning rate the optimizer's steps cannot hold in float32 (and any lr that is not > 0).

    A huge lr that fits trains and diverges cleanly (status ``diverged``); one past this bound would
    end in an error from inside torch, so it is refused up front in one line.
    """
    positive(name, lr)
    check(optimizer != "adam" or lr <= ADAM_LR_MAX,
          f"{name}={lr:g} is too large for Adam: its first step size lr / (1 - beta1) overflows float32 "
          f"(use lr <= {ADAM_LR_MAX:.3g})")


def make_optimizer(name: str, params: Any, lr: float, momentum: float = 0.0) -> torch.optim.Optimizer:
    """``adam`` or ``sgd`` (plain SGD unless ``momentum`` is given), as the studies use them."""
    check_lr(name, lr)
    if name == "adam":
        return make_adam(params, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum)
    raise ConfigError(f"optimizer={name!r} is not one of {', '.join(OPTIMIZERS)}")


def epoch_order(n: int, generator: torch.Generator, weights: torch.Tensor | None = None) -> torch.Tensor:
    """One epoch's order of positions ``0..n-1``: a permutation, or ``n`` weighted draws with replacement.

    The draws are exactly ``WeightedRandomSampler``'s (``torch.multinomial`` of the
    weights as float64), so a ``DataLoader`` with that sampler and the same
    generator yields the same batches. They are made on the generator's device.
    """
    if weights is None:
        return torch.randperm(n, generator=generator, device=generator.device)
    return torch.multinomial(weights.detach().to("cpu", torch.float64), n, True, generator=generator)


def batch_indices(
    n: int,
    batch_size: int,
    generator: torch.Generator,
    device: torch.device,
    *,
    rows: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
) -> Iterator[torch.Tensor]:
    """Index slices of one epoch's :func:`epoch_order` of ``range(n)``; the last batch may be short.

    With ``rows`` (``n`` indices on ``device``) the slices index the data through them:
    the epoch runs over those rows only.
    """
    order = epoch_order(n, generator, weights).to(device)
    if rows is not None:
        order = rows[order]
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def fit(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    epochs: int,
    batch_size: int,
    generator: torch.Generator,
    rows: torch.Tensor | None = None,
    sample_weights: torch.Tensor | None = None,
    on_epoch: Callable[[int], dict[str, float]] | None = None,
    progress: bool = True,
    desc: str = "train",
    snapshot: SnapshotSlot | None = None,
    lr_schedule: torch.optim.lr_scheduler.LRScheduler | None = None,
) -> TrainResult:
    """Train ``model`` for ``epochs`` passes over (x, y).

    ``rows`` restricts training to those indices of (x, y); ``sample_weights`` (one per
    row) makes every epoch ``n`` weighted draws with replacement instead of a
    permutation (``WeightedRandomSampler``, see :func:`epoch_order`).
    The mean training loss is accumulated on the device and read once per epoch,
    so the loop never synchronises inside an epoch. ``on_epoch(epoch)`` may
    evaluate and return extra numbers for the history; its time is not counted; it may
    raise :class:`~trainlab.train.result.StopTraining` to end training there as ``pruned``.
    Returns a :class:`TrainResult` whose history holds one record per epoch
    (``epoch``, ``train_loss`` and what ``on_epoch`` returned); a NaN/Inf loss
    stops training with status ``diverged``. Threads follow
    :func:`trainlab.device.cpu_plan` for the step's size. With a ``snapshot`` slot
    (:mod:`trainlab.train.snapshots`) training continues from the slot's last epoch boundary
    (a finished job returns its result at once) and saves there when the slot says it is due.
    ``lr_schedule`` (of ``optimizer``, such as :func:`~trainlab.train.warmup_ema.warmup_cosine`) is stepped
    after every optimizer step and kept in the snapshots with the model and the optimizer.
    """
    if rows is not None:
        rows = rows.to(x.device)
    n = x.shape[0] if rows is None else rows.numel()
    params = sum(p.numel() for p in model.parameters())
    history: list[dict[str, float]] = []
    train_seconds = 0.0
    status = "done"
    first = 1
    modules = {"model": model, "optimizer": optimizer}
    if lr_schedule is not None:
        modules["lr_schedule"] = lr_schedule
    resumed = resume_training(snapshot, modules=modules, generators=(generator,))
    if resumed is not None:
        state, finished = resumed
        history, train_seconds, status = state["history"], state["seconds"], state["status"]
        if finished:
            return TrainResult(status=status, seconds=train_seconds, history=history)
        first = len(history) + 1

    def save(finished: bool) -> None:
        if snapshot is not None and (finished or snapshot.due()):
            snapshot.save(training_snapshot(finished=finished, modules=modules, generators=(generator,),
                                            history=history, seconds=train_seconds, status=status))

    bar = tqdm(range(first, epochs + 1), desc=desc, disable=None if progress else True, leave=False)
    with use_threads(threads_for_step(training_flops(params, min(batch_size, n)), x.device), x.device):
        for epoch in bar:
            model.train()
            start = time.perf_counter()
            total = torch.zeros((), device=x.device)
            for idx in batch_indices(n, batch_size, generator, x.device, rows=rows, weights=sample_weights):
                loss = loss_fn(model(x[idx]), y[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if lr_schedule is not None:
                    lr_schedule.step()
                total += loss.detach() * idx.numel()
            train_loss = (total / n).item()  # one sync per epoch
            train_seconds += time.perf_counter() - start
            record: dict[str, float] = {"epoch": epoch, "train_loss": train_loss}
            status = loss_status(train_loss)
            if status == "diverged":
                history.append(record)
                break
            if on_epoch is not None:
                try:
                    record.update(on_epoch(epoch))
                except StopTraining as stop:  # a tune gave up on this model
                    record.update(stop.values)
                    history.append(record)
                    status = "pruned"
                    break
            history.append(record)
            bar.set_postfix(loss=f"{train_loss:.4g}")
            if epoch < epochs:
                save(finished=False)
    save(finished=True)
    return TrainResult(status=status, seconds=train_seconds, history=history)


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    batch_size: int = 8192,
) -> dict[str, float]:
    """Accuracy in percent (and mean loss when ``loss_fn`` is given) of a classifier."""
    model.eval()
    correct = torch.zeros((), device=x.device)
    loss_sum = torch.zeros((), device=x.device)
    for start in range(0, x.shape[0], batch_size):
        xb, yb = x[start : start + batch_size], y[start : start + batch_size]
        logits = model(xb)
        correct += (logits.argmax(dim=1) == yb).sum()
        if loss_fn is not None:
            loss_sum += loss_fn(logits, yb) * xb.shape[0]
    n = max(x.shape[0], 1)
    out = {"acc": (correct * 100.0 / n).item()}
    if loss_fn is not None:
        out["loss"] = (loss_sum / n).item()
    return out
