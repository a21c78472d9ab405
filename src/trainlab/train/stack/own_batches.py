"""Trials that each bring their own data, sampler and loss, as one stack.

Every trial brings a :class:`~trainlab.train.stack.spec.TrialData`: its own training
rows of a shared pool, its own sampler (a fresh permutation per epoch, or draws with
replacement in proportion to per-sample weights, as ``WeightedRandomSampler``), its
own class weights, focal exponent, logit offset and initial output bias. Trials whose
batches coincide (same rows, sampler and seed) form a group that shares one gathered
batch; a stack holds G groups of K trials, and one step is

    x = pool[index]                 (G, batch, in_dim): every group's batch, gathered at once
    h = x @ W1[g]^T                 (G, batch, K*hidden): one bmm for every trial
    z = a_t @ W2[t]^T               (G*K, batch, classes)

with the backward pass written out and each trial's loss its own weighted mean
(padding rows of a short last batch weigh 0). Every trial gets the gradient and
the Adam/SGD update it would get alone with ``nn.Module`` + ``torch.optim`` on
the same batches (the tests check it step by step against ``loop.fit``).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch.optim.adam import adam

from trainlab.config import check
from trainlab.device import torch_generator
from trainlab.nn.mlp import MLP
from trainlab.train.adam import fused_adam
from trainlab.train.loop import epoch_order
from trainlab.train.stack.shared_batches import (ACTIVATION_FNS, ACTIVATION_GRADS, ADAM_BETAS, ADAM_EPS,
                                                 adam_step_counters)
from trainlab.train.stack.spec import TrialData, TrialSpec, init_trial


class PerTrialStack:
    """G groups of K trials (trial t = g*K + k); the K trials of a group share every batch.

    All trials share hidden width, activation, optimizer and learning rate (the
    step is one bmm per layer and one optimizer call); ``trainlab.train.stack.train_per_trial``
    sorts any list of trials into such stacks, whose first trials of each group lead it
    (its rows, sampler and seed are the group's).
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
        self.order = list(range(t))  # stack order is the order given
        self.alive = [True] * t
        self._alive_mask = torch.ones(t, 1, 1, device=device)
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self._steps, self._fused = adam_step_counters(len(self.params), device), fused_adam(device)
        # One leader per group (its first trial): the group's rows, sampler and batch order.
        self._leaders = [self.data[i * k] for i in range(g)]
        self._generators = [torch_generator(self.specs[i * k].seed) for i in range(g)]
        self._rows = [d.rows.to(device) for d in self._leaders]
        self._sizes = torch.tensor([d.rows.numel() for d in self._leaders], device=device)
        self.steps_per_epoch = math.ceil(int(self._sizes.max()) / first.batch_size)

    def train_epoch(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One pass of every group over its rows of the pool (x, y), each in the order ``loop.fit``
        draws for its leader; returns every trial's mean loss, shape (T,) (not synchronised)."""
        groups, k, b = self.G, self.K, self.specs[0].batch_size
        steps = self.steps_per_epoch
        buffer = torch.empty(groups * b, x.shape[1], dtype=x.dtype, device=x.device)
        # Padding repeats the group's own first row (weight 0): any other pool row could be NaN/Inf
        # (another trial's data), and 0 * NaN in the loss or the weight gradient is NaN.
        index = torch.stack([r[:1].expand(steps * b) for r in self._rows]).clone()
        mask = torch.zeros(groups, steps * b, dtype=x.dtype, device=x.device)
        for g, (d, gen, r) in enumerate(zip(self._leaders, self._generators, self._rows)):
            order = epoch_order(r.numel(), gen, d.sample_weights).to(x.device)
            index[g, : r.numel()] = r[order]
            mask[g, : r.numel()] = 1.0
        total = torch.zeros(self.T, device=x.device)
        for s in range(steps):
            cols = slice(s * b, (s + 1) * b)
            idx = index[:, cols].contiguous()
            xb = torch.index_select(x, 0, idx.view(-1), out=buffer).view(groups, b, -1)
            m = mask[:, cols]
            losses = self.train_step(xb, y[idx], m)
            total += losses * m.sum(1).repeat_interleave(k)
        return total / self._sizes.repeat_interleave(k)

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
        dz = dz.nan_to_num_(0.0, 0.0, 0.0).mul_(self._alive_mask)  # stopped trials: zero gradients
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
        self.alive[i] = False
        self._alive_mask[i] = 0.0
        g, k = divmod(i, self.K)
        rows = slice(k * self.H, (k + 1) * self.H)
        for tensors in (self.params, self.exp_avg, self.exp_avg_sq):
            tensors[0][g, rows] = 0.0
            tensors[1][g, rows] = 0.0
            tensors[2][i] = 0.0
            tensors[3][i] = 0.0

    def finite(self) -> list[bool]:
        """All True: nothing in this stack hides a trial's NaN/Inf weights from its loss (no
        activation is zeroed, as ``StackedMLP`` must), so the loss check alone stops a trial,
        as it would stop the trial alone."""
        return [True] * self.T

    def to_models(self) -> list[MLP]:
        """Every trial as a plain MLP with the trained weights, in stack order."""
        w1, b1, w2, b2 = self.params
        models = []
        for i, spec in enumerate(self.specs):
            g, k = divmod(i, self.K)
            rows = slice(k * self.H, (k + 1) * self.H)
            models.append(MLP.with_weights([(w1[g, rows], b1[g, rows]), (w2[i], b2[i])], spec.activation))
        return models
