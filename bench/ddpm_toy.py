"""Benchmark: how long until a toy DDPM gives good samples? trainlab's default path against tiny-diffusion's loop.

Users ask how long they must train before the samples are good, not how fast one
optimizer step is. Both ways here train the same network (trainlab's default residual
MLP, width 128, same initial weights) on the same 8000 moons points with the same
noise schedule (linear betas 0.001 -> 0.02, T = 100), each as it is meant to be used:

- the reference is tanelp/tiny-diffusion's training loop: a ``TensorDataset`` and a
  shuffling ``DataLoader`` at batch 32, AdamW at its learning rate 1e-3 (no decay),
  ``clip_grad_norm_(1.0)`` and a ``loss.item()`` per step for its progress bar;
- trainlab is ``train_ddpm`` with ``ddpm-steps``' default recipe (its config's batch size,
  learning rate, warm-up and weight EMA, the cosine decay ending at the budget given), data
  on the device, threads chosen by ``device.cpu_plan``; the weights it returns (the EMA's)
  are the ones sampled.

Quality is the EMD ratio of 2000 samples (exact EMD to 2000 held-out points over the
EMD of 2000 training points to the same held-out points, 3 draws; 1 is the sampling-noise
floor); the time is training time (scoring excluded): by default the process's CPU time on one
thread (``--clock cpu --threads 1``), which other processes on a shared machine barely move,
where wall time there measured each way at whatever load it happened to meet (one earlier run
printed 17.7x with the reference trained at load ~15 and trainlab at ~5; at equal load the
ratio was 1.4x). ``--clock wall --threads 0`` times wall seconds on every core. The reference has no
learning-rate schedule, so it is scored every ``--reference-every`` steps of one long run
and its best checkpoint counts. trainlab decays its learning rate to 0 over the steps it
is given, so a user who wants a model sooner asks for fewer steps: it is trained once
per budget in ``--budgets``, each run scored at its end with the weights it returns.
Reported: the reference's best ratio and when it got there; the shortest trainlab run at
least as good (``time_to_quality_speedup`` is the first time over the second's training
time), the shortest that reached a ratio of 1.3, and (``emd_5x1000_s``) the time of the
study's five EMD splits at 1000 points each.

    python bench/ddpm_toy.py [--reference-steps 15000] [--budgets 250,500,1000,1500,2000,3000]
                             [--clock cpu|wall] [--threads 1]

About 4 minutes on an idle 2-core machine, most of it the reference and the scoring.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

try:
    import trainlab  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from trainlab.data.toy import make_toy
from trainlab.device import claim_cores
from trainlab.diffusion.ddpm import make_noise_model, sample, train_ddpm
from trainlab.diffusion.metrics import emd_ratio, emd_splits
from trainlab.diffusion.schedules import make_scheduler
from trainlab.experiments import ddpm_steps


def ratio_of(model, scheduler, held: np.ndarray, train: np.ndarray, seed: int) -> float:
    """EMD ratio of 2000 samples of ``model`` (see the module doc)."""
    samples = sample(model, scheduler, 2000, generator=torch.Generator().manual_seed(seed))
    return emd_ratio(samples.numpy(), held, train, n=2000, seed=seed)[0]


class Checkpoints:
    """Scores the model every ``every`` steps; the time spent scoring is kept out of the training time
    (read from ``clock``: ``time.process_time`` or ``time.perf_counter``)."""

    def __init__(self, model, scheduler, held: np.ndarray, train: np.ndarray, every: int, seed: int,
                 clock: Callable[[], float]):
        self.model, self.scheduler, self.held, self.train = model, scheduler, held, train
        self.every, self.seed, self.clock = every, seed, clock
        self.points: list[tuple[int, float, float]] = []  # (step, training seconds so far, EMD ratio)
        self.start = self.paused = 0.0

    def begin(self) -> None:
        self.start, self.paused = self.clock(), 0.0

    def __call__(self, step: int) -> None:
        if step % self.every:
            return
        now = self.clock()
        ratio = ratio_of(self.model, self.scheduler, self.held, self.train, self.seed)
        self.model.train()
        self.points.append((step, now - self.start - self.paused, ratio))
        self.paused += self.clock() - now


def reference_train(model, scheduler, X: torch.Tensor, steps: int, seed: int, on_step) -> None:
    """tiny-diffusion's loop, as its train.py writes it (AdamW at 1e-3, batch 32, gradient clipping)."""
    loader = DataLoader(TensorDataset(X), batch_size=32, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(seed))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    done, losses = 0, []
    while done < steps:
        for (batch,) in loader:
            noise = torch.randn(batch.shape)
            t = torch.randint(0, scheduler.T, (batch.shape[0],)).long()
            loss = F.mse_loss(model(scheduler.add_noise(batch, noise, t), t), noise)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad()
            losses.append(loss.detach().item())  # the progress-bar log line of the reference
            done += 1
            on_step(done)
            if done == steps:
                break


def first_time(points, target: float) -> float:
    """Training seconds at the first checkpoint with a ratio <= target (NaN if none)."""
    return next((s for _, s, r in points if r <= target), float("nan"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference-steps", type=int, default=15000,
                        help="reference steps at batch 32 (60 passes over the 8000 points)")
    parser.add_argument("--reference-every", type=int, default=1500)
    parser.add_argument("--budgets", default="250,500,1000,1500,2000,3000",
                        help="trainlab runs, each this many steps of ddpm-steps' recipe with its own cosine decay")
    parser.add_argument("--target", type=float, default=1.3)
    parser.add_argument("--threads", type=int, default=1,
                        help="cores both ways may use (0: all; 1 on a busy machine, where two threads spin-wait)")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="training time as this process's CPU seconds (robust to other load) or wall seconds")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        claim_cores(args.threads)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    print(f"torch {torch.__version__}, {os.cpu_count()} cpus, threads: {args.threads or 'default'}, "
          f"{args.clock} seconds; "
          f"load average {os.getloadavg()[0]:.1f} at start", flush=True)

    X, _ = make_toy("moons", n=13000)
    X = X[np.random.default_rng(args.seed).permutation(len(X))]
    train_np, held = X[5000:], X[:5000]
    train = torch.from_numpy(train_np)
    scheduler = make_scheduler("linear", 100, 1e-3, 0.02)
    torch.manual_seed(args.seed)
    init = make_noise_model("default", 2, 100, hidden=128)  # both ways start from these weights
    # first calls (imports, allocator, autograd, POT) outside the timing
    emd_ratio(held[:50], held[50:100], train_np[:50], n=50)
    reference_train(copy.deepcopy(init), scheduler, train, 20, args.seed, lambda step: None)
    train_ddpm(copy.deepcopy(init), scheduler, train, steps=5, batch_size=512, progress=False)

    budgets = sorted(int(b) for b in args.budgets.split(","))
    recipe = ddpm_steps.Config()
    print(f"trainlab's recipe: batch {recipe.batch_size}, lr {recipe.lr:g}, warm-up {recipe.warmup_steps} steps, "
          f"EMA decay {recipe.ema_decay:g}", flush=True)
    model = copy.deepcopy(init)
    reference = Checkpoints(model, scheduler, held, train_np, args.reference_every, args.seed, clock)
    torch.manual_seed(args.seed + 1)
    reference.begin()
    reference_train(model, scheduler, train, args.reference_steps, args.seed, reference)
    print(f"\nreference, {args.reference_steps} steps: step, training seconds, EMD ratio "
          f"(load {os.getloadavg()[0]:.1f})")
    for step, seconds, ratio in reference.points:
        print(f"  {step:6d} {seconds:8.2f} s  {ratio:.3f}")
    finals = []
    for steps in budgets:
        model = copy.deepcopy(init)
        torch.manual_seed(args.seed + 1)
        start = clock()
        train_ddpm(model, scheduler, train, steps=steps, batch_size=recipe.batch_size, lr=recipe.lr,
                            warmup_steps=recipe.warmup_steps, ema_decay=recipe.ema_decay,
                            generator=torch.Generator().manual_seed(args.seed), progress=False)
        seconds = clock() - start
        # the weights train_ddpm returned (the EMA's), scored as the reference's checkpoints are
        finals.append((steps, seconds, ratio_of(model, scheduler, held, train_np, args.seed)))
    print(f"\ntrainlab runs of each budget, each decayed to the end: steps, training seconds, final EMD ratio "
          f"(load {os.getloadavg()[0]:.1f})")
    for step, seconds, ratio in finals:
        print(f"  {step:6d} {seconds:8.2f} s  {ratio:.3f}")

    # what the study could not afford: its five EMD splits, here of 1000 points each
    gen = sample(model, scheduler, 5000, generator=torch.Generator().manual_seed(1)).numpy()
    start = time.perf_counter()
    emd_splits(gen, held, k=5, n=1000, seed=args.seed)
    emd_s = time.perf_counter() - start

    ref_best = min(r for _, _, r in reference.points)
    ref_s = first_time(reference.points, ref_best)
    ours_s = first_time(finals, ref_best)  # the shortest trainlab run that is at least as good
    ours_target = first_time(finals, args.target)
    ours_best = min(r for _, _, r in finals)
    print(f"\nreference: best EMD ratio {ref_best:.3f} after {ref_s:.1f} s of training; the shortest trainlab run "
          f"as good took {ours_s:.1f} s ({ref_s / ours_s:.1f}x sooner), the shortest to {args.target} {ours_target:.1f} s; "
          f"trainlab's best {ours_best:.3f}; load average {os.getloadavg()[0]:.1f} at end")
    print(f"RESULT time_to_quality_speedup={ref_s / ours_s:.1f} trainlab_s_to_{args.target:g}={ours_target:.1f} "
          f"reference_best_ratio={ref_best:.3f} reference_s_to_best={ref_s:.1f} trainlab_best_ratio={ours_best:.3f} "
          f"emd_5x1000_s={emd_s:.2f} clock={args.clock} threads={args.threads} "
          f"load={os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
