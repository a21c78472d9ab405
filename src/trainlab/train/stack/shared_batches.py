"""Trials that see the same batches as one stack: four tensors with a hand-written step.

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

A trial that turns NaN/Inf must not reach the others. The channels between trials
are the wide GEMMs, through the zero off-block entries of the output layer
(``0 * inf = nan``), so: hidden activations enter every GEMM with NaN/Inf zeroed,
output gradients likewise, and the optimizers update only the diagonal blocks of
the output layer (kept as one contiguous tensor), so off-block entries stay
exactly zero whatever a trial's learning rate or gradients.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch.optim.adam import adam

from trainlab.config import check
from trainlab.device import torch_generator
from trainlab.nn.mlp import MLP
from trainlab.train.adam import fused_adam
from trainlab.train.loop import batch_indices
from trainlab.train.stack.spec import TrialSpec, init_solo

ADAM_BETAS = (0.9, 0.999)  # torch.optim.Adam's defaults, which the solo path uses
ADAM_EPS = 1e-8


def adam_step_counters(count: int, device: torch.device) -> list[torch.Tensor]:
    """``count`` step counters for torch's functional ``adam`` on ``device``.

    The fused kernel reads them on the device. The foreach branch (MPS) reads every device
    counter with ``.item()`` at every call (3,040 host syncs in a quick mnist-grid), so there
    they live on the CPU, where ``torch.optim.Adam`` keeps them too.
    """
    return [torch.zeros((), device=device if fused_adam(device) else "cpu") for _ in range(count)]


class StackedMLP:
    """The trials of one stack as four tensors, with a hand-written training step.

    Hidden units are ordered Adam trials first, then SGD trials, then by learning
    rate and activation, so each (optimizer, lr) updates one contiguous slice of
    every tensor with a scalar lr and each activation covers few column ranges.
    """

    def __init__(self, specs: Sequence[TrialSpec], in_dim: int, n_classes: int, device: torch.device):
        check(len(specs) > 0, "a stack needs at least one trial")
        self.specs = list(specs)
        self.n_classes = n_classes
        self.order = sorted(
            range(len(specs)), key=lambda i: (specs[i].optimizer != "adam", specs[i].lr, specs[i].activation)
        )
        ordered = [specs[i] for i in self.order]
        widths = [s.hidden for s in ordered]
        starts = [0]
        for w in widths:
            starts.append(starts[-1] + w)
        self.slices = [slice(a, b) for a, b in zip(starts[:-1], starts[1:])]  # hidden rows per ordered trial
        width, t, c = starts[-1], len(ordered), n_classes

        w1 = torch.zeros(width, in_dim)
        b1 = torch.zeros(width)
        w2 = torch.zeros(t * c, width)
        b2 = torch.zeros(t * c)
        for k, (spec, rows) in enumerate(zip(ordered, self.slices)):
            solo = init_solo(spec, in_dim, n_classes)
            w1[rows] = solo.fc1.weight.detach()
            b1[rows] = solo.fc1.bias.detach()
            w2[k * c : (k + 1) * c, rows] = solo.fc2.weight.detach()
            b2[k * c : (k + 1) * c] = solo.fc2.bias.detach()
        self.params = [p.to(device) for p in (w1, b1, w2, b2)]
        # Trial k's (c, h_k) output block, row by row, at [c * start_k, c * stop_k) of one flat tensor:
        # what the optimizers update (then copied into w2), so no update ever writes off the blocks.
        flat = [(torch.arange(k * c, (k + 1) * c)[:, None] * width + torch.arange(rows.start, rows.stop)).flatten()
                for k, rows in enumerate(self.slices)]
        self._block_index = torch.cat(flat).to(device)
        self.w2_blocks = self.params[2].view(-1)[self._block_index]
        trials = torch.arange(t)
        self._trial_of_unit = trials.repeat_interleave(torch.tensor(widths)).to(device)
        self._trial_of_block = trials.repeat_interleave(torch.tensor(widths) * c).to(device)
        self.ordered = ordered
        self.alive = [True] * t
        self._frozen: list[int] = []
        self.runs = self._optimizer_runs()
        n_adam = sum(spec.optimizer == "adam" for spec in ordered)
        self.adam_rows = [starts[n_adam], starts[n_adam], c * starts[n_adam], n_adam * c]
        self.exp_avg = [torch.zeros_like(p[:k]) for p, k in zip(self._updated(), self.adam_rows)]
        self.exp_avg_sq = [torch.zeros_like(p[:k]) for p, k in zip(self._updated(), self.adam_rows)]
        # torch's Adam counts steps in tensors, one per parameter; one set per Adam run.
        self._adam_steps = {rows.start: adam_step_counters(4, device)
                            for rows, _, optimizer, _ in self.runs if optimizer == "adam"}
        self._fused = fused_adam(device)
        self._minus_one = torch.full((1, 1, 1), -1.0, device=device)
        self._generator = torch_generator(self.specs[0].seed)  # the batch order, as loop.fit draws it

        # Contiguous column ranges that share an activation.
        self.segments: list[tuple[int, int, str]] = []
        for spec, rows in zip(ordered, self.slices):
            if self.segments and self.segments[-1][2] == spec.activation and self.segments[-1][1] == rows.start:
                self.segments[-1] = (self.segments[-1][0], rows.stop, spec.activation)
            else:
                self.segments.append((rows.start, rows.stop, spec.activation))

    # -- one epoch -----------------------------------------------------------
    def train_epoch(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One pass over (x, y) in the batches ``loop.fit`` draws for the first trial's batch size
        and seed; returns every trial's mean loss, shape (trials,), stack order (not synchronised)."""
        n = x.shape[0]
        total = torch.zeros(len(self.slices), device=x.device)
        for idx in batch_indices(n, self.specs[0].batch_size, self._generator, x.device):
            total += self.train_step(x.index_select(0, idx), y.index_select(0, idx)) * idx.numel()
        return total / n

    # -- forward -------------------------------------------------------------
    def _activate(self, h: torch.Tensor) -> torch.Tensor:
        if len(self.segments) == 1:
            return ACTIVATION_FNS[self.segments[0][2]](h)
        a = torch.empty_like(h)
        for start, stop, name in self.segments:
            a[:, start:stop] = ACTIVATION_FNS[name](h[:, start:stop])
        return a

    def _hidden(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pre-activations h and activations a, with a trial's NaN/Inf activations zeroed: they
        would reach every trial through the zero off-block weights of the output GEMM (0 * inf = nan)."""
        w1, b1, _, _ = self.params
        h = torch.addmm(b1, x, w1.t())
        return h, self._activate(h).nan_to_num_(0.0, 0.0, 0.0)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(B, trials, classes) in stack order; a trial's NaN/Inf stays in its own logits."""
        _, _, w2, b2 = self.params
        return torch.addmm(b2, self._hidden(x)[1], w2.t()).view(x.shape[0], -1, self.n_classes)

    # -- one training step ---------------------------------------------------
    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One Adam/SGD step of every trial on batch (x, y); returns the per-trial mean losses (stack order)."""
        w1, _, w2, b2 = self.params
        n, t, c = x.shape[0], len(self.slices), self.n_classes
        h, a = self._hidden(x)
        z = torch.addmm(b2, a, w2.t()).view(n, t, c)
        # Softmax cross-entropy per trial, written out (faster than log_softmax for 10 classes).
        zmax = z.amax(dim=2, keepdim=True)
        e = (z - zmax).exp_()
        total = e.sum(dim=2, keepdim=True)
        target = y.view(n, 1, 1).expand(n, t, 1)
        losses = (total.log() + zmax - z.gather(2, target)).view(n, t).mean(0)
        # d(mean cross-entropy)/d(logits) = (softmax - onehot) / n, per trial.
        dz = e.div_(total.mul_(n)).scatter_add_(2, target, self._minus_one.div(n).expand(n, t, 1))
        dz = dz.view(n, t * c).nan_to_num_(0.0, 0.0, 0.0)
        for k in self._frozen:  # a stopped trial gets zero gradients, so its zero weights stay zero
            dz[:, k * c : (k + 1) * c] = 0.0
        grad_b2 = dz.sum(0)
        grad_w2 = dz.t() @ a  # only its diagonal blocks are used (_update)
        dh = dz @ w2
        if len(self.segments) == 1:
            dh = ACTIVATION_GRADS[self.segments[0][2]](dh, h, a)
        else:
            for start, stop, name in self.segments:
                dh[:, start:stop] = ACTIVATION_GRADS[name](dh[:, start:stop], h[:, start:stop], a[:, start:stop])
        grad_b1 = dh.sum(0)
        adam_rows = self.adam_rows[0]
        grad_w1 = dh[:, :adam_rows].t() @ x  # Adam rows only; SGD rows are updated below without a grad tensor
        with torch.no_grad():
            for hidden_rows, _, optimizer, lr in self.runs:
                if optimizer == "sgd":  # w1 -= lr * dh^T x as one GEMM into the weights
                    w1[hidden_rows].addmm_(dh[:, hidden_rows].t(), x, alpha=-lr)
        self._update([grad_w1, grad_b1, grad_w2, grad_b2])
        return losses

    def _optimizer_runs(self) -> list[tuple[slice, slice, str, float]]:
        """Contiguous runs of trials with one (optimizer, lr): (hidden rows, output rows, optimizer, lr)."""
        c, runs = self.n_classes, []
        for k, (spec, rows) in enumerate(zip(self.ordered, self.slices)):
            last = runs[-1] if runs else None
            if last and last[2:] == (spec.optimizer, spec.lr):
                runs[-1] = (slice(last[0].start, rows.stop), slice(last[1].start, (k + 1) * c), *last[2:])
            else:
                runs.append((rows, slice(k * c, (k + 1) * c), spec.optimizer, spec.lr))
        return runs

    @torch.no_grad()
    def _update(self, grads: list[torch.Tensor]) -> None:
        """Every trial's own Adam or SGD step with its own learning rate.

        Adam is torch's own functional Adam (the fused kernel on CPU and CUDA: one
        pass over memory) on row views of the stacked tensors, one call per run of
        trials sharing a learning rate; SGD is ``p -= lr * g`` on the other rows
        (``grads[0]`` holds only the Adam rows: SGD's first layer is done in ``train_step``).
        The output layer is updated through its diagonal blocks only (``w2_blocks``), then
        copied into ``w2``: its off-block zeros are never written, even by an update that
        overflows (an Adam step of 0 times an infinite step size is NaN).
        """
        c = self.n_classes
        grads = [grads[0], grads[1], grads[2].view(-1)[self._block_index], grads[3]]
        for hidden_rows, out_rows, optimizer, lr in self.runs:
            spans = [hidden_rows, hidden_rows, slice(c * hidden_rows.start, c * hidden_rows.stop), out_rows]
            params = [p[span] for p, span in zip(self._updated(), spans)]
            grad_views = [g[span] for g, span in zip(grads, spans)]
            if optimizer == "sgd":
                torch._foreach_add_(params[1:], grad_views[1:], alpha=-lr)
                continue
            exp_avgs = [m[span] for m, span in zip(self.exp_avg, spans)]
            exp_avg_sqs = [v[span] for v, span in zip(self.exp_avg_sq, spans)]
            adam(params, grad_views, exp_avgs, exp_avg_sqs, [], self._adam_steps[hidden_rows.start],
                 fused=self._fused, foreach=None if self._fused else True, amsgrad=False, beta1=ADAM_BETAS[0],
                 beta2=ADAM_BETAS[1], lr=lr, weight_decay=0.0, eps=ADAM_EPS, maximize=False)
        self.params[2].view(-1).index_copy_(0, self._block_index, self.w2_blocks)

    def _updated(self) -> list[torch.Tensor]:
        """The tensors the optimizers update: w1, b1, the output blocks, b2."""
        return [self.params[0], self.params[1], self.w2_blocks, self.params[3]]

    def freeze(self, k: int) -> None:
        """Stop trial k (stack order): zero its weights and Adam state; its gradients are zero from now on."""
        self.alive[k] = False
        self._frozen.append(k)
        c, rows = self.n_classes, self.slices[k]
        spans = [rows, rows, slice(c * rows.start, c * rows.stop), slice(k * c, (k + 1) * c)]
        for tensors in (self._updated(), self.exp_avg, self.exp_avg_sq):
            for tensor, span in zip(tensors, spans):
                if tensor.shape[0] >= span.stop:  # Adam state only covers the Adam rows
                    tensor[span] = 0.0
        self.params[2][spans[3]] = 0.0

    @torch.no_grad()
    def finite(self) -> list[bool]:
        """Whether every weight of each trial is finite, stack order (one sync).

        A trial's loss can stay finite while some of its hidden units are NaN/Inf (their
        activations are zeroed in the stack, where alone they would make its loss NaN).
        """
        w1, b1, _, b2 = self.params
        bad = torch.zeros(len(self.slices), device=w1.device)
        bad.index_add_(0, self._trial_of_unit, (~(torch.isfinite(w1).all(1) & torch.isfinite(b1))).float())
        bad.index_add_(0, self._trial_of_block, (~torch.isfinite(self.w2_blocks)).float())
        bad += (~torch.isfinite(b2.view(len(self.slices), self.n_classes))).sum(1)
        return (bad == 0).tolist()

    # -- evaluation and export -----------------------------------------------
    @torch.inference_mode()
    def accuracy(self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 8192) -> torch.Tensor:
        """Accuracy in percent of every trial, shape (trials,), stack order."""
        correct = torch.zeros(len(self.slices), device=x.device)
        for start in range(0, x.shape[0], batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            correct += (self.logits(xb).argmax(dim=2) == yb[:, None]).sum(0)
        return correct * 100.0 / max(x.shape[0], 1)

    def to_models(self) -> list[MLP]:
        """Every trial as a plain MLP with the trained weights, in stack order."""
        w1, b1, w2, b2 = self.params
        c = self.n_classes
        ordered = zip((self.specs[i] for i in self.order), self.slices)
        return [MLP.with_weights([(w1[rows], b1[rows]), (w2[k * c : (k + 1) * c, rows], b2[k * c : (k + 1) * c])],
                                 spec.activation) for k, (spec, rows) in enumerate(ordered)]


def _sigmoid_grad(da: torch.Tensor, h: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    return torch.ops.aten.sigmoid_backward(da, a)  # da * a * (1 - a), one pass


def _relu_grad(da: torch.Tensor, h: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    return torch.ops.aten.threshold_backward(da, h, 0)  # torch's ReLU backward: 0 where h <= 0


def _tanh_grad(da: torch.Tensor, h: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    return torch.ops.aten.tanh_backward(da, a)  # da * (1 - a^2)


def _identity_grad(da: torch.Tensor, h: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    return da


# The hidden activations both hand-written stacks (this one and own_batches.py) share:
# the function, and its backward from (upstream grad, pre-activation h, activation a).
ACTIVATION_FNS = {"sigmoid": torch.sigmoid, "relu": torch.relu, "tanh": torch.tanh, "identity": lambda h: h.clone()}
ACTIVATION_GRADS = {"sigmoid": _sigmoid_grad, "relu": _relu_grad, "tanh": _tanh_grad, "identity": _identity_grad}
