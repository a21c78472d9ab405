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
from trainlab.train.result import TrainResult, loss_status

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
        return torch.optim.Adam(params, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum)
    raise ConfigError(f"optimizer={name!r} is not one of {', '.join(OPTIMIZERS)}")


def batch_indices(n: int, batch_size: int, generator: torch.Generator, device: torch.device) -> Iterator[torch.Tensor]:
    """Index slices of one seeded permutation of ``range(n)``; the last batch may be short."""
    perm = torch.randperm(n, generator=generator, device=generator.device).to(device)
    for start in range(0, n, batch_size):
        yield perm[start : start + batch_size]


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
    on_epoch: Callable[[int], dict[str, float]] | None = None,
    progress: bool = True,
    desc: str = "train",
) -> TrainResult:
    """Train ``model`` for ``epochs`` passes over (x, y).

    The mean training loss is accumulated on the device and read once per epoch,
    so the loop never synchronises inside an epoch. ``on_epoch(epoch)`` may
    evaluate and return extra numbers for the history; its time is not counted.
    Returns a :class:`TrainResult` whose history holds one record per epoch
    (``epoch``, ``train_loss`` and what ``on_epoch`` returned); a NaN/Inf loss
    stops training with status ``diverged``.
    """
    n = x.shape[0]
    # forward + backward ~ 6 FLOPs per parameter per sample (2 forward, 4 backward)
    step_flops = 6.0 * min(batch_size, n) * sum(p.numel() for p in model.parameters())
    with use_threads(threads_for_step(step_flops, x.device), x.device):
        return _fit(model, x, y, optimizer=optimizer, loss_fn=loss_fn, epochs=epochs, batch_size=batch_size,
                    generator=generator, on_epoch=on_epoch, progress=progress, desc=desc)


def _fit(model, x, y, *, optimizer, loss_fn, epochs, batch_size, generator, on_epoch, progress, desc) -> TrainResult:
    n = x.shape[0]
    history: list[dict[str, float]] = []
    train_seconds = 0.0
    status = "done"
    bar = tqdm(range(1, epochs + 1), desc=desc, disable=None if progress else True, leave=False)
    for epoch in bar:
        model.train()
        start = time.perf_counter()
        total = torch.zeros((), device=x.device)
        for idx in batch_indices(n, batch_size, generator, x.device):
            loss = loss_fn(model(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach() * idx.numel()
        train_loss = (total / n).item()  # one sync per epoch
        train_seconds += time.perf_counter() - start
        record: dict[str, float] = {"epoch": epoch, "train_loss": train_loss}
        status = loss_status(train_loss)
        if status == "diverged":
            history.append(record)
            break
        if on_epoch is not None:
            record.update(on_epoch(epoch))
        history.append(record)
        bar.set_postfix(loss=f"{train_loss:.4g}")
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
