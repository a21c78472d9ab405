"""Train many one-hidden-layer MLP trials as stacks, and each trial alone (the reference).

``train_trials`` groups trials that see the same batches (batch size and seed) into
:class:`~trainlab.train.stack.shared_batches.StackedMLP` stacks; ``train_per_trial``
groups trials that each bring their own rows, sampler and loss into
:class:`~trainlab.train.stack.own_batches.PerTrialStack` stacks. Both run their stacks
through ``workers.run_independent`` and one epoch loop (:func:`_train_epochs`), and
return one :class:`~trainlab.train.stack.spec.TrialResult` per trial, in the order given.
``train_alone`` trains one trial with ``nn.Module`` + ``torch.optim`` + ``loop.fit``:
the reference every stacked trial is tested against.

A trial whose loss or weights turn NaN/Inf is marked ``diverged`` and frozen; the
others go on untouched (each stack keeps NaN inside its own trial's block). An ``on_epoch``
watcher (a tune's member-by-member pruning) may stop trials after any epoch: they are
frozen the same way and marked ``pruned``, and the others' numbers do not change.
"""

from __future__ import annotations

import math
import time
from typing import Callable, Iterable, Mapping, Protocol, Sequence

import torch
from tqdm.auto import tqdm

from trainlab.config import check, positive
from trainlab.device import torch_generator
from trainlab.nn.mlp import MLP
from trainlab.train.loop import evaluate, fit, make_optimizer
from trainlab.train.result import StopTraining
from trainlab.train.stack.own_batches import PerTrialStack
from trainlab.train.stack.shared_batches import StackedMLP
from trainlab.train.stack.spec import TrialData, TrialResult, TrialSpec, init_trial, trial_flops, trial_loss
from trainlab.workers import run_independent

Evals = Mapping[str, tuple[torch.Tensor, torch.Tensor]]
EpochWatch = Callable[[int, dict[int, dict[str, float]]], Iterable[int]]
"""``on_epoch(epoch, {position: record})``: called after every epoch with the record (epoch,
train_loss, <name>_acc) of each trial still training, keyed by its position in the specs given;
returns the positions of the trials to stop there (status ``pruned``)."""


class Stack(Protocol):
    """What the epoch loop needs of a stack (``StackedMLP``, ``PerTrialStack``); "stack order"
    is the order of its tensors, ``order[k]`` the position in ``specs`` of trial k. Evaluation
    sets also need ``accuracy(x, y)`` (``StackedMLP`` only: per-trial stacks are scored afterwards
    with ``logits_many``)."""

    specs: list[TrialSpec]
    order: list[int]
    alive: list[bool]

    def train_epoch(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor: ...
    def finite(self) -> list[bool]: ...
    def freeze(self, k: int) -> None: ...
    def to_models(self) -> list[MLP]: ...


def _train_epochs(stack: Stack, x: torch.Tensor, y: torch.Tensor, *, epochs: int, evals: Evals,
                  eval_every_epoch: bool | Sequence[str], progress: bool, desc: str,
                  on_epoch: EpochWatch | None = None) -> list[TrialResult]:
    """The one epoch loop of every stack; results in the order of ``stack.specs``.

    The losses are read once per epoch; a trial whose loss or weights are not finite
    is recorded (its loss) and frozen. ``seconds`` is the training time without the
    evaluations, shared among the trials in proportion to their hidden widths.
    """
    t = len(stack.specs)
    histories: list[list[dict[str, float]]] = [[] for _ in range(t)]
    pruned: set[int] = set()  # stack positions a watcher stopped
    seconds = 0.0
    bar = tqdm(range(1, epochs + 1), desc=desc, disable=None if progress else True, leave=False)
    for epoch in bar:
        start = time.perf_counter()
        epoch_loss = stack.train_epoch(x, y).tolist()  # one sync per epoch
        seconds += time.perf_counter() - start
        accs = {name: stack.accuracy(*evals[name]).tolist() for name in _each_epoch(evals, eval_every_epoch)}
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
        if on_epoch is not None:
            position = {stack.order[k]: k for k in range(t)}
            watched = {stack.order[k]: histories[k][-1] for k in range(t) if stack.alive[k]}
            for i in on_epoch(epoch, watched) if watched else ():
                stack.freeze(position[i])
                pruned.add(position[i])
        if not any(stack.alive):
            break

    finals = {name: stack.accuracy(*xy).tolist() for name, xy in evals.items()}
    models = stack.to_models()
    total_width = sum(s.hidden for s in stack.specs)
    results: list[TrialResult | None] = [None] * t
    for k, i in enumerate(stack.order):
        spec, alive = stack.specs[i], stack.alive[k]
        results[i] = TrialResult(
            spec=spec, status="done" if alive else "pruned" if k in pruned else "diverged", seconds=seconds * spec.hidden / total_width,
            model=models[k], history=histories[k],
            metrics={f"{name}_acc": (acc[k] if alive else float("nan")) for name, acc in finals.items()},
            stack_seconds=seconds, stack_size=t)
    return results  # type: ignore[return-value]


def train_stack(
    specs: Sequence[TrialSpec],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    n_classes: int | None = None,
    evals: Evals | None = None,
    eval_every_epoch: bool | Sequence[str] = False,
    progress: bool = True,
    desc: str = "stack",
    on_epoch: EpochWatch | None = None,
) -> list[TrialResult]:
    """Train trials that share batch size and seed as one stack; results in the order of ``specs``.

    Batches come from ``loop.batch_indices`` with ``torch_generator(seed)``, exactly as
    ``loop.fit`` draws them for a trial trained alone. ``on_epoch`` may stop trials (:data:`EpochWatch`).
    """
    check(len({(s.batch_size, s.seed) for s in specs}) == 1, "a stack needs one batch_size and one seed")
    positive("epochs", epochs)
    n_classes = n_classes if n_classes is not None else int(y.max().item()) + 1
    stack = StackedMLP(specs, x.shape[1], n_classes, x.device)
    return _train_epochs(stack, x, y, epochs=epochs, evals=dict(evals or {}), eval_every_epoch=eval_every_epoch,
                         progress=progress, desc=desc, on_epoch=on_epoch)


def train_alone(
    spec: TrialSpec,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    n_classes: int,
    data: TrialData | None = None,
    evals: Evals | None = None,
    eval_every_epoch: bool | Sequence[str] = False,
    progress: bool = True,
    on_epoch: EpochWatch | None = None,
) -> TrialResult:
    """One trial the ordinary way (``MLP`` + ``torch.optim`` + its loss module + ``loop.fit``): the
    reference for stacks. With ``data`` it trains on those rows of (x, y), with their sampler and loss.
    ``on_epoch`` sees the trial as position 0 and may stop it (:data:`EpochWatch`)."""
    positive("epochs", epochs)
    evals = dict(evals or {})
    model = init_trial(spec, data, x.shape[1], n_classes).to(x.device)
    optimizer = make_optimizer(spec.optimizer, model.parameters(), spec.lr)

    def measure(epoch: int) -> dict[str, float]:
        values = {f"{name}_acc": evaluate(model, *evals[name])["acc"] for name in _each_epoch(evals, eval_every_epoch)}
        if on_epoch is not None and 0 in set(on_epoch(epoch, {0: {"epoch": epoch, **values}})):
            raise StopTraining(values)
        return values

    fitted = fit(model, x, y, optimizer=optimizer, loss_fn=trial_loss(data, x.device), epochs=epochs,
                 batch_size=spec.batch_size, generator=torch_generator(spec.seed),
                 rows=None if data is None else data.rows, sample_weights=None if data is None else data.sample_weights,
                 on_epoch=measure, progress=progress, desc=f"h{spec.hidden} {spec.activation} {spec.optimizer}")
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
    evals: Evals | None = None,
    eval_every_epoch: bool | Sequence[str] = False,
    stacked: bool = True,
    progress: bool = True,
    on_epoch: EpochWatch | None = None,
) -> list[TrialResult]:
    """Train any list of trials on all of (x, y); results come back in the order of ``specs``.

    ``x`` is (N, in_dim) float on the target device, ``y`` (N,) int64 class indices;
    ``evals`` maps a name to (x, y) for the ``<name>_acc`` metrics (percent), measured after
    training and, with ``eval_every_epoch`` (True, or the names of some sets), after every epoch.
    With ``stacked`` (the default) there is one stack per (batch_size, seed), run through
    ``workers.run_independent`` (the results are those of running them one after another
    on one thread); ``stacked=False`` trains every trial alone with :func:`train_alone`.
    ``on_epoch`` (:data:`EpochWatch`, positions in ``specs``) may stop trials after any epoch;
    it is called from the worker threads, one stack at a time per thread.
    """
    n_classes = n_classes if n_classes is not None else int(y.max().item()) + 1
    if not stacked:
        return [train_alone(s, x, y, epochs=epochs, n_classes=n_classes, evals=evals,
                            eval_every_epoch=eval_every_epoch, progress=progress,
                            on_epoch=_renumbered(on_epoch, [i])) for i, s in enumerate(specs)]
    groups: dict[tuple[int, int], list[int]] = {}
    for i, spec in enumerate(specs):
        groups.setdefault((spec.batch_size, spec.seed), []).append(i)
    keys = list(groups)
    in_dim, n = x.shape[1], x.shape[0]
    costs = [trial_flops([specs[i] for i in groups[key]], in_dim, n_classes, n * epochs)
             * (1 + 64 / key[0])  # small batches pay more per sample than their FLOPs say
             for key in keys]
    biggest_step = max(trial_flops([specs[i] for i in groups[key]], in_dim, n_classes, key[0]) for key in keys)

    def one_stack(key: tuple[int, int], alone: bool) -> list[TrialResult]:
        return train_stack([specs[i] for i in groups[key]], x, y, epochs=epochs, n_classes=n_classes, evals=evals,
                           eval_every_epoch=eval_every_epoch, progress=progress and alone,
                           desc=f"batch {key[0]} seed {key[1]}", on_epoch=_renumbered(on_epoch, groups[key]))

    per_stack = run_independent(one_stack, keys, costs=costs, step_flops=biggest_step, device=x.device,
                                tell_alone=True)
    return _in_given_order(len(specs), [groups[key] for key in keys], per_stack)


def train_per_trial(
    specs: Sequence[TrialSpec],
    data: Sequence[TrialData],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    n_classes: int | None = None,
    max_groups: int = 32,
    progress: bool = True,
) -> list[TrialResult]:
    """Train every ``(spec, data)`` pair on its own rows of the pool ``(x, y)``; results in the order given.

    Trials that draw the same batches (same rows, sampler, batch size and seed)
    share them; stacks hold up to ``max_groups`` such groups with the same number
    of trials, hidden width, activation, optimizer, learning rate and steps per epoch,
    and run through ``workers.run_independent``.
    A trial whose loss turns NaN/Inf is ``diverged`` and frozen; the others go on.
    """
    check(len(specs) == len(data) and len(specs) > 0, "give one TrialData per TrialSpec")
    positive("epochs", epochs)
    n_classes = n_classes if n_classes is not None else int(y.max().item()) + 1
    batches: dict[tuple, list[int]] = {}
    for i, (spec, d) in enumerate(zip(specs, data)):
        shape = (spec.batch_size, spec.hidden, spec.activation, spec.optimizer, spec.lr)
        batches.setdefault((shape, spec.seed, d.key()), []).append(i)
    stacks: dict[tuple, list[list[int]]] = {}
    for (shape, _, _), members in batches.items():
        steps = math.ceil(data[members[0]].rows.numel() / shape[0])
        stacks.setdefault((shape, len(members), steps), []).append(members)
    chunks = []
    for groups in stacks.values():  # equal chunks of at most max_groups groups
        size = math.ceil(len(groups) / math.ceil(len(groups) / max_groups))
        chunks += [groups[i : i + size] for i in range(0, len(groups), size)]
    members = [[i for group in groups for i in group] for groups in chunks]

    # Stacks are built here, one after another: initial weights come from torch's global generator
    # (as a solo nn.Module's do), which threads building stacks at once would race for.
    built = [PerTrialStack([specs[i] for i in order], [data[i] for i in order], len(groups), x.shape[1],
                           n_classes, x.device) for groups, order in zip(chunks, members)]
    in_dim = x.shape[1]

    # every trial of a stack passes steps_per_epoch full batches per epoch (padding rows included)
    costs = [trial_flops(s.specs, in_dim, n_classes, s.steps_per_epoch * s.specs[0].batch_size * epochs)
             for s in built]
    biggest_step = max(trial_flops(s.specs, in_dim, n_classes, s.specs[0].batch_size) for s in built)

    def train(number: int, alone: bool) -> list[TrialResult]:
        return _train_epochs(built[number], x, y, epochs=epochs, evals={}, eval_every_epoch=False,
                             progress=progress and alone, desc=f"stack {number + 1}/{len(built)}")

    trained = run_independent(train, range(len(built)), costs=costs, step_flops=biggest_step, device=x.device,
                              tell_alone=True)
    return _in_given_order(len(specs), members, trained)


def _each_epoch(evals: Evals, eval_every_epoch: bool | Sequence[str]) -> list[str]:
    """The evaluation sets measured after every epoch: all (True), none (False) or those named."""
    if isinstance(eval_every_epoch, bool):
        return list(evals) if eval_every_epoch else []
    return [name for name in evals if name in eval_every_epoch]


def _renumbered(on_epoch: EpochWatch | None, positions: list[int]) -> EpochWatch | None:
    """A watcher of the trials ``positions`` (of the full list) that a stack numbers 0, 1, ..."""
    if on_epoch is None:
        return None
    local = {i: j for j, i in enumerate(positions)}

    def watch(epoch: int, records: dict[int, dict[str, float]]) -> list[int]:
        return [local[i] for i in on_epoch(epoch, {positions[j]: r for j, r in records.items()})]

    return watch


def _in_given_order(n: int, positions: list[list[int]], stacked: list[list[TrialResult]]) -> list[TrialResult]:
    """The results of every stack (``stacked[j][m]`` is the trial at ``positions[j][m]``) as one list."""
    results: list[TrialResult | None] = [None] * n
    for where, stack_results in zip(positions, stacked):
        for i, result in zip(where, stack_results):
            results[i] = result
    return results  # type: ignore[return-value]
