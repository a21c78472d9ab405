"""How well an autoencoder reconstructs and what its codes keep: error per class, class
neighbours in code space, and how sharp the reconstructions are."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch


def per_class_l1(recon: torch.Tensor, x: torch.Tensor, labels: torch.Tensor) -> list[float]:
    """Mean L1 per pixel of the images of each class 0..max(labels)."""
    err = (recon - x).abs().mean(dim=1)
    n = int(labels.max()) + 1
    sums = torch.zeros(n, device=x.device).index_add_(0, labels, err)
    counts = torch.bincount(labels, minlength=n).clamp(min=1)
    return (sums / counts).tolist()


def class_knn_accuracy(train_codes: torch.Tensor, train_labels: torch.Tensor, test_codes: torch.Tensor,
                       test_labels: torch.Tensor, k: int = 5, max_train: int = 10000) -> float:
    """% of test codes whose ``k`` nearest training codes (a fixed subset of ``max_train``) vote for their class."""
    from sklearn.neighbors import KNeighborsClassifier  # here: scikit-learn takes seconds to import

    keep = np.random.default_rng(0).permutation(len(train_codes))[:max_train]
    knn = KNeighborsClassifier(n_neighbors=k).fit(train_codes.cpu().numpy()[keep], train_labels.cpu().numpy()[keep])
    return 100.0 * float(knn.score(test_codes.cpu().numpy(), test_labels.cpu().numpy()))


def edge_strength(images: torch.Tensor, shape: Sequence[int]) -> float:
    """Mean absolute difference between horizontally and vertically neighbouring pixels: low for a blur."""
    x = images.reshape(-1, *shape)
    return 0.5 * ((x[:, :, 1:] - x[:, :, :-1]).abs().mean() + (x[:, 1:] - x[:, :-1]).abs().mean()).item()
