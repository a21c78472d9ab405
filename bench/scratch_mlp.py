"""Benchmark: trainlab's NumPy network against scikit-learn's MLPClassifier on Fashion-MNIST.

The NumPy network study compared its from-scratch MLP with scikit-learn's. Here both
train the study's network [784, 256, 128, 64, 10] (ReLU, softmax output) with the
same settings: plain minibatch SGD at learning rate 0.1 (no momentum, no weight
decay: ``alpha=0``), batch 64, Glorot-uniform weights (scikit-learn's own), a new
shuffle every epoch, float32 data, one BLAS thread each, no early stopping, and no
per-epoch evaluation on either side. Each repeat (seeds 0, 1, ...) trains both
networks in this process, alternating which goes first, and times whole fits:

- ``epoch_time_ratio``: our seconds per epoch over scikit-learn's (below 1: faster),
  mean over repeats, with its spread; ``cpu_time_ratio`` the same in process CPU time
  (both use one thread, so it leaves out waiting for a core on a shared machine);
- ``acc_diff``: our test accuracy minus scikit-learn's, in percentage points, mean over
  repeats (the two draw different initial weights and batch orders, so single runs
  differ by a few tenths of a point either way).

Run: ``python bench/scratch_mlp.py [--epochs 5] [--repeats 3]`` (about 2 minutes at the
defaults on an idle 2-core machine).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

try:
    import trainlab  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from trainlab.data import load_images
from trainlab.scratch.network import NeuralNetwork

HIDDEN = (256, 128, 64)


def sklearn_fit(X, y, epochs: int, batch: int, lr: float, seed: int):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=HIDDEN, activation="relu", solver="sgd", alpha=0.0, batch_size=batch,
                        learning_rate="constant", learning_rate_init=lr, momentum=0.0, max_iter=epochs,
                        n_iter_no_change=epochs + 1, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter is the number of epochs on purpose
        clf.fit(X, y)
    return clf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.1)
    args = parser.parse_args()

    data = load_images("fashion-mnist")
    X = (data.train_images.reshape(len(data.train_labels), -1) / np.float32(255)).astype(np.float32)
    X_test = (data.test_images.reshape(len(data.test_labels), -1) / np.float32(255)).astype(np.float32)
    y, y_test = data.train_labels.astype(np.int64), data.test_labels.astype(np.int64)
    sizes = [X.shape[1], *HIDDEN, 10]
    print(f"Fashion-MNIST from {data.source}: {len(y)} train / {len(y_test)} test; network {sizes}, relu, SGD lr "
          f"{args.lr}, batch {args.batch}, {args.epochs} epochs, {args.repeats} repeats; one BLAS thread each; "
          f"load average {os.getloadavg()[0]:.1f}")

    ratios, cpu_ratios, diffs = [], [], []
    with threadpool_limits(1, user_api="blas"):
        sklearn_fit(X[:500], y[:500], 1, args.batch, args.lr, 0)  # imports and first calls outside the timing
        NeuralNetwork(sizes, "relu", args.lr, "xavier", args.batch, 1).fit(X[:500], y[:500])
        for seed in range(args.repeats):
            times, cpu, accs = {}, {}, {}
            order = ("ours", "sklearn") if seed % 2 == 0 else ("sklearn", "ours")
            for way in order:
                start, cpu_start = time.perf_counter(), time.process_time()
                if way == "ours":
                    model = NeuralNetwork(sizes, "relu", args.lr, "xavier", args.batch, args.epochs, seed).fit(X, y)
                else:
                    model = sklearn_fit(X, y, args.epochs, args.batch, args.lr, seed)
                times[way] = (time.perf_counter() - start) / args.epochs
                cpu[way] = (time.process_time() - cpu_start) / args.epochs
                accs[way] = 100.0 * float(model.score(X_test, y_test))
            ratios.append(times["ours"] / times["sklearn"])
            cpu_ratios.append(cpu["ours"] / cpu["sklearn"])
            diffs.append(accs["ours"] - accs["sklearn"])
            print(f"seed {seed}: s/epoch ours {times['ours']:.2f} sklearn {times['sklearn']:.2f} (ratio {ratios[-1]:.2f}, CPU time "
                  f"ratio {cpu_ratios[-1]:.2f}); "
                  f"test acc ours {accs['ours']:.2f} sklearn {accs['sklearn']:.2f} (diff {diffs[-1]:+.2f} pp); "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
    spread = f" epoch_time_ratio_std={np.std(ratios, ddof=1):.2f} acc_diff_std={np.std(diffs, ddof=1):.2f}" \
        if len(ratios) > 1 else ""
    print(f"RESULT epoch_time_ratio={np.mean(ratios):.2f} acc_diff={np.mean(diffs):+.2f}{spread} "
          f"cpu_time_ratio={np.mean(cpu_ratios):.2f} "
          f"repeats={len(ratios)} load={os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
