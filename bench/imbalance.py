"""Benchmark: the MNIST MLP study's class-imbalance grid, trained the study's way and trainlab's way.

Both ways run in this process on Fashion-MNIST (two classes, the first kept
whole, the second thinned to one in N), with the same configurations, seeds,
initial weights and batches:

- the study's way: for every configuration a per-sample ``Dataset`` (one image
  tensor and label per index, as torchvision's datasets with ``ToTensor()``),
  a ``DataLoader`` (a seeded shuffle, or ``WeightedRandomSampler(weights, n,
  replacement=True)`` for resampling), ``CrossEntropyLoss(weight=[1, w])`` for
  loss weighting, one model and one ``torch.optim.Adam`` at a time; accuracy
  and F1 (scikit-learn's) on validation, sparsed test and original test
  through ``DataLoader``s;
- trainlab: tensors on the device once, every configuration one trial of
  ``train_per_trial`` (trials that share batches share a stacked step, resampled
  trials draw their own), then ``logits_many`` + ``binary_metrics_stacked``
  (accuracy, precision, recall, F1, AP, balanced accuracy and MCC for all).

Configurations: for each seed and N, the study's strategies ``none`` and
``loss_weight`` / ``resample`` with its four weight factors [1, N/10, N/2,
n0/n1] (9 models per N and seed, ``strategy_grid``); MLP 784 -> 4 ReLU -> 2, Adam lr 1e-2,
batch 64, 10 epochs. Timed: training and evaluation of all configurations (the
data split is shared and not timed); trainlab runs once before and once after
the study's way and its time is the mean (the machine is shared). Both ways
see the same batches (the sampler's seeded generator draws what trainlab's
``epoch_order`` draws), so their F1s differ only where float rounding flips a
prediction; ``max_f1_diff`` is the largest difference on the original test set.

Run: ``python bench/imbalance.py [--Ns 100,1000,2000] [--seeds 2] [--epochs 10] [--classes 0,1] [--threads 1]``
(about 3 minutes on an idle 2-core machine at the defaults, almost all of it the study's way).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import f1_score
from torch import nn
from torch.utils.data import DataLoader, WeightedRandomSampler

sys.path.insert(0, str(Path(__file__).resolve().parent))
try:
    import trainlab  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sweep_grid import MulticlassMLP, PerSampleImages, SeededShuffle  # noqa: E402

from trainlab.data import imbalanced_split, keep_classes, load_images, sparsify, to_tensor  # noqa: E402
from trainlab.device import torch_generator  # noqa: E402
from trainlab.train.imbalance import scores, strategy_grid  # noqa: E402
from trainlab.train.metrics import binary_metrics_stacked  # noqa: E402
from trainlab.train.stack import TrialSpec, init_solo, logits_many, train_per_trial  # noqa: E402

WEIGHTS = ["1", "N/10", "N/2", "n0/n1"]


def make_configs(labels: np.ndarray, test_labels: np.ndarray, ns: list[int], seeds: int) -> list[dict]:
    """One dict per model: N, seed, strategy, weight factor, trainlab's TrialData, and its train/val/test rows."""
    configs = []
    y = torch.as_tensor(labels).long()
    for seed in range(seeds):
        for n in ns:
            train, val = imbalanced_split(labels, 1, n, seed)
            test_sparse = sparsify(test_labels, 1, n, seed)
            rows = torch.as_tensor(train)
            for strategy, expr, factor, data in strategy_grid(["none", "loss_weight", "resample"], WEIGHTS, n, rows,
                                                               y[rows]):
                configs.append({"N": n, "seed": seed, "strategy": strategy, "weight": expr, "factor": factor,
                                "data": data, "train": train, "val": val, "test_sparse": test_sparse})
    return configs


def spec_of(config: dict) -> TrialSpec:
    return TrialSpec(hidden=4, activation="relu", optimizer="adam", lr=1e-2, batch_size=64, seed=config["seed"])


def study_f1(model: nn.Module, dataset) -> tuple[float, float]:
    """Accuracy (percent) and F1 of one model through a DataLoader, as the study's validation/test loops."""
    preds, labels = [], []
    model.eval()
    with torch.no_grad():
        for images, target in DataLoader(dataset, batch_size=64, shuffle=False):
            preds.append(model(images).argmax(1))
            labels.append(target)
    p, y = torch.cat(preds).numpy(), torch.cat(labels).numpy()
    return 100.0 * float(np.mean(p == y)), float(f1_score(y, p, zero_division=np.nan))


def study_way(config: dict, images: np.ndarray, labels: np.ndarray, test_images: np.ndarray,
              test_labels: np.ndarray, epochs: int) -> dict[str, float]:
    spec = spec_of(config)
    train_set = PerSampleImages(images[config["train"]], labels[config["train"]])
    n = len(train_set)
    if config["strategy"] == "resample":
        weights = np.where(labels[config["train"]] == 1, config["factor"], 1.0)
        sampler = WeightedRandomSampler(weights, num_samples=n, replacement=True,
                                        generator=torch_generator(spec.seed))
    else:
        sampler = SeededShuffle(n, spec.seed)
    loader = DataLoader(train_set, batch_size=spec.batch_size, sampler=sampler)
    model = MulticlassMLP(init_solo(spec, 784, 2))  # the initial weights trainlab's trial starts from
    optimizer = torch.optim.Adam(model.parameters(), lr=spec.lr)
    weight = torch.tensor([1.0, config["factor"]]) if config["strategy"] == "loss_weight" else None
    criterion = nn.CrossEntropyLoss(weight=weight)
    for _ in range(epochs):
        model.train()
        for batch, target in loader:
            optimizer.zero_grad()
            loss = criterion(model(batch), target)
            loss.backward()
            optimizer.step()
    out = {}
    for name, ds in (("val", PerSampleImages(images[config["val"]], labels[config["val"]])),
                     ("test_sparse", PerSampleImages(test_images[config["test_sparse"]],
                                                     test_labels[config["test_sparse"]])),
                     ("test", PerSampleImages(test_images, test_labels))):
        out[f"{name}_acc"], out[f"{name}_f1"] = study_f1(model, ds)
    return out


def trainlab_way(configs: list[dict], images: np.ndarray, labels: np.ndarray, test_images: np.ndarray,
                 test_labels: np.ndarray, epochs: int) -> tuple[float, float, list[dict[str, float]]]:
    start, cpu_start = time.perf_counter(), time.process_time()
    device = torch.device("cpu")
    x, y = to_tensor(images, device), torch.as_tensor(labels, device=device).long()
    x_test, y_test = to_tensor(test_images, device), torch.as_tensor(test_labels, device=device).long()
    results = train_per_trial([spec_of(c) for c in configs], [c["data"] for c in configs], x, y, epochs=epochs,
                              n_classes=2, progress=False)
    test_scores = scores(logits_many([r.model for r in results], x_test))  # the original test set, every model
    out: list[dict[str, float]] = [{} for _ in configs]
    groups: dict[tuple[int, int], list[int]] = {}
    for i, c in enumerate(configs):
        groups.setdefault((c["N"], c["seed"]), []).append(i)
    for members in groups.values():  # one validation and one sparsed test set per N and seed
        c = configs[members[0]]
        val_rows = torch.as_tensor(c["val"])
        sparse_rows = torch.as_tensor(c["test_sparse"])
        sets = {"val": (scores(logits_many([results[i].model for i in members], x[val_rows])), y[val_rows]),
                "test_sparse": (test_scores[members][:, sparse_rows], y_test[sparse_rows]),
                "test": (test_scores[members], y_test)}
        for name, (s, target) in sets.items():
            metrics = binary_metrics_stacked(target, s)
            for j, i in enumerate(members):
                out[i][f"{name}_acc"], out[i][f"{name}_f1"] = float(metrics["acc"][j]), float(metrics["f1"][j])
    return time.perf_counter() - start, time.process_time() - cpu_start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--Ns", default="100,1000,2000", help="sparsities N, comma-separated (default 100,1000,2000)")
    parser.add_argument("--seeds", type=int, default=2, help="seeds 0..seeds-1 (default 2)")
    parser.add_argument("--epochs", type=int, default=10, help="epochs per model, both ways (the study's 10)")
    parser.add_argument("--classes", default="0,1", help="common,rare Fashion-MNIST classes (default 0,1: "
                                                         "T-shirt/top kept whole, Trouser thinned)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both ways (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ns = [int(v) for v in args.Ns.split(",")]
    classes = [int(v) for v in args.classes.split(",")]

    data = load_images("fashion-mnist")
    images, labels = keep_classes(data.train_images, data.train_labels, classes)
    test_images, test_labels = keep_classes(data.test_images, data.test_labels, classes)
    configs = make_configs(labels, test_labels, ns, args.seeds)
    print(f"Fashion-MNIST from {data.source}, classes {classes} (0 kept whole, 1 thinned to one in N); "
          f"N {ns}, {args.seeds} seeds, {len(configs)} models, {args.epochs} epochs; torch {torch.__version__}, "
          f"{args.threads} threads, load average {os.getloadavg()[0]:.1f}")

    first_seconds, first_cpu, ours = trainlab_way(configs, images, labels, test_images, test_labels, args.epochs)
    start, cpu_start = time.perf_counter(), time.process_time()
    theirs = [study_way(c, images, labels, test_images, test_labels, args.epochs) for c in configs]
    study_seconds, study_cpu = time.perf_counter() - start, time.process_time() - cpu_start
    second_seconds, second_cpu, _ = trainlab_way(configs, images, labels, test_images, test_labels, args.epochs)
    our_seconds, our_cpu = (first_seconds + second_seconds) / 2, (first_cpu + second_cpu) / 2

    print(f"\n{'N':>5} {'seed':>4} {'strategy':>11} {'weight':>6} | {'study F1':>8} {'ours F1':>8} {'diff':>7}"
          f" | {'study acc':>9} {'ours acc':>8}")
    diffs, acc_diffs = [], []
    for c, t, o in zip(configs, theirs, ours):
        diff = o["test_f1"] - t["test_f1"]
        diffs.append(abs(diff))
        acc_diffs.append(abs(o["test_acc"] - t["test_acc"]))
        for name in ("val", "test_sparse"):  # undefined in one way must be undefined in the other
            assert math.isnan(o[f"{name}_f1"]) == math.isnan(t[f"{name}_f1"]), (c["N"], c["strategy"], name)
        print(f"{c['N']:>5} {c['seed']:>4} {c['strategy']:>11} {c['weight']:>6} | {t['test_f1']:>8.4f} "
              f"{o['test_f1']:>8.4f} {diff:>+7.4f} | {t['test_acc']:>9.2f} {o['test_acc']:>8.2f}")
    speedup, cpu_speedup = study_seconds / our_seconds, study_cpu / our_cpu
    print(f"\nstudy's way: {study_seconds:.1f} s   trainlab: {our_seconds:.2f} s (mean of {first_seconds:.2f} s "
          f"before and {second_seconds:.2f} s after)   speedup {speedup:.1f}x")
    print(f"CPU time of this process (less sensitive to other users' load): study's way {study_cpu:.1f} s, "
          f"trainlab {our_cpu:.2f} s: speedup {cpu_speedup:.1f}x")
    print(f"largest per-model difference on the original test set: F1 {max(diffs):.4f}, accuracy "
          f"{max(acc_diffs):.2f} pp; load average now {os.getloadavg()[0]:.1f}")
    print(f"RESULT speedup={speedup:.1f} cpu_speedup={cpu_speedup:.1f} models={len(configs)} "
          f"max_f1_diff={max(diffs):.4f}")


if __name__ == "__main__":
    main()
