"""Many one-hidden-layer MLPs trained as one, each on its own data, sampler and loss.

``trainlab.train.batched`` stacks trials that see the same batches. Here every
trial brings a :class:`TrialData`: its own training rows of a shared pool, its
own sampler (a fresh permutation per epoch, or draws with replacement in
proportion to per-sample weights, as ``WeightedRandomSampler``), its own class
weights, focal exponent, logit offset and initial output bias. Trials whose
batches coincide (same rows, sampler and seed) form a group that shares one
gathered batch; a stack holds G groups of K trials, and one step is

    x = pool[index]                 (G, batch, in_dim): every group's batch, gathered at once
    h = x @ W1[g]^T                 (G, batch, K*hidden): one bmm for every trial
    z = a_t @ W2[t]^T               (G*K, batch, classes)

with the backward pass written out and each trial's loss its own weighted mean
(padding rows of a short last batch weigh 0). Every trial gets the gradient and
the Adam/SGD update it would get alone with ``nn.Module`` + ``torch.optim`` on
the same batches (the tests check it step by step); :func:`train_alone_on` is
that solo reference.

Entry point::

    results = train_per_trial(specs, data, x_pool, y_pool, epochs=10)
"""

from __future__ import annotations

import hashlib
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn
from torch.optim.adam import adam
from tqdm.auto import tqdm

from trainlab.config import check, positive
from trainlab.device import thread_limit, torch_generator
from trainlab.nn.mlp import MLP
from trainlab.train.batched import TrialResult
from trainlab.train.losses import FocalLoss, LogitAdjustedLoss
from trainlab.train.loop import make_optimizer
from trainlab.train.result import loss_status
from trainlab.train.stacked import ACTIVATION_FNS, ACTIVATION_GRADS, ADAM_BETAS, ADAM_EPS, TrialSpec, init_solo

__all__ = ["TrialData", "epoch_order", "init_trial", "trial_loss", "train_alone_on", "train_per_trial"]


@dataclass(frozen=True, eq=False)
class TrialData:
    """What one trial trains on and how its loss weighs it."""

    rows: torch.Tensor
    """(n,) int64 indices into the pool (x, y): this trial's training set."""
    sample_weights: torch.Tensor | None = None
    """(n,) sampling weights: every epoch draws n rows with replacement in proportion to them
    (``WeightedRandomSampler(weights, n, replacement=True)``); None: a fresh permutation per epoch."""
    class_weights: tuple[float, ...] | None = None
    """Loss weight per class (``CrossEntropyLoss(weight=)``); None: all 1."""
    focal_gamma: float = 0.0
    """Focal loss exponent; 0 is plain (weighted) cross-entropy."""
    logit_offset: tuple[float, ...] | None = None
    """Added to the logits inside the loss only (the logit-adjusted loss: tau * log prior)."""
    output_bias: tuple[float, ...] | None = None
    """Initial output-layer bias instead of ``nn.Linear``'s (the focal loss's prior initialisation)."""

    def __post_init__(self) -> None:
        check(self.rows.ndim == 1 and self.rows.numel() > 0, "a trial needs a non-empty 1-D tensor of rows")
        if self.sample_weights is not None:
            check(self.sample_weights.shape == self.rows.shape, "sample_weights needs one weight per row")
            check(bool((self.sample_weights >= 0).all()) and 0 < float(self.sample_weights.sum()) < math.inf,
                  "sample_weights must be finite and >= 0 with a positive sum")
        if self.class_weights is not None:
            positive("class_weights", list(self.class_weights))
        check(self.focal_gamma >= 0, f"focal_gamma must be >= 0 (got {self.focal_gamma})")
        check(self.focal_gamma == 0 or self.logit_offset is None,
              "a trial takes either a focal loss or a logit offset, not both")

    def key(self) -> tuple:
        """Identifies the batches this data draws (rows and sampler), for grouping trials that share them."""
        return (_digest(self.rows), None if self.sample_weights is None else _digest(self.sample_weights))


def _digest(t: torch.Tensor) -> str:
    return hashlib.blake2b(t.detach().cpu().contiguous().numpy().tobytes(), digest_size=16).hexdigest()


# -- the solo reference ---------------------------------------------------------------------------

def epoch_order(n: int, generator: torch.Generator, weights: torch.Tensor | None = None) -> torch.Tensor:
    """One epoch's order of positions ``0..n-1``: a permutation, or ``n`` weighted draws with replacement.

    The draws are exactly ``WeightedRandomSampler``'s (``torch.multinomial`` of the
    weights as float64), so a ``DataLoader`` with that sampler and the same
    generator yields the same batches.
    """
    if weights is None:
        return torch.randperm(n, generator=generator, device=generator.device)
    return torch.multinomial(weights.detach().to("cpu", torch.float64), n, True, generator=generator)


def trial_loss(data: TrialData, device: torch.device | str = "cpu") -> nn.Module:
    """The ``nn.Module`` loss of a trial: cross-entropy, focal or logit-adjusted, class-weighted or not."""
    weight = None if data.class_weights is None else torch.tensor(data.class_weights, device=device)
    if data.focal_gamma > 0:
        return FocalLoss(data.focal_gamma, weight)
    if data.logit_offset is not None:
        return LogitAdjustedLoss(torch.tensor(data.logit_offset, device=device), 1.0, weight)
    return nn.CrossEntropyLoss(weight=weight)


def init_trial(spec: TrialSpec, data: TrialData, in_dim: int, n_classes: int) -> MLP:
    """``init_solo(spec)`` with the trial's initial output bias, if it sets one."""
    model = init_solo(spec, in_dim, n_classes)
    if data.output_bias is not None:
        check(len(data.output_bias) == n_classes, f"output_bias needs {n_classes} values")
        with torch.no_grad():
            model.fc2.bias.copy_(torch.tensor(data.output_bias))
    return model


def train_alone_on(
    spec: TrialSpec, data: TrialData, x: torch.Tensor, y: torch.Tensor, *, epochs: int, n_classes: int
) -> TrialResult:
    """One trial the ordinary way: ``MLP`` + ``torch.optim`` + its loss module, batches from :func:`epoch_order`."""
    positive("epochs", epochs)
    model = init_trial(spec, data, x.shape[1], n_classes).to(x.device)
    optimizer = make_optimizer(spec.optimizer, model.parameters(), spec.lr)
    loss_fn = trial_loss(data, x.device)
    generator = torch_generator(spec.seed)
    rows = data.rows.to(x.device)
    n, history, status, seconds = rows.numel(), [], "done", 0.0
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        order = epoch_order(n, generator, data.sample_weights).to(x.device)
        total = torch.zeros((), device=x.device)
        for s in range(0, n, spec.batch_size):
            idx = rows[order[s : s + spec.batch_size]]
            loss = loss_fn(model(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach() * idx.numel()
        seconds += time.perf_counter() - start
        history.append({"epoch": epoch, "train_loss": (total / n).item()})
        status = loss_status(history[-1]["train_loss"])
        if status == "diverged":
            break
    return TrialResult(spec=spec, status=status, seconds=seconds, model=model, history=history,
                       stack_seconds=seconds, stack_size=1)


# -- the stack ------------------------------------------------------------------------------------

class PerTrialStack:
    """G groups of K trials (trial t = g*K + k); the K trials of a group share every batch.

    All trials share hidden width, activation, optimizer and learning rate (the
    step is one bmm per layer and one optimizer call); :func:`train_per_trial`
    sorts any list of trials into such stacks.
    """

    def __init__(self, specs: Sequence[TrialSpec], data: Sequence[TrialData], groups: int, in_dim: int,
                 n_classes: int, device: torch.device):
        t = len(specs)
        check(t > 0 and t % groups == 0, "a stack holds groups of equal size")
        first = specs[0]
        check(all((s.hidden, s.activation, s.optimizer, s.lr) == (first.hidden, first.activation, first.optimizer,
                                                                  first.lr) for s in specs),
              "the trials of one stack share hidden width, activation, optimizer and lr")
        self.specs, self.data = list(specs), list(data)
        self.G, self.K, self.T, self.C, self.H = groups, t // groups, t, n_classes, first.hidden
        g, k, h, c = self.G, self.K, self.H, self.C
        solos = [init_trial(s, d, in_dim, n_classes) for s, d in zip(specs, data)]
        w1 = torch.stack([m.fc1.weight.detach() for m in solos]).view(g, k * h, in_dim)
        b1 = torch.stack([m.fc1.bias.detach() for m in solos]).view(g, k * h)
        w2 = torch.stack([m.fc2.weight.detach() for m in solos])  # (T, C, H)
        b2 = torch.stack([m.fc2.bias.detach() for m in solos])  # (T, C)
        self.params = [p.to(device).contiguous() for p in (w1, b1, w2, b2)]
        self.class_weights = torch.tensor([d.class_weights or [1.0] * c for d in data], device=device)
        offsets = [d.logit_offset for d in data]
        self.offset = (torch.tensor([o or [0.0] * c for o in offsets], device=device).unsqueeze(1)
                       if any(o is not None for o in offsets) else None)
        gammas = [d.focal_gamma for d in data]
        self.gamma = torch.tensor(gammas, device=device).unsqueeze(1) if any(gammas) else None
        self.activation, self.optimizer, self.lr = first.activation, first.optimizer, first.lr
        self.alive = torch.ones(t, 1, 1, device=device)
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self._steps = [torch.zeros((), device=device) for _ in self.params]
        self._fused = device.type in ("cpu", "cuda")

    def train_step(self, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """One step of every trial: x (G, B, in_dim), y (G, B), mask (G, B) 1 for real rows, 0 for padding.

        Returns each trial's loss on its batch, shape (T,).
        """
        w1, b1, w2, b2 = self.params
        g, k, t, hid = self.G, self.K, self.T, self.H
        b = x.shape[1]
        h = torch.baddbmm(b1.unsqueeze(1), x, w1.transpose(1, 2))  # (G, B, K*H)
        a = ACTIVATION_FNS[self.activation](h)
        a_t = a.view(g, b, k, hid).transpose(1, 2).reshape(t, b, hid)  # per trial: (T, B, H)
        z = torch.baddbmm(b2.unsqueeze(1), a_t, w2.transpose(1, 2))  # (T, B, C)
        if self.offset is not None:
            z = z + self.offset
        target = y.unsqueeze(1).expand(g, k, b).reshape(t, b, 1)
        zmax = z.amax(dim=2, keepdim=True)
        e = (z - zmax).exp_()
        total = e.sum(dim=2, keepdim=True)
        nll = (total.log() + zmax - z.gather(2, target)).squeeze(2)  # (T, B)
        p = e.div_(total)  # softmax
        weight = self.class_weights.gather(1, target.squeeze(2)) * mask.unsqueeze(1).expand(g, k, b).reshape(t, b)
        coef = weight / weight.sum(1, keepdim=True)  # torch's weighted mean: sum w l / sum w
        if self.gamma is None:
            losses, scale = (coef * nll).sum(1), coef
        else:  # focal: l = q^g nll with q = 1 - p_y; dl/dz = (q^g + g p_y q^(g-1) nll) (softmax - onehot)
            q = 1.0 - p.gather(2, target).squeeze(2)
            focal = q.pow(self.gamma)
            slope = torch.where(self.gamma > 0, self.gamma * (1.0 - q) * q.clamp_min(1e-30).pow(self.gamma - 1) * nll,
                                0.0)
            losses, scale = (coef * focal * nll).sum(1), coef * (focal + slope)
        dz = p.mul_(scale.unsqueeze(2)).scatter_add_(2, target, -scale.unsqueeze(2))
        dz = dz.nan_to_num_(0.0, 0.0, 0.0).mul_(self.alive)  # stopped trials: zero gradients
        grad_b2 = dz.sum(1)
        grad_w2 = dz.transpose(1, 2) @ a_t  # (T, C, H)
        da = (dz @ w2).view(g, k, b, hid).transpose(1, 2).reshape(g, b, k * hid)
        dh = ACTIVATION_GRADS[self.activation](da, h, a)
        grad_b1 = dh.sum(1)
        grad_w1 = dh.transpose(1, 2) @ x  # (G, K*H, in_dim)
        self._update([grad_w1, grad_b1, grad_w2, grad_b2])
        return losses

    @torch.no_grad()
    def _update(self, grads: list[torch.Tensor]) -> None:
        if self.optimizer == "sgd":
            torch._foreach_add_(self.params, grads, alpha=-self.lr)
            return
        adam(self.params, grads, self.exp_avg, self.exp_avg_sq, [], self._steps, fused=self._fused,
             foreach=None if self._fused else True, amsgrad=False, beta1=ADAM_BETAS[0], beta2=ADAM_BETAS[1],
             lr=self.lr, weight_decay=0.0, eps=ADAM_EPS, maximize=False)

    def freeze(self, i: int) -> None:
        """Stop trial i: zero its weights and optimizer state; its gradients are zero from now on."""
        self.alive[i] = 0.0
        g, k = divmod(i, self.K)
        rows = slice(k * self.H, (k + 1) * self.H)
        for tensors in (self.params, self.exp_avg, self.exp_avg_sq):
            tensors[0][g, rows] = 0.0
            tensors[1][g, rows] = 0.0
            tensors[2][i] = 0.0
            tensors[3][i] = 0.0

    def to_models(self) -> list[MLP]:
        """Every trial as a plain MLP with the trained weights, in stack order."""
        w1, b1, w2, b2 = self.params
        models = []
        for i, spec in enumerate(self.specs):
            g, k = divmod(i, self.K)
            rows = slice(k * self.H, (k + 1) * self.H)
            model = MLP(w1.shape[2], self.H, self.C, spec.activation).to(w1.device)
            with torch.no_grad():
                for param, value in zip(model.parameters(), (w1[g, rows], b1[g, rows], w2[i], b2[i])):
                    param.copy_(value)
            models.append(model)
        return models


def train_per_trial(
    specs: Sequence[TrialSpec],
    data: Sequence[TrialData],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    n_classes: int | None = None,
    max_groups: int = 32,
    workers: int = 1,
    progress: bool = True,
) -> list[TrialResult]:
    """Train every ``(spec, data)`` pair on its own rows of the pool ``(x, y)``; results in the order given.

    Trials that draw the same batches (same rows, sampler, batch size and seed)
    share them; stacks hold up to ``max_groups`` such groups with the same number
    of trials, hidden width, activation, optimizer, learning rate and steps per epoch.
    With ``workers > 1`` on the CPU, that many stacks train at once, one thread
    each (a stack's small GEMMs gain little from a second thread, and on a shared
    machine a second OpenMP thread spin-waits for a busy core).
    A trial whose loss turns NaN/Inf is ``diverged`` and frozen; the others go on.
    """
    check(len(specs) == len(data) and len(specs) > 0, "give one TrialData per TrialSpec")
    positive("epochs", epochs)
    positive("workers", workers)
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
    chunks.sort(key=lambda groups: -sum(len(m) + 4 for m in groups))  # largest first: workers finish together

    # Stacks are built here, one after another: initial weights come from torch's global generator
    # (as a solo nn.Module's do), which threads building stacks at once would race for.
    built = []
    for groups in chunks:
        order = [i for members in groups for i in members]
        built.append(PerTrialStack([specs[i] for i in order], [data[i] for i in order], len(groups), x.shape[1],
                                   n_classes, x.device))

    def train(number: int) -> list[TrialResult]:
        return _train_stack(built[number], x, y, epochs=epochs, progress=progress,
                            desc=f"stack {number + 1}/{len(chunks)}")

    if workers > 1 and x.device.type == "cpu":
        with thread_limit(1), ThreadPoolExecutor(workers) as pool:
            trained = list(pool.map(train, range(len(chunks))))
    else:
        trained = [train(number) for number in range(len(chunks))]
    results: list[TrialResult | None] = [None] * len(specs)
    for groups, stacked in zip(chunks, trained):
        for i, result in zip((i for members in groups for i in members), stacked):
            results[i] = result
    return results  # type: ignore[return-value]


def _train_stack(stack: PerTrialStack, x: torch.Tensor, y: torch.Tensor, *, epochs: int, progress: bool,
                 desc: str) -> list[TrialResult]:
    specs, data, groups = stack.specs, stack.data, stack.G
    k, b = stack.K, specs[0].batch_size
    leaders = [data[g * k] for g in range(groups)]  # one per group: the group's rows and sampler
    generators = [torch_generator(specs[g * k].seed) for g in range(groups)]
    sizes = torch.tensor([d.rows.numel() for d in leaders], device=x.device)
    steps = math.ceil(int(sizes.max()) / b)
    rows = [d.rows.to(x.device) for d in leaders]
    buffer = torch.empty(groups * b, x.shape[1], dtype=x.dtype, device=x.device)
    histories: list[list[dict[str, float]]] = [[] for _ in specs]
    alive = [True] * len(specs)
    seconds = 0.0
    for epoch in tqdm(range(1, epochs + 1), desc=desc, disable=None if progress else True, leave=False):
        start = time.perf_counter()
        # Padding repeats the group's own first row (weight 0): any other pool row could be NaN/Inf
        # (another trial's data), and 0 * NaN in the loss or the weight gradient is NaN.
        index = torch.stack([r[:1].expand(steps * b) for r in rows]).clone()
        mask = torch.zeros(groups, steps * b, dtype=x.dtype, device=x.device)
        for g, (d, gen, r) in enumerate(zip(leaders, generators, rows)):
            order = epoch_order(r.numel(), gen, d.sample_weights).to(x.device)
            index[g, : r.numel()] = r[order]
            mask[g, : r.numel()] = 1.0
        total = torch.zeros(len(specs), device=x.device)
        for s in range(steps):
            cols = slice(s * b, (s + 1) * b)
            idx = index[:, cols].contiguous()
            xb = torch.index_select(x, 0, idx.view(-1), out=buffer).view(groups, b, -1)
            m = mask[:, cols]
            losses = stack.train_step(xb, y[idx], m)
            total += losses * m.sum(1).repeat_interleave(k)
        epoch_loss = (total / sizes.repeat_interleave(k)).tolist()  # one sync per epoch
        seconds += time.perf_counter() - start
        for i in range(len(specs)):
            if alive[i]:
                histories[i].append({"epoch": epoch, "train_loss": epoch_loss[i]})
                if loss_status(epoch_loss[i]) == "diverged":
                    alive[i] = False
                    stack.freeze(i)
        if not any(alive):
            break
    models = stack.to_models()
    return [TrialResult(spec=spec, status="done" if ok else "diverged", seconds=seconds / len(specs), model=model,
                        history=history, stack_seconds=seconds, stack_size=len(specs))
            for spec, ok, model, history in zip(specs, alive, models, histories)]
