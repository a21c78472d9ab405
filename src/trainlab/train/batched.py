"""Many one-hidden-layer MLP classifiers trained at once, as one stacked model.

Trials that share the training data, the batch size and the seed see the same
batches, so their first layers can be one wide matrix: the hidden units of all
trials side by side, ``W1`` of shape ``(sum of hidden widths, in_dim)``, and one
GEMM per step instead of one per trial. Nothing is padded (a width-4 trial costs
4 rows, not 128). The output layer is block-diagonal: trial t's logits see only
trial t's hidden units, so the summed loss gives every trial exactly the
gradient it would get alone, and its own Adam or SGD step with its own learning
rate turns that into exactly the update it would make alone (up to float
rounding: the wide GEMM adds the same products in a different order).

Forward and backward are written out by hand (a GEMM, a bias and an activation
each way) because autograd's per-operation bookkeeping is a large share of a
step at batch size 64 on a CPU; the tests check every trial against the plain
``nn.Module`` trained with ``torch.optim`` on the same batches.

Entry point for recipes and sweeps::

    results = train_trials(specs, x_train, y_train, epochs=5,
                           evals={"val": (x_val, y_val), "test": (x_test, y_test)})

``specs`` is a list of :class:`TrialSpec`; trials are grouped into stacks by
(batch_size, seed) and the results (:class:`TrialResult`: status, seconds,
history, metrics, the trained ``MLP``) come back in the order of ``specs``.
``batched=False`` trains each trial alone (``train_alone``), the reference.
A trial whose loss or weights turn NaN/Inf is marked ``diverged`` and frozen; the
others go on untouched (NaN never crosses from one trial's block to another's:
see ``trainlab.train.stacked``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from trainlab.config import check, positive
from trainlab.device import cpu_plan, torch_generator
from trainlab.nn.mlp import MLP
from trainlab.train.stacked import STACK_ACTIVATIONS, STACK_OPTIMIZERS, StackedMLP, TrialSpec, init_solo
from trainlab.train.loop import batch_indices, evaluate, fit, make_optimizer
from trainlab.train.result import TrainResult
from trainlab.workers import run_planned


__all__ = ["STACK_ACTIVATIONS", "STACK_OPTIMIZERS", "TrialResult", "TrialSpec", "init_solo", "train_alone", "train_stack", "train_trials", "training_flops"]


@dataclass
class TrialResult(TrainResult):
    """A :class:`TrainResult` (status, seconds, history) plus what one trial of a stack adds.

    ``seconds`` is this trial's share of its stack's training time, in proportion to its
    hidden width; ``history`` holds epoch, train_loss and <name>_acc when evaluated every epoch.
    """

    spec: TrialSpec
    """The trial's settings."""
    model: MLP
    """The trained weights as a plain MLP on the data's device."""
    metrics: dict[str, float] = field(default_factory=dict)
    """<name>_acc (percent) for every evaluation set after training."""
    stack_seconds: float = 0.0
    """Training time of the whole stack this trial was part of."""
    stack_size: int = 1
    """Number of trials in that stack."""


def train_stack(
    specs: Sequence[TrialSpec],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    n_classes: int | None = None,
    evals: Mapping[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
    eval_every_epoch: bool = False,
    progress: bool = True,
    desc: str = "stack",
) -> list[TrialResult]:
    """Train trials that share batch size and seed as one stack; results in the order of ``specs``.

    Batches come from ``batch_indices`` with ``torch_generator(seed)``, exactly as
    ``loop.fit`` draws them for a trial trained alone.
    """
    check(len({(s.batch_size, s.seed) for s in specs}) == 1, "a stack needs one batch_size and one seed")
    positive("epochs", epochs)
    n_classes = n_classes if n_classes is not None else int(y.max().item()) + 1
    evals = dict(evals or {})
    stack = StackedMLP(specs, x.shape[1], n_classes, x.device)
    t, n = len(specs), x.shape[0]
    generator = torch_generator(specs[0].seed)
    histories: list[list[dict[str, float]]] = [[] for _ in range(t)]
    seconds = 0.0
    bar = tqdm(range(1, epochs + 1), desc=desc, disable=None if progress else True, leave=False)
    for epoch in bar:
        start = time.perf_counter()
        total = torch.zeros(t, device=x.device)
        for idx in batch_indices(n, specs[0].batch_size, generator, x.device):
            total += stack.train_step(x.index_select(0, idx), y.index_select(0, idx)) * idx.numel()
        epoch_loss = (total / n).tolist()  # one sync per epoch
        seconds += time.perf_counter() - start
        accs = {name: stack.accuracy(*xy).tolist() for name, xy in evals.items()} if eval_every_epoch else {}
        finite = stack.finite()
        for k in range(t):
            if not stack.alive[k]:
                continue
            record = {"epoch": epoch, "train_loss": epoch_loss[k]}
            if not (math.isfinite(epoch_loss[k]) and finite[k]):
                stack.freeze(k)
            else:
                record.update({f"{name}_acc": acc[k] for name, acc in accs.items()})
            histories[k].append(record)
        if not any(stack.alive):
            break

    finals = {name: stack.accuracy(*xy).tolist() for name, xy in evals.items()}
    models = stack.to_models()
    total_width = sum(s.hidden for s in specs)
    results: list[TrialResult | None] = [None] * t
    for k, i in enumerate(stack.order):
        spec = specs[i]
        alive = stack.alive[k]
        results[i] = TrialResult(
            spec=spec,
            status="done" if alive else "diverged",
            seconds=seconds * spec.hidden / total_width,
            model=models[k],
            history=histories[k],
            metrics={f"{name}_acc": (acc[k] if alive else float("nan")) for name, acc in finals.items()},
            stack_seconds=seconds,
            stack_size=t,
        )
    return results  # type: ignore[return-value]


def train_alone(
    spec: TrialSpec,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    n_classes: int,
    evals: Mapping[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
    eval_every_epoch: bool = False,
    progress: bool = True,
) -> TrialResult:
    """One trial the ordinary way (``MLP`` + ``torch.optim`` + ``loop.fit``): the reference for stacks."""
    evals = dict(evals or {})
    model = init_solo(spec, x.shape[1], n_classes).to(x.device)
    optimizer = make_optimizer(spec.optimizer, model.parameters(), spec.lr)

    def on_epoch(epoch: int) -> dict[str, float]:
        return {f"{name}_acc": evaluate(model, *xy)["acc"] for name, xy in evals.items()} if eval_every_epoch else {}

    fitted = fit(model, x, y, optimizer=optimizer, loss_fn=nn.CrossEntropyLoss(), epochs=epochs,
                 batch_size=spec.batch_size, generator=torch_generator(spec.seed), on_epoch=on_epoch,
                 progress=progress, desc=f"h{spec.hidden} {spec.activation} {spec.optimizer}")
    done = fitted.status == "done"
    metrics = {f"{name}_acc": evaluate(model, *xy)["acc"] if done else float("nan") for name, xy in evals.items()}
    return TrialResult(spec=spec, status=fitted.status, seconds=fitted.seconds, model=model,
                       history=fitted.history, metrics=metrics, stack_seconds=fitted.seconds, stack_size=1)


def train_trials(
    specs: Sequence[TrialSpec],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    n_classes: int | None = None,
    evals: Mapping[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
    eval_every_epoch: bool = False,
    batched: bool = True,
    progress: bool = True,
) -> list[TrialResult]:
    """Train any list of trials; results come back in the order of ``specs``.

    ``x`` is (N, in_dim) float on the target device, ``y`` (N,) int64 class indices;
    ``evals`` maps a name to (x, y) for the ``<name>_acc`` metrics (percent).
    With ``batched`` (the default) there is one stack per (batch_size, seed), and stacks
    run side by side on the available cores (:func:`trainlab.device.cpu_plan`; the
    results are those of running them one after another on one thread);
    ``batched=False`` trains every trial alone with ``train_alone``.
    """
    n_classes = n_classes if n_classes is not None else int(y.max().item()) + 1
    if not batched:
        return [train_alone(s, x, y, epochs=epochs, n_classes=n_classes, evals=evals,
                            eval_every_epoch=eval_every_epoch, progress=progress) for s in specs]
    groups: dict[tuple[int, int], list[int]] = {}
    for i, spec in enumerate(specs):
        groups.setdefault((spec.batch_size, spec.seed), []).append(i)
    in_dim, n = x.shape[1], x.shape[0]
    # Stacks are independent: one single-threaded worker per core (device.cpu_plan), the
    # costliest stack first; a lone stack gets the threads its step size calls for.
    cost = {key: training_flops([specs[i] for i in members], in_dim, n_classes, n * epochs)
            * (1 + 64 / key[0])  # small batches pay more per sample than their FLOPs say
            for key, members in groups.items()}
    order = sorted(groups, key=lambda key: -cost[key])
    biggest_step = max(training_flops([specs[i] for i in groups[key]], in_dim, n_classes, key[0]) for key in groups)
    plan = cpu_plan(x.device, biggest_step, tasks=len(groups), total_flops=sum(cost.values()))

    def one_stack(key: tuple[int, int]) -> list[TrialResult]:
        return train_stack([specs[i] for i in groups[key]], x, y, epochs=epochs, n_classes=n_classes, evals=evals,
                           eval_every_epoch=eval_every_epoch, progress=progress and plan.workers == 1,
                           desc=f"batch {key[0]} seed {key[1]}")

    stacked = run_planned(one_stack, order, plan)
    results: list[TrialResult | None] = [None] * len(specs)
    for key, stack_results in zip(order, stacked):
        for i, result in zip(groups[key], stack_results):
            results[i] = result
    return results  # type: ignore[return-value]


def training_flops(specs: Sequence[TrialSpec], in_dim: int, n_classes: int, samples: int) -> float:
    """FLOPs that training ``specs`` for ``samples`` sample-passes needs at least.

    Per sample and trial: forward 2 (in*h + h*c), weight gradients 2 (in*h + h*c),
    and the gradient into the hidden layer 2 h*c (none into the input);
    biases and activations are ignored.
    """
    per_sample = sum(4 * (in_dim * s.hidden + s.hidden * n_classes) + 2 * s.hidden * n_classes for s in specs)
    return float(per_sample) * samples
