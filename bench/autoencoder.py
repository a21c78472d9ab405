"""Autoencoder training on Fashion-MNIST: speed of the default path, FLOP rates, and defaults' quality.

Three measurements (``--mode``):

- ``pipeline`` (the default): trainlab's training path against the study's DataLoader loop, below.
- ``rates``: the FLOP rate each study model's training step reaches on one thread (MLP and conv,
  code size 2 and 32, at each ``--batches`` size) in % of the one-thread matmul rate, the models'
  steps interleaved round by round and timed by the thread's CPU time (what a worker thread of
  the ``autoencoder`` experiment gets of a core); then encoding and decoding the images in
  chunks of ``INFERENCE_CHUNK`` against the former 8192 (the experiments' measures after training).
- ``measure``: the ``autoencoder`` experiment's measures of its models after training (test and
  train L1 and the rest: every image encoded and decoded), done as before (one model after another in
  the main thread on torch's threads, chunks of 8192) and as the recipe does now (side by side through
  the worker pool, one thread each, chunks of ``INFERENCE_CHUNK``), alternated ``--repeats`` times.
- ``quality``: the ``autoencoder`` study's models (both archs, λ = 2 and 32, ``--seeds`` seeds)
  trained with today's batch size and learning rate (``--old``) and with each of ``--candidates``
  (default: the experiment's current defaults), on the same data: test L1 per model, and per
  (arch, λ) the change of the mean test L1 in units of the old settings' seed-to-seed standard
  deviation. ``RESULT worst_sd=`` is the worst (largest) such change of the first candidate (> 0: worse),
  ``wall_ratio`` and ``cpu_ratio`` the old settings' training time over the candidate's.

The pipeline comparison:

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
    python bench/autoencoder.py --mode rates [--batches 64 128 256]
    python bench/autoencoder.py --mode measure [--repeats 2]
    python bench/autoencoder.py --mode quality [--seeds 3] [--old 64:1e-3] [--candidates 128:1.4e-3 ...]
                                [--train-limit N] [--epochs 10]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from _machine import matmul_rates  # bench/ is on sys.path when a bench runs as a script
from trainlab.data import load_images, to_tensor
from trainlab.data.subsets import random_subset
from trainlab.device import use_threads
from trainlab import make_config
from trainlab.nn.autoencoder import INFERENCE_CHUNK, STUDY_ARCHS, decode_all, encode_all, new_study_autoencoder
from trainlab.nn.flops import training_flops_per_example
from trainlab.train.autoencoder import AutoencoderSpec, train_autoencoder, train_autoencoders
from trainlab.workers import run_independent


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


def pipeline(args: argparse.Namespace) -> None:
    """The study's DataLoader loop against trainlab's path, one model, ``--repeats`` times interleaved."""
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


def rates(args: argparse.Namespace) -> None:
    """Each study model's training FLOP rate on one thread, against the one-thread matmul rate."""
    torch.set_num_threads(1)
    data = load_images("fashion-mnist")
    x = to_tensor(data.train_images[:8192], "cpu")
    with use_threads(1):
        _, matmul = matmul_rates("cpu")  # by CPU time, as the steps below are timed
    print(f"Fashion-MNIST ({data.source}); one thread; matmul {matmul / 1e9:.1f} GFLOP/s (CPU time); "
          f"torch {torch.__version__}, load average {os.getloadavg()[0]:.1f} at start")
    steppers, flops = {}, {}
    for arch in STUDY_ARCHS:
        for latent in (2, 32):
            for batch in args.batches:
                model, _ = new_study_autoencoder(arch, latent, data.image_shape, "relu", args.seed, torch.device("cpu"))
                flops[arch, latent, batch] = training_flops_per_example(model, x[:1])
                steppers[arch, latent, batch] = _stepper(model, x, batch)
    seconds: dict[tuple, list[float]] = {key: [] for key in steppers}
    for _ in range(args.repeats):  # round by round, so that every model sees the same load
        for key, step in steppers.items():
            seconds[key].append(step(args.images))
    worst = 1.0
    for (arch, latent, batch), s in seconds.items():
        rate = flops[arch, latent, batch] * args.images / statistics.median(s)
        worst = min(worst, rate / matmul)
        print(f"{arch:4s} λ={latent:<2d} batch {batch:4d}: {flops[arch, latent, batch] / 1e6:.2f} MFLOP per "
              f"training image, {args.images / statistics.median(s):6.0f} images/s, {rate / 1e9:5.1f} GFLOP/s "
              f"= {100 * rate / matmul:3.0f}% of matmul", flush=True)
    speedups = _inference(data, x, args)
    print(f"load average {os.getloadavg()[0]:.1f} at end")
    print(f"RESULT matmul_gflops={matmul / 1e9:.1f} worst_fraction_of_matmul={worst:.2f} "
          + " ".join(f"inference_speedup_{arch}={v:.2f}" for arch, v in speedups.items()))


def _inference(data, x: torch.Tensor, args: argparse.Namespace) -> dict[str, float]:
    """Encoding and decoding ``x`` in chunks of the default size against the old 8192 (one thread,
    CPU-timed, interleaved): per arch, the old time over the new for encode + decode."""
    new = INFERENCE_CHUNK
    speedups = {}
    for arch in STUDY_ARCHS:
        model, _ = new_study_autoencoder(arch, 32, data.image_shape, "relu", args.seed, torch.device("cpu"))
        codes = encode_all(model, x)
        seconds: dict[int, list[float]] = {8192: [], new: []}
        for _ in range(args.repeats):
            for chunk in seconds:
                begin = time.thread_time()
                encode_all(model, x, batch_size=chunk)
                decode_all(model, codes, batch_size=chunk)
                seconds[chunk].append(time.thread_time() - begin)
        speedups[arch] = statistics.median(o / n for o, n in zip(seconds[8192], seconds[new]))
        print(f"{arch:4s} λ=32 encode + decode of {len(x)} images: {1e6 * statistics.median(seconds[new]) / len(x):.0f} "
              f"us per image in chunks of {new}, {1e6 * statistics.median(seconds[8192]) / len(x):.0f} in chunks of "
              f"8192 ({speedups[arch]:.2f}x)", flush=True)
    return speedups


def _stepper(model: torch.nn.Module, x: torch.Tensor, batch: int) -> Callable[[int], float]:
    """A function that trains ``model`` on ``images`` images of ``x`` (L1, fused Adam, as the trainer does)
    and returns the thread's CPU seconds; one warm-up step first."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    start = [0]

    def step(images: int) -> float:
        begin = time.thread_time()
        for _ in range(max(1, images // batch)):
            i = start[0] % (len(x) - batch)
            start[0] += batch
            xb = x[i : i + batch]
            loss = F.l1_loss(model(xb), xb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return time.thread_time() - begin

    step(batch)
    return step


@torch.inference_mode()
def _chunks_of_8192(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """How ``encode_all`` / ``decode_all`` ran before: chunks of 8192 on the caller's threads."""
    return torch.cat([fn(x[i : i + 8192]) for i in range(0, x.shape[0], 8192)])


def measure(args: argparse.Namespace) -> None:
    """The recipe's measure phase before (serial, chunks of 8192) and now (worker pool, small chunks)."""
    from trainlab.experiments import autoencoder as recipe

    data = load_images("fashion-mnist")
    x_train, x_test = to_tensor(data.train_images, "cpu"), to_tensor(data.test_images, "cpu")
    y_train, y_test = torch.as_tensor(data.train_labels), torch.as_tensor(data.test_labels)
    models = [new_study_autoencoder(arch, latent, data.image_shape, "relu", args.seed, torch.device("cpu"))[0]
              for arch in STUDY_ARCHS for latent in (2, 32)]
    per_image = [training_flops_per_example(m, x_train[:1]) / 3 for m in models]
    print(f"Fashion-MNIST ({data.source}), {len(x_train)} training and {len(x_test)} test images; {len(models)} "
          f"models (mlp and conv, λ = 2 and 32); {torch.get_num_threads()} torch threads in the main thread; "
          f"load average {os.getloadavg()[0]:.1f} at start")

    def one(model):
        return recipe._measure(model, data.image_shape, x_train, y_train, x_test, y_test)

    def before():
        recipe.encode_all = lambda m, x: _chunks_of_8192(m.encode, x)
        recipe.decode_all = lambda m, c: _chunks_of_8192(m.decode, c)
        try:
            return [one(m) for m in models]
        finally:
            recipe.encode_all, recipe.decode_all = encode_all, decode_all

    def now():
        return run_independent(one, models, costs=[f * (len(x_train) + len(x_test)) for f in per_image],
                               step_flops=INFERENCE_CHUNK * max(per_image), device="cpu")

    wall: dict[str, list[float]] = {"before": [], "now": []}
    cpu: dict[str, list[float]] = {"before": [], "now": []}
    results = {}
    for rep in range(args.repeats):
        for way, fn in (("before", before), ("now", now)):
            w, c = time.perf_counter(), time.process_time()
            results[way] = fn()
            wall[way].append(time.perf_counter() - w)
            cpu[way].append(time.process_time() - c)
            print(f"repeat {rep + 1} {way:6s} {wall[way][-1]:6.1f} s wall {cpu[way][-1]:6.1f} s cpu  "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
    same = all(abs(a["test_l1"] - b["test_l1"]) < 1e-5 and a["dead_units"] == b["dead_units"]
               for a, b in zip(results["before"], results["now"]))
    ratios = [b / n for b, n in zip(wall["before"], wall["now"])]
    print(f"wall-time ratio (before / now) per repeat: {', '.join(f'{r:.2f}' for r in ratios)}; "
          f"load average {os.getloadavg()[0]:.1f} at end")
    print(f"RESULT measure_speedup={statistics.median(ratios):.2f} "
          f"cpu_ratio={statistics.median(cpu['before']) / statistics.median(cpu['now']):.2f} same_numbers={same} "
          f"now_s={statistics.median(wall['now']):.1f} before_s={statistics.median(wall['before']):.1f}")


def quality(args: argparse.Namespace) -> None:
    """The study's models trained with the old settings and each candidate: test L1, time, worst change in SDs."""
    defaults = make_config("autoencoder")
    candidates = args.candidates or [f"{defaults.batch_size}:{defaults.lr:g}"]
    settings = [_setting(args.old), *(_setting(c) for c in candidates)]
    data = load_images("fashion-mnist")
    keep = random_subset(len(data.train_labels), args.train_limit, seed=0)
    x_train, x_test = to_tensor(data.train_images[keep], "cpu"), to_tensor(data.test_images, "cpu")
    specs = [AutoencoderSpec(arch, latent, seed) for arch in STUDY_ARCHS for latent in (2, 32)
             for seed in range(args.seeds)]
    print(f"Fashion-MNIST ({data.source}), {len(x_train)} training and {len(x_test)} test images; "
          f"{len(specs)} models per setting ({args.seeds} seeds), {args.epochs} epochs, relu code and output; "
          f"torch {torch.__version__}, {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f} at start")
    # warm-up (first calls of each kernel), so that the first setting timed pays no more than the others
    train_autoencoders(specs[:: args.seeds], x_train[:256], data.image_shape, latent_activation="relu",
                       output_activation="relu", lr=1e-3, epochs=1, batch_size=64)
    l1: dict[tuple[int, float], dict[tuple[str, int], list[float]]] = {}
    wall, cpu = {}, {}
    for batch, lr in settings:
        start = time.perf_counter()
        trained = train_autoencoders(specs, x_train, data.image_shape, latent_activation="relu",
                                     output_activation="relu", lr=lr, epochs=args.epochs, batch_size=batch)
        wall[batch, lr] = time.perf_counter() - start
        cpu[batch, lr] = sum(t.cpu_seconds for t in trained)
        l1[batch, lr] = {}
        for t in trained:
            l1[batch, lr].setdefault((t.spec.arch, t.spec.latent), []).append(test_l1(t.model, x_test))
        print(f"batch {batch} lr {lr:g}: {wall[batch, lr]:.1f} s wall, {cpu[batch, lr]:.1f} s cpu (all models), "
              f"load {os.getloadavg()[0]:.1f}; test L1 " + "; ".join(
                  f"{arch} λ={latent} " + " ".join(f"{v:.4f}" for v in vs)
                  for (arch, latent), vs in l1[batch, lr].items()), flush=True)
    old = settings[0]
    results = []
    for new in settings[1:]:
        changes = {}
        for key, before in l1[old].items():
            sd = statistics.stdev(before) if len(before) > 1 else float("nan")
            changes[key] = (statistics.mean(l1[new][key]) - statistics.mean(before)) / sd
        worst_key = max(changes, key=lambda k: changes[k])
        results.append((new, changes[worst_key], worst_key))
        print(f"batch {new[0]} lr {new[1]:g} against batch {old[0]} lr {old[1]:g}: change of mean test L1 in old SDs "
              + ", ".join(f"{a} λ={l} {c:+.2f}" for (a, l), c in changes.items())
              + f"; wall-time ratio {wall[old] / wall[new]:.2f}, CPU-time ratio {cpu[old] / cpu[new]:.2f}")
    (batch, lr), worst, (arch, latent) = results[0]
    print(f"load average {os.getloadavg()[0]:.1f} at end")
    print(f"RESULT worst_sd={worst:.2f} worst_model={arch}{latent} batch={batch} lr={lr:g} "
          f"wall_ratio={wall[old] / wall[batch, lr]:.2f} cpu_ratio={cpu[old] / cpu[batch, lr]:.2f} "
          f"seeds={args.seeds} train_images={len(x_train)} epochs={args.epochs}")


def _setting(text: str) -> tuple[int, float]:
    """``128:1e-3`` -> (128, 0.001): a batch size and an Adam learning rate."""
    batch, lr = text.split(":")
    return int(batch), float(lr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["pipeline", "rates", "measure", "quality"], default="pipeline")
    parser.add_argument("--arch", choices=["mlp", "conv"], default="mlp", help="pipeline: the model")
    parser.add_argument("--latent", type=int, default=32, help="pipeline: its code size")
    parser.add_argument("--epochs", type=int, default=None, help="pipeline: 3; quality: 10 (the experiment's)")
    parser.add_argument("--batch", type=int, default=64, help="pipeline: batch size")
    parser.add_argument("--lr", type=float, default=1e-3, help="pipeline: Adam's learning rate")
    parser.add_argument("--repeats", type=int, default=None, help="runs of each way, interleaved "
                        "(pipeline: 2; rates: rounds, 5; measure: 2)")
    parser.add_argument("--threads", type=int, default=1, help="pipeline: torch threads for both ways")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 128, 256], help="rates: batch sizes")
    parser.add_argument("--images", type=int, default=2048, help="rates: training images per model per round")
    parser.add_argument("--seeds", type=int, default=3, help="quality: seeds per (arch, λ)")
    parser.add_argument("--old", default="64:1e-3", help="quality: today's batch:lr")
    parser.add_argument("--candidates", nargs="*", default=None,
                        help="quality: batch:lr settings to compare (default: the experiment's current defaults)")
    parser.add_argument("--train-limit", type=int, default=None, help="quality: training images (default all)")
    args = parser.parse_args()
    if args.mode == "rates":
        args.repeats = args.repeats or 5
        rates(args)
    elif args.mode == "measure":
        args.repeats = args.repeats or 2
        measure(args)
    elif args.mode == "quality":
        args.epochs = args.epochs or make_config("autoencoder").epochs
        quality(args)
    else:
        args.epochs, args.repeats = args.epochs or 3, args.repeats or 2
        pipeline(args)


if __name__ == "__main__":
    main()
