"""Toy data sets of the diffusion study, and loading of user ``.npy`` arrays.

Every set is returned as ``(X, y)``: ``X`` float32 ``(N, d)`` min-max scaled to
``[-1, 1]`` per dimension (the study's ``normalize_data``), ``y`` int64 ``(N,)``.
The generators follow the study's parameters; randomness comes from NumPy's legacy
``RandomState(seed)`` so that ``seed=42`` repeats the study's draws where the study
seeded NumPy with 42 (blobs, helix labels).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.datasets import make_circles, make_moons

from trainlab.errors import ConfigError, DataError
from trainlab.files import not_a_file

TOY_DATASETS = ("moons", "circles", "manycircles", "blobs", "helix")

# Helix parameters fitted to the study's original helix.npy (10000 x 3): points lie on
# the unit-radius helix  (cos a, sin a, z)  with z ~ U(-2, -1) and angle a = K*z + PHASE
# (about 2.2 turns), plus isotropic Gaussian noise of std 0.03.  The fit: the radius has
# mean 1.0006 and std 0.030, z has mean -1.496 and std 0.292 (U(-2,-1) + N(0, 0.03^2)
# gives -1.5 and 0.290), and the angle residual after removing K*z + PHASE has std 0.42
# = K * 0.03, i.e. nothing beyond the noise.
HELIX_TURN_RATE = 13.85
HELIX_PHASE = -0.232
HELIX_NOISE = 0.03


def minmax_scale(X: np.ndarray) -> np.ndarray:
    """Per-column ``2 (X - min) / (max - min) - 1``; constant columns map to -1."""
    lo, hi = X.min(axis=0), X.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return (2 * (X - lo) / span - 1).astype(np.float32)


def _moons(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    return make_moons(n_samples=n, noise=0.04, random_state=seed)


def _circles(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    return make_circles(n_samples=n, noise=0.04, factor=0.7, random_state=seed)


def manycircles(n: int, seed: int, groups: int = 8, scale: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """``groups`` Gaussian clusters of std ``scale`` centred evenly on the unit circle ("many
    circles" = many round blobs placed on a circle); the label is the cluster."""
    rng = np.random.RandomState(seed)
    group = rng.randint(0, groups, size=n)
    theta = np.linspace(0, 2 * np.pi, groups + 1)[:-1]
    centres = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    return rng.randn(n, 2) * scale + centres[group], group


def _blobs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three Gaussians, two labels (the study's set): label 1 (prior 0.2) is a mixture of a
    blob at (0.2, 0.3) (20% of the positives, cov 2F+G) and one at (0.8, 0.8) (cov F-G);
    label 0 is one blob at (0.3, 0.4) (cov F), with F = 0.005 I and G = 0.004 off-diagonal.
    The label-0 blob overlaps the first label-1 blob, so the Bayes accuracy is below 100%."""
    rng = np.random.RandomState(seed)
    n_pos = rng.binomial(n, 0.2)
    n_pos_1 = rng.binomial(n_pos, 0.2)
    f = np.array([[0.005, 0.0], [0.0, 0.005]])
    g = np.array([[0.0, 0.004], [0.004, 0.0]])
    pos_1 = rng.multivariate_normal([0.2, 0.3], 2 * f + g, size=n_pos_1)
    pos_2 = rng.multivariate_normal([0.8, 0.8], f - g, size=n_pos - n_pos_1)
    neg = rng.multivariate_normal([0.3, 0.4], f, size=n - n_pos)
    X = np.vstack([pos_1, pos_2, neg])
    y = np.concatenate([np.ones(n_pos, dtype=np.int64), np.zeros(n - n_pos, dtype=np.int64)])
    return X, y


def helix_points(n: int, seed: int) -> np.ndarray:
    """``n`` raw (unscaled) helix points, parametrised to match the study's helix.npy.

    Drawn from NumPy's PCG64 ``default_rng(seed)``, not ``RandomState(seed)``: the labels
    use ``RandomState(seed)`` as the study did, and the same stream for both would make
    each label a function of the point's own height draw (labels far too predictable).
    """
    rng = np.random.default_rng(seed)
    z = rng.uniform(-2.0, -1.0, size=n)
    angle = HELIX_TURN_RATE * z + HELIX_PHASE
    X = np.stack([np.cos(angle), np.sin(angle), z], axis=1)
    return X + rng.normal(size=(n, 3)) * HELIX_NOISE


def helix_labels(X: np.ndarray, seed: int = 42) -> np.ndarray:
    """The study's labels on raw helix points: ``Bernoulli((sin(4 x0 x1 x2) + 1) / 2)``."""
    p = (np.sin(4 * X[:, 0] * X[:, 1] * X[:, 2]) + 1) / 2
    return np.random.RandomState(seed).binomial(1, p).astype(np.int64)


DEFAULT_SIZES = {"moons": 8000, "circles": 8000, "manycircles": 8000, "blobs": 8000, "helix": 10000}


def make_toy(
    name: str, n: int | None = None, seed: int = 42, *, helix_file: str | Path | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Generate toy set ``name`` (one of :data:`TOY_DATASETS`) with ``n`` points (default
    8000; helix 10000), min-max scaled to ``[-1, 1]``.

    ``helix_file``: use these raw helix points (e.g. the study's ``helix.npy``) instead of
    generating them; the labels are drawn as in the study.
    """
    if name not in DEFAULT_SIZES:
        raise ConfigError(f"dataset={name!r} is not one of {', '.join(TOY_DATASETS)}")
    n = DEFAULT_SIZES[name] if n is None else int(n)
    if n < 2:
        raise ConfigError(f"a toy set needs n >= 2 points (got {n})")
    if name == "helix":
        if helix_file is not None:
            X = load_array(helix_file, scale=False)[0].astype(np.float64)
            if X.shape[1] != 3:
                raise DataError(f"{helix_file}: helix points must have 3 columns, found {X.shape[1]}")
        else:
            X = helix_points(n, seed)
        y = helix_labels(X, seed)
    else:
        X, y = {"moons": _moons, "circles": _circles, "manycircles": manycircles, "blobs": _blobs}[name](n, seed)
    return minmax_scale(np.asarray(X, dtype=np.float64)), np.asarray(y, dtype=np.int64)


def _load_npy(path: Path) -> np.ndarray:
    problem = not_a_file(path)
    if problem:
        raise DataError(f"{path} {problem}; pass the path of a .npy file")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path} is not a readable .npy array without pickled objects ({reason}); save it with np.save") from None


def load_array(
    data_file: str | Path, labels_file: str | Path | None = None, *, scale: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """Load ``(N, ...)`` numeric data from a ``.npy`` file as float32 ``(N, d)`` (trailing axes
    flattened, like the study's albatross images), min-max scaled to ``[-1, 1]`` when ``scale``.
    ``labels_file``: ``(N,)`` integer labels (int64), or ``None``.  Raises DataError on bad files.
    """
    path = Path(data_file)
    X = _load_npy(path)
    if X.dtype.kind not in "biuf" or X.ndim < 1 or X.shape[0] < 1:
        raise DataError(f"{path}: need a numeric array of shape (N, ...), got dtype {X.dtype} shape {X.shape}")
    X = X.reshape(X.shape[0], -1).astype(np.float64)
    if not np.isfinite(X).all():
        raise DataError(f"{path} holds NaN or Inf values; clean the data first")
    X = minmax_scale(X) if scale else X.astype(np.float32)
    y = None
    if labels_file is not None:
        lpath = Path(labels_file)
        y = _load_npy(lpath)
        if y.dtype.kind not in "biu" or y.shape != (X.shape[0],):
            raise DataError(f"{lpath}: need {X.shape[0]} integer labels of shape ({X.shape[0]},), got {y.dtype} {y.shape}")
        y = y.astype(np.int64)
    return X, y


def labelled_sets(
    datasets: list[str], data_file: str | None = None, labels_file: str | None = None, seed: int = 42,
    helix_file: str | None = None,
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``[(name, X, y), ...]`` for the recipes: the user's ``data_file`` + ``labels_file``
    (named after the file) when given, else each toy set in ``datasets`` (helix from
    ``helix_file`` when given, see :func:`make_toy`)."""
    if data_file:
        if not labels_file:
            raise ConfigError("data_file needs labels_file too (an (N,) .npy of integer class labels)")
        X, y = load_array(data_file, labels_file)
        return [(Path(data_file).stem, X, y)]
    return [(name, *make_toy(name, seed=seed, helix_file=helix_file if name == "helix" else None))
            for name in datasets]
