"""Benchmark: the airbench94-width CNN trained trainlab's way against a per-sample DataLoader loop.

Data: CIFAR-shaped random images (uint8, 3 x 32 x 32, random labels; CIFAR-10
itself cannot be downloaded everywhere, and speed does not depend on the
pixels). Network: ``trainlab.nn.cnn.FastCNN`` at airbench94's widths
(64, 256, 256), the same for both ways.

- trainlab: ``trainlab.train.cnn.train_cnn``: images uint8 on the device,
  augmented (flip, 2-pixel reflect translation) as one batch per epoch, index
  slices per step, lookahead EMA, bf16 autocast + channels_last on CUDA,
  ``--compile`` for torch.compile. Images/s counts the epochs after the first
  (the first pays for compilation and, with --fast, cuDNN autotuning, as airbench's warm-up run does).
  CUDA algorithms are chosen as `trainlab run` chooses them (deterministic; `--fast` as deterministic=false).
- reference: the usual script: a ``Dataset`` returning one normalised float
  image per index with its own random flip and translation (NumPy, reflect
  padding), a shuffling ``DataLoader``, the same network and Nesterov SGD,
  float32, no autocast.

Projected full run: airbench94's 9.9 epochs of 50,000 images at the measured
training rate, plus the whitening initialisation and the level-2 test-time
augmentation of 10,000 test images (6 forward passes each) at the measured
evaluation rate -- the work airbench94's published 3.83 s (A100) covers.
The FLOP limit is the training FLOPs (3 x the forward FLOPs counted by
``torch.utils.flop_counter``) over this device's measured matmul rate
(float32 on the CPU, bf16 on CUDA).

Run: ``python bench/cifar_speed.py`` on a GPU (10 epochs of 50,000 images);
on a CPU, ``python bench/cifar_speed.py --quick`` (1,024 images, 3 epochs, a
minute or so), or any ``--epochs`` / ``--train-size``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode

try:
    import trainlab  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _machine import matmul_rates  # bench/ is on sys.path when a bench runs as a script

from trainlab.device import algorithm_choice, resolve_device
from trainlab.nn.cnn import FastCNN, block_widths
from trainlab.train.cnn import CNNTraining, evaluate_cnn, make_optimizer, train_cnn

AIRBENCH_EPOCHS = 9.9
FULL_TRAIN, FULL_TEST = 50_000, 10_000


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_rate(device: torch.device) -> float:
    """Best FLOP/s of a matmul in the dtype trainlab trains in (bf16 4096^3 on CUDA, float32 2048^3 on the CPU)."""
    if device.type == "cuda":
        return matmul_rates(device, n=4096, dtype=torch.bfloat16)[0]
    return matmul_rates(device)[0]


class PerSampleCifar(Dataset):
    """The usual per-index pipeline: uint8 HWC -> random flip + translate (NumPy) -> CHW float in [0, 1]."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, seed: int):
        self.images, self.labels = images, labels
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        img = self.images[i].astype(np.float32) / 255.0
        if self.rng.random() < 0.5:
            img = img[:, ::-1]
        dy, dx = self.rng.integers(-2, 3, size=2)
        padded = np.pad(img, ((2, 2), (2, 2), (0, 0)), mode="reflect")
        img = padded[2 + dy : 34 + dy, 2 + dx : 34 + dx]
        return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))), int(self.labels[i])


def reference_rate(images: np.ndarray, labels: np.ndarray, device: torch.device, width: int, batch_size: int,
                   steps: int, workers: int) -> float:
    """Images/s of the per-sample DataLoader loop over ``steps`` steps (after one warm-up step)."""
    loader = DataLoader(PerSampleCifar(images, labels, seed=0),
                        batch_size=batch_size, shuffle=True, drop_last=True, num_workers=workers)
    torch.manual_seed(0)
    model = FastCNN(3, 10, block_widths(width)).to(device)
    optimizer = make_optimizer(model, CNNTraining(), batch_size)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.2, reduction="sum")
    model.init_from_data(torch.from_numpy(images[:5000]).permute(0, 3, 1, 2).to(device))
    model.train()
    done, start = -1, 0.0
    while done < steps:
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss = loss_fn(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            done += 1
            if done == 0:  # warm-up step not timed
                sync(device)
                start = time.perf_counter()
            if done >= steps:
                break
    sync(device)
    return steps * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=float, default=10)
    parser.add_argument("--train-size", type=int, default=FULL_TRAIN)
    parser.add_argument("--test-size", type=int, default=FULL_TEST)
    parser.add_argument("--width", type=int, default=64, help="base width (airbench94: 64)")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--reference-steps", type=int, default=20)
    parser.add_argument("--reference-workers", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--fast", action="store_true",
                        help="CUDA's fast mode, a run's deterministic=false (cudnn.benchmark); default: what runs use")
    parser.add_argument("--quick", action="store_true", help="CPU smoke size: 1024 images, 3 epochs, batch 256")
    args = parser.parse_args()
    if args.quick:
        args.train_size, args.test_size, args.epochs, args.batch_size, args.reference_steps = 1024, 512, 3, 256, 3
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    with algorithm_choice(device, deterministic=not args.fast):  # as trainlab run chooses them
        measure(args, device)


def measure(args: argparse.Namespace, device: torch.device) -> None:
    """Train, evaluate and time both ways; print the comparison and the RESULT line."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(f"device {name}, torch {torch.__version__}, load average {os.getloadavg()[0]:.1f}; "
          f"{args.train_size} random CIFAR-shaped images, {args.epochs} epochs, width {args.width}, "
          f"batch {args.batch_size}, compile {args.compile}, {'fast' if args.fast else 'deterministic'} algorithms")

    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.train_size, 32, 32, 3), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (args.train_size,), generator=g)
    x = images.permute(0, 3, 1, 2).contiguous().to(device)
    y = labels.to(device)
    test_x = torch.randint(0, 256, (args.test_size, 3, 32, 32), dtype=torch.uint8, generator=g).to(device)
    test_y = torch.randint(0, 10, (args.test_size,), generator=g).to(device)

    torch.manual_seed(0)
    model = FastCNN(3, 10, block_widths(args.width)).to(device)
    with FlopCounterMode(display=False) as counter:
        model(x[:1].float())
    train_flops_per_image = 3 * counter.get_total_flops()

    marks: list[float] = []

    def stamp(epoch: int) -> dict:
        sync(device)
        marks.append(time.perf_counter())
        return {}

    settings = CNNTraining(epochs=args.epochs, batch_size=args.batch_size, compile=args.compile, tta_level=2)
    sync(device)
    start = time.perf_counter()
    result = train_cnn(model, (x, y), settings, generator=torch.Generator(device=device).manual_seed(0),
                       on_epoch=stamp, progress=False)
    sync(device)
    first_epoch = marks[0] - start
    if len(marks) > 1:
        timed_images = args.train_size * args.epochs - args.train_size
        ips = timed_images / (marks[-1] - marks[0])
    else:
        ips = args.train_size * args.epochs / first_epoch
    sync(device)
    start = time.perf_counter()
    evaluate_cnn(model, test_x, test_y, tta_level=2)
    sync(device)
    eval_ips = args.test_size / (time.perf_counter() - start)
    sync(device)
    start = time.perf_counter()
    model.init_from_data(x[:5000])
    sync(device)
    whiten_s = time.perf_counter() - start
    projected = whiten_s + AIRBENCH_EPOCHS * FULL_TRAIN / ips + FULL_TEST / eval_ips

    ref_ips = reference_rate(images.numpy(), labels.numpy(), device, args.width, args.batch_size,
                             args.reference_steps, args.reference_workers)
    rate = matmul_rate(device)
    limit_ips = rate / train_flops_per_image
    limit_ratio = limit_ips / ips  # our time over the FLOP-limit time
    print(f"trainlab: status {result.status}, first epoch {first_epoch:.2f} s, {ips:.0f} images/s after it; "
          f"TTA evaluation {eval_ips:.0f} images/s; whitening init {whiten_s * 1e3:.1f} ms")
    print(f"reference (per-sample DataLoader, {args.reference_workers} workers): {ref_ips:.0f} images/s")
    print(f"training FLOPs {train_flops_per_image / 1e9:.3f} G per image; matmul rate {rate / 1e12:.2f} TFLOP/s "
          f"-> limit {limit_ips:.0f} images/s")
    print(f"projected full airbench94 run ({AIRBENCH_EPOCHS} epochs x {FULL_TRAIN} + TTA on {FULL_TEST}): "
          f"{projected:.2f} s (airbench94 publishes 3.83 s on an A100); load average now {os.getloadavg()[0]:.1f}")
    print(f"RESULT images_per_s={ips:.0f} projected_full_run_s={projected:.2f} speedup={ips / ref_ips:.2f} "
          f"limit_ratio={limit_ratio:.2f} device={device.type} fast={int(args.fast)}")


if __name__ == "__main__":
    main()
