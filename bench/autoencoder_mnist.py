"""What the autoencoder goals (set for MNIST) should give on MNIST, measured where only Fashion-MNIST is whole.

The goals (test L1 <= 0.05 at λ = 32, <= 0.095 at λ = 2) are for models trained on the
60k MNIST training images, which this machine does not have; it has Fashion-MNIST and
the real MNIST *test* set (``../shared/data/mnist-t10k``). So each model (the recipe's
defaults: L1, Adam, same epochs and batch size) is trained twice on 8000 images under
one protocol: 8000 MNIST test images (scored on the other 2000) and 8000 Fashion-MNIST
training images (scored on 2000 Fashion-MNIST test images). The ratio MNIST / Fashion
of the test L1 times the full Fashion-MNIST run's test L1 estimates the full MNIST run's.
The assumption, stated: the ratio at 8000 images carries over to 60000.

    python bench/autoencoder_mnist.py [--epochs 10] [--latent-activation relu|identity]
        [--output-activation relu|sigmoid|none] [--mnist-dir ../shared/data/mnist-t10k]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from trainlab.data import load_images, read_idx, to_tensor
from trainlab.nn.autoencoder import decode_all, encode_all, new_study_autoencoder
from trainlab.train.autoencoder import train_autoencoder

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-t10k"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--train", type=int, default=8000, help="training images per dataset")
    parser.add_argument("--archs", default="mlp,conv")
    parser.add_argument("--latents", default="2,32")
    parser.add_argument("--latent-activation", default="relu", choices=["relu", "identity"])
    parser.add_argument("--output-activation", default="relu", choices=["relu", "sigmoid", "none"])
    parser.add_argument("--mnist-dir", default=str(SHARED), help="folder with the MNIST t10k IDX files")
    args = parser.parse_args()
    torch.set_num_threads(1)
    folder = Path(args.mnist_dir)
    if not (folder / "t10k-images-idx3-ubyte.gz").is_file():
        raise SystemExit(f"no MNIST test set in {folder}; pass --mnist-dir")
    rng = np.random.default_rng(0)
    mnist = read_idx(folder / "t10k-images-idx3-ubyte.gz")[rng.permutation(10000)]
    fashion = load_images("fashion-mnist")
    sets = {
        "mnist": (to_tensor(mnist[: args.train], "cpu"), to_tensor(mnist[args.train :], "cpu")),
        "fashion": (to_tensor(fashion.train_images[rng.permutation(60000)[: args.train]], "cpu"),
                    to_tensor(fashion.test_images[: 10000 - args.train], "cpu")),
    }
    print(f"{args.train} training images per set, {args.epochs} epochs, batch {args.batch}, Adam lr {args.lr}, "
          f"code {args.latent_activation}, output {args.output_activation}, 1 thread; load average {os.getloadavg()[0]:.1f}")
    ratios = {}
    for arch in args.archs.split(","):
        for latent in map(int, args.latents.split(",")):
            l1 = {}
            for name, (x, x_test) in sets.items():
                model, _ = new_study_autoencoder(arch, latent, (28, 28), args.latent_activation, 0,
                                                 torch.device("cpu"), args.output_activation)
                train_autoencoder(model, x, lr=args.lr, epochs=args.epochs, batch_size=args.batch, seed=0,
                                  desc=f"{name} {arch} {latent}")
                l1[name] = F.l1_loss(decode_all(model, encode_all(model, x_test)), x_test).item()
            ratios[f"{arch}{latent}"] = l1["mnist"] / l1["fashion"]
            print(f"{arch} λ={latent}: test L1 MNIST {l1['mnist']:.4f}, Fashion-MNIST {l1['fashion']:.4f}, "
                  f"ratio {ratios[f'{arch}{latent}']:.3f}", flush=True)
    print("RESULT " + " ".join(f"ratio_{k}={v:.3f}" for k, v in ratios.items()))


if __name__ == "__main__":
    main()
