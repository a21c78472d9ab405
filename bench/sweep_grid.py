"""Benchmark: the MNIST MLP study's Q2 grid (24 MLPs for one activation) trained the study's way and trainlab's way.

Both ways run in this process, on Fashion-MNIST (Debian's copy, 48,000 train /
12,000 validation / 10,000 test images), at the same epochs, with the same
initial weights per configuration:

- the study's way: a ``Dataset`` returning one (image tensor, label) per index, as
  torchvision's datasets with ``ToTensor()`` do, a shuffling ``DataLoader``, one
  model and one ``torch.optim`` optimizer at a time, evaluation through
  ``DataLoader``s;
- trainlab: ``trainlab.train.stack.train_trials``: data on the device as one
  tensor, the trials of each batch size trained together as one stacked model.

Timed: training plus the final train/validation/test accuracy, for all 24
configurations; trainlab runs once before and once after the study's way and
its time is the mean of the two (the machine is shared; its load drifts). The
process's CPU time is printed as well: with one thread it leaves out the time
the process waited for a core. Both
ways draw the same batches (a seeded ``torch.randperm`` per epoch), so their
per-configuration accuracies differ only by float rounding. The FLOP limit is the grid's FLOPs divided by this machine's
float32 matmul rate (best of several large single-threaded ``torch.mm`` in this process, times the
number of cores):
training needs, per sample and trial, 4*(784*h + 10*h) for the forward pass and
weight gradients plus 2*10*h for the gradient into the hidden layer (none into
the input); evaluation 2*(784*h + 10*h) per image. Biases, activations, the
loss and the optimizer are not counted, so the limit is strict.

Run: ``python bench/sweep_grid.py [--epochs 2] [--activation sigmoid] [--threads 1]`` (about 3 minutes
at the defaults, almost all of it the study's way).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

try:
    import trainlab  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _machine import matmul_rates  # bench/ is on sys.path when a bench runs as a script

from trainlab.data import load_images, to_tensor, train_val_split
from trainlab.device import claim_cores, torch_generator, use_threads
from trainlab.nn.mlp import MLP
from trainlab.train.stack import TrialSpec, train_trials, trial_flops

BATCH_SIZES = (64, 128, 1024)
OPTIMIZERS = (("adam", 1e-3), ("sgd", 1e-2))
HIDDENS = (4, 32, 64, 128)


class PerSampleImages(Dataset):
    """One (1 x 28 x 28 float tensor in [0, 1], int label) per index, like torchvision + ToTensor()."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return torch.from_numpy(self.images[i]).float().div(255.0).unsqueeze(0), int(self.labels[i])


class SeededShuffle(Sampler):
    """shuffle=True with one seeded torch.randperm per epoch: the batches trainlab's batch_indices draws.

    (DataLoader(shuffle=True, generator=g) draws a second, unused permutation at the end of
    every epoch, so from epoch 2 on its order would differ from trainlab's.)
    """

    def __init__(self, n: int, seed: int):
        self.n, self.generator = n, torch_generator(seed)

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        yield from torch.randperm(self.n, generator=self.generator).tolist()


class MulticlassMLP(nn.Module):
    """The study's model: flatten, fc1, activation, fc2 (weights taken from trainlab's MLP for the same init)."""

    def __init__(self, mlp: MLP):
        super().__init__()
        self.mlp = mlp

    def forward(self, x):
        return self.mlp(x.view(x.shape[0], -1))


def study_accuracy(model: nn.Module, dataset: Dataset) -> float:
    correct = total = 0
    model.eval()
    with torch.no_grad():
        for images, labels in DataLoader(dataset, batch_size=64, shuffle=False):
            correct += (model(images).argmax(1) == labels).sum().item()
            total += labels.numel()
    return 100.0 * correct / total


def study_way(spec: TrialSpec, sets: dict[str, Dataset], epochs: int) -> dict[str, float]:
    """One configuration as the study trained it."""
    torch.manual_seed(spec.seed)
    model = MulticlassMLP(MLP(784, spec.hidden, 10, spec.activation))
    optimizer = (torch.optim.Adam if spec.optimizer == "adam" else torch.optim.SGD)(model.parameters(), lr=spec.lr)
    criterion = nn.CrossEntropyLoss()
    loader = DataLoader(sets["train"], batch_size=spec.batch_size, sampler=SeededShuffle(len(sets["train"]), spec.seed))
    for _ in range(epochs):
        model.train()
        for images, labels in loader:
            optimizer.zero_grad()
            loss = criterion(model(images), labels)
            loss.backward()
            optimizer.step()
    return {f"{name}_acc": study_accuracy(model, ds) for name, ds in sets.items()}


def matmul_rate() -> float:
    """Best float32 FLOP/s of a 2048^3 torch.mm on one thread (one core's limit), by wall clock."""
    with use_threads(1):
        return matmul_rates()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2, help="epochs per configuration, both ways (default 2)")
    parser.add_argument("--activation", default="sigmoid", help="sigmoid (Table 2) or relu (Table 3)")
    parser.add_argument("--threads", type=int, default=1,
                        help="cores for both ways (default 1: on a shared 2-core machine two threads spin-wait on "
                             "each other and both ways run 10-15x slower; use 2 on an idle machine). The study's way "
                             "gets that many torch threads; trainlab plans its own (device.cpu_plan: one "
                             "single-threaded worker per stack and core)")
    args = parser.parse_args()
    claim_cores(args.threads)

    data = load_images("fashion-mnist")
    train_idx, val_idx = train_val_split(len(data.train_labels), 0.2, seed=0)
    specs = [TrialSpec(hidden=h, activation=args.activation, optimizer=opt, lr=lr, batch_size=bs, seed=0)
             for bs in BATCH_SIZES for opt, lr in OPTIMIZERS for h in HIDDENS]
    print(f"Fashion-MNIST from {data.source}; {len(train_idx)} train / {len(val_idx)} val / "
          f"{len(data.test_labels)} test; {len(specs)} configurations ({args.activation}), {args.epochs} epochs; "
          f"torch {torch.__version__}, {args.threads} threads, load average {os.getloadavg()[0]:.1f}")
    rate_before = matmul_rate()

    def trainlab_way() -> tuple[float, list]:
        """Tensors once, every batch size's trials as one stacked model; returns (seconds, results)."""
        start, cpu_start = time.perf_counter(), time.process_time()
        device = torch.device("cpu")
        x_all = to_tensor(data.train_images, device)
        y_all = torch.as_tensor(data.train_labels, device=device).long()
        evals = {
            "train": (x_all[train_idx], y_all[train_idx]),
            "val": (x_all[val_idx], y_all[val_idx]),
            "test": (to_tensor(data.test_images, device), torch.as_tensor(data.test_labels, device=device).long()),
        }
        results = train_trials(specs, *evals["train"], epochs=args.epochs, n_classes=10, evals=evals,
                               progress=False)
        return time.perf_counter() - start, time.process_time() - cpu_start, results

    # trainlab before and after the study's way, so a change in the machine's load hits both.
    first_seconds, first_cpu, ours = trainlab_way()

    # The study's way: one model at a time through per-sample Datasets and DataLoaders.
    study_sets = {
        "train": PerSampleImages(data.train_images[train_idx], data.train_labels[train_idx]),
        "val": PerSampleImages(data.train_images[val_idx], data.train_labels[val_idx]),
        "test": PerSampleImages(data.test_images, data.test_labels),
    }
    start, cpu_start = time.perf_counter(), time.process_time()
    study_results = [study_way(spec, study_sets, args.epochs) for spec in specs]
    study_seconds, study_cpu = time.perf_counter() - start, time.process_time() - cpu_start

    second_seconds, second_cpu, _ = trainlab_way()
    our_seconds, our_cpu = (first_seconds + second_seconds) / 2, (first_cpu + second_cpu) / 2
    rate = max(rate_before, matmul_rate())

    n_eval = len(train_idx) + len(val_idx) + len(data.test_labels)
    flops = trial_flops(specs, 784, 10, len(train_idx) * args.epochs)
    flops += sum(2.0 * (784 * s.hidden + 10 * s.hidden) for s in specs) * n_eval
    limit = flops / (rate * args.threads)  # every core at its best single-thread matmul rate

    print(f"\n{'batch':>5} {'opt':>4} {'hidden':>6} | {'study test':>10} {'ours test':>9} {'diff pp':>7}")
    diffs = []
    for spec, theirs, mine in zip(specs, study_results, ours, strict=True):
        diff = mine.metrics["test_acc"] - theirs["test_acc"]
        diffs.append(abs(diff))
        print(f"{spec.batch_size:>5} {spec.optimizer:>4} {spec.hidden:>6} | {theirs['test_acc']:>10.2f} "
              f"{mine.metrics['test_acc']:>9.2f} {diff:>+7.2f}")
    print(f"\nstudy's way: {study_seconds:.1f} s   trainlab: {our_seconds:.2f} s (mean of {first_seconds:.2f} s "
          f"before and {second_seconds:.2f} s after the study's way)   speedup {study_seconds / our_seconds:.1f}x")
    print(f"grid FLOPs {flops / 1e9:.0f} G; matmul rate {rate / 1e9:.1f} GFLOP/s per core x {args.threads}; "
          f"FLOP-limit time {limit:.2f} s; "
          f"trainlab / limit {our_seconds / limit:.2f}")
    print(f"CPU time of this process (less sensitive to other users' load): study's way {study_cpu:.1f} s, "
          f"trainlab {our_cpu:.2f} s: speedup {study_cpu / our_cpu:.1f}x, trainlab CPU time / "
          f"(limit x cores) {our_cpu / (limit * args.threads):.2f}")
    print(f"largest per-configuration test accuracy difference: {max(diffs):.2f} percentage points; "
          f"load average now {os.getloadavg()[0]:.1f}")
    print(f"RESULT speedup={study_seconds / our_seconds:.1f} limit_ratio={our_seconds / limit:.2f} "
          f"max_acc_diff={max(diffs):.2f} threads={args.threads} load={os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
