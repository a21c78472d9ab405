"""DDPM training on moons: trainlab's loop against the common per-sample DataLoader loop.

The reference is the way tanelp/tiny-diffusion (and most DDPM tutorials) train: a
``TensorDataset`` of the points, a shuffling ``DataLoader`` with batch 32, and per
step fresh noise and timesteps, ``clip_grad_norm_(1.0)`` and a ``loss.item()`` for the
progress bar. trainlab's ``train_ddpm`` keeps the data on the device and slices a
seeded permutation, never syncs inside the loop, and uses a larger batch.

Fairness: both train the same network (trainlab's default residual MLP, same init),
with the same noise schedule, optimizer (Adam), peak learning rate and number of
optimizer steps; the batch size is each way's own. A third run, trainlab at batch
32, isolates the data-pipeline cost from the batch size. Quality is the EMD ratio:
exact EMD(2000 samples, 2000 held-out points) over EMD(2000 training points, the same
held-out points), 1 being the sampling-noise floor.

A fourth run trains the reference on as many points as trainlab sees (batch/32
times the steps): the comparison at equal data, where the per-sample pipeline shows.

    python bench/ddpm_toy.py [--steps 3000] [--threads 1] [--skip-same-samples]
"""

from __future__ import annotations

import argparse
import copy
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from trainlab.data.toy import make_toy
from trainlab.diffusion.ddpm import make_noise_model, sample, train_ddpm
from trainlab.diffusion.metrics import emd, emd_ratio, emd_splits
from trainlab.diffusion.schedules import make_scheduler


def reference_train(model, scheduler, X: torch.Tensor, steps: int, lr: float, batch_size: int, seed: int) -> float:
    """tiny-diffusion's loop (Adam in place of AdamW so both ways share the optimizer)."""
    loader = DataLoader(TensorDataset(X), batch_size=batch_size, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(seed))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    done, losses = 0, []
    start = time.perf_counter()
    while done < steps:
        for (batch,) in loader:
            noise = torch.randn(batch.shape)
            t = torch.randint(0, scheduler.T, (batch.shape[0],)).long()
            pred = model(scheduler.add_noise(batch, noise, t), t)
            loss = F.mse_loss(pred, noise)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad()
            losses.append(loss.detach().item())  # the progress-bar log line of the reference
            done += 1
            if done == steps:
                break
    model.eval()
    return time.perf_counter() - start


def quality(model, scheduler, held: np.ndarray, train: np.ndarray, seed: int) -> float:
    samples = sample(model, scheduler, 2000, generator=torch.Generator().manual_seed(seed)).numpy()
    return emd_ratio(samples, held, train, n=2000, seed=seed)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000, help="optimizer steps for every way")
    parser.add_argument("--batch", type=int, default=512, help="trainlab's batch size")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--T", type=int, default=100, help="diffusion steps (linear betas 0.001 -> 0.02)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-same-samples", action="store_true",
                        help="skip the long reference run that sees as many points as trainlab")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cpus, "
          f"load average {os.getloadavg()[0]:.1f} at start")

    # 13000 moons: 8000 for training (tiny-diffusion's size), 5000 held out
    X, _ = make_toy("moons", n=13000)
    X = X[np.random.default_rng(args.seed).permutation(len(X))]
    train_np, held = X[5000:], X[:5000]
    train = torch.from_numpy(train_np)
    scheduler = make_scheduler("linear", args.T, 1e-3, 0.02)
    torch.manual_seed(args.seed)
    init = make_noise_model("default", 2, args.T)  # every way starts from these weights

    results, models = {}, {}
    ways = [("reference", 32, args.steps), ("trainlab", args.batch, args.steps), ("trainlab_b32", 32, args.steps)]
    if not args.skip_same_samples:  # the reference shown as many points as trainlab: batch/32 times the steps
        ways.append(("reference_same_samples", 32, args.steps * args.batch // 32))
    for name, batch, steps in ways:
        model = copy.deepcopy(init)
        torch.manual_seed(args.seed + 1)
        if name.startswith("reference"):
            seconds = reference_train(model, scheduler, train, steps, args.lr, batch, args.seed)
        else:
            seconds = train_ddpm(model, scheduler, train, steps=steps, batch_size=batch, lr=args.lr,
                                 generator=torch.Generator().manual_seed(args.seed), progress=False).seconds
        ratio = quality(model, scheduler, held, train_np, args.seed)
        results[name], models[name] = (seconds, ratio), model
        print(f"{name:23s} batch {batch:4d}  {steps:6d} steps  {seconds:7.2f} s  "
              f"({1e3 * seconds / steps:.2f} ms/step)  EMD ratio {ratio:.3f}")

    # the seed's five EMD splits, at 1000 points each (POT imported before timing)
    gen = sample(models["trainlab"], scheduler, 5000, generator=torch.Generator().manual_seed(1)).numpy()
    emd(gen[:10], held[:10])
    start = time.perf_counter()
    emd_splits(gen, held, k=5, n=1000, seed=args.seed)
    emd_s = time.perf_counter() - start

    ref_s, ref_ratio = results["reference"]
    ours_s, ours_ratio = results["trainlab"]
    print(f"reference {ref_s:.2f} s, trainlab {ours_s:.2f} s: ratio {ref_s / ours_s:.2f} "
          f"(same batch 32: {ref_s / results['trainlab_b32'][0]:.2f}); EMD on 5 splits of 1000: {emd_s:.2f} s; "
          f"load average {os.getloadavg()[0]:.1f} at end")
    # samples per second: what the per-sample pipeline costs when both ways see the same data
    throughput = (args.batch / ours_s) / (32 / ref_s)
    print(f"throughput: trainlab {args.steps * args.batch / ours_s:.0f} samples/s, reference "
          f"{args.steps * 32 / ref_s:.0f} samples/s ({throughput:.2f}x)")
    extra = ""
    if "reference_same_samples" in results:
        long_s, long_ratio = results["reference_same_samples"]
        extra = f" speedup_same_samples={long_s / ours_s:.2f} same_samples_reference_emd_ratio={long_ratio:.3f}"
    print(f"RESULT speedup={ref_s / ours_s:.2f} emd_ratio={ours_ratio:.3f} reference_emd_ratio={ref_ratio:.3f} "
          f"emd_5x1000_s={emd_s:.2f} speedup_same_batch={ref_s / results['trainlab_b32'][0]:.2f} "
          f"same_batch_emd_ratio={results['trainlab_b32'][1]:.3f} throughput_ratio={throughput:.2f}" + extra)


if __name__ == "__main__":
    main()
