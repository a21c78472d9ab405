"""Autoencoder training on Fashion-MNIST: trainlab's default path against the study's DataLoader loop.

The reference is how the Optimisation & CNN study's code (and most tutorials) train an
MNIST autoencoder: a per-sample ``Dataset`` that turns one uint8 image into a float
tensor (what torchvision's ``ToTensor`` does), a shuffling ``DataLoader``, plain Adam,
and a ``loss.item()`` every step for the running loss. trainlab's default path
(``trainlab.train.autoencoder.train_autoencoder``) keeps the images on the device
as one float tensor, slices batches from a seeded permutation, reads the loss once per
epoch and uses fused Adam.

Fairness: both train the same model from the same initial weights, with the same batch
size, learning rate, epochs and torch thread count; only the pipeline differs. Quality is
the test L1 of each model; the two differ only by the batch order. Each way runs
``--repeats`` times, interleaved, so both see the same machine load.

    python bench/autoencoder.py [--arch mlp|conv] [--latent 32] [--epochs 3] [--repeats 2]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from trainlab.data import load_images, to_tensor
from trainlab.nn.autoencoder import decode_all, encode_all, new_study_autoencoder
from trainlab.train.autoencoder import train_autoencoder


class PerSampleImages(Dataset):
    """One image at a time, converted the way torchvision's ToTensor does (uint8 -> float in [0, 1])."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return torch.from_numpy(self.images[i]).float().div(255.0).unsqueeze(0), int(self.labels[i])


def reference_train(model, images: np.ndarray, labels: np.ndarray, *, epochs: int, batch_size: int, lr: float,
                    seed: int) -> float:
    """The study's loop: DataLoader over per-sample images, Adam, L1, loss.item() per step."""
    loader = DataLoader(PerSampleImages(images, labels), batch_size=batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    criterion = torch.nn.L1Loss()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        running = 0.0
        for batch, _ in loader:
            flat = batch.view(batch.shape[0], -1)
            loss = criterion(model(flat), flat)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            running += loss.item()
    return time.perf_counter() - start


def test_l1(model, x: torch.Tensor) -> float:
    return F.l1_loss(decode_all(model, encode_all(model, x)), x).item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=["mlp", "conv"], default="mlp")
    parser.add_argument("--latent", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each way, interleaved")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both ways")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_images("fashion-mnist")
    x_train, x_test = to_tensor(data.train_images, "cpu"), to_tensor(data.test_images, "cpu")
    print(f"Fashion-MNIST ({data.source}), {len(x_train)} training images; {args.arch} latent {args.latent}, "
          f"{args.epochs} epochs, batch {args.batch}, Adam lr {args.lr}, {args.threads} torch thread(s); "
          f"torch {torch.__version__}, {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f} at start")

    init, _ = new_study_autoencoder(args.arch, args.latent, data.image_shape, "relu", args.seed,
                                    torch.device("cpu"))
    times: dict[str, list[float]] = {"reference": [], "trainlab": []}
    cpu: dict[str, list[float]] = {"reference": [], "trainlab": []}
    l1: dict[str, float] = {}
    for rep in range(args.repeats):
        for way in ("reference", "trainlab"):
            model = copy.deepcopy(init)
            cpu_start = time.process_time()
            if way == "reference":
                seconds = reference_train(model, data.train_images, data.train_labels, epochs=args.epochs,
                                          batch_size=args.batch, lr=args.lr, seed=args.seed)
            else:
                seconds = train_autoencoder(model, x_train, lr=args.lr, epochs=args.epochs, batch_size=args.batch,
                                            seed=args.seed, desc="trainlab").seconds
            cpu[way].append(time.process_time() - cpu_start)
            times[way].append(seconds)
            l1[way] = test_l1(model, x_test)
            print(f"repeat {rep + 1} {way:9s} {seconds:7.2f} s wall  {cpu[way][-1]:7.2f} s cpu  "
                  f"test L1 {l1[way]:.4f}  load {os.getloadavg()[0]:.1f}", flush=True)

    ratios = [r / t for r, t in zip(times["reference"], times["trainlab"])]
    cpu_ratios = [r / t for r, t in zip(cpu["reference"], cpu["trainlab"])]
    print(f"speedup (reference / trainlab wall time) per repeat: {', '.join(f'{r:.2f}' for r in ratios)}; "
          f"CPU-time ratio: {', '.join(f'{r:.2f}' for r in cpu_ratios)}; load average {os.getloadavg()[0]:.1f} at end")
    print(f"RESULT speedup={statistics.median(ratios):.2f} cpu_speedup={statistics.median(cpu_ratios):.2f} "
          f"test_l1_diff={l1['trainlab'] - l1['reference']:.4f} trainlab_test_l1={l1['trainlab']:.4f} "
          f"reference_test_l1={l1['reference']:.4f} trainlab_s={statistics.median(times['trainlab']):.1f} "
          f"reference_s={statistics.median(times['reference']):.1f}")


if __name__ == "__main__":
    main()
