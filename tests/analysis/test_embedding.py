"""The one t-SNE (ebm-sample's maps, scratch-mlp's hidden features): the same at any thread count, so it
may take every idle core, and a map that keeps well-separated clusters apart."""

import numpy as np
import pytest

from trainlab.analysis import tsne


def clusters(n_per: int = 50, dim: int = 20) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), n_per)
    return rng.normal(size=(3 * n_per, dim)) + np.eye(dim)[labels] * 8, labels


@pytest.mark.parametrize("dims", [2, 3])
def test_the_map_does_not_depend_on_the_thread_count(dims):
    points, _ = clusters()
    assert np.array_equal(tsne(points, dims, seed=0, threads=1), tsne(points, dims, seed=0, threads=2))


def test_separated_clusters_stay_apart_and_float32_input_is_taken():
    points, labels = clusters()
    emb = tsne(points.astype(np.float32), seed=1)
    assert emb.shape == (len(points), 2)
    centres = np.stack([emb[labels == k].mean(0) for k in range(3)])
    spread = max(np.linalg.norm(emb[labels == k] - centres[k], axis=1).mean() for k in range(3))
    gaps = [np.linalg.norm(centres[a] - centres[b]) for a in range(3) for b in range(a + 1, 3)]
    assert min(gaps) > 2 * spread  # every pair of clusters further apart than twice a cluster's radius
