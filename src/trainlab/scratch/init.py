"""Weight initialisations for the NumPy network.

Biases always start at zero; these functions draw one weight matrix of shape
``(fan_in, fan_out)`` from an explicit generator.

- ``zero``:   all zeros. Every hidden unit gets the same gradient, so they stay
  identical forever (kept because the study compares it).
- ``random``: uniform on [-0.01, 0.01), the "small random numbers" of old courses.
- ``normal``: N(0, 0.01^2).
- ``he``:     N(0, 2 / fan_in) (He et al. 2015), for ReLU.
- ``xavier``: uniform on +-sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010), the
  initialisation scikit-learn's MLPClassifier uses.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

Init = Callable[[np.random.Generator, int, int], np.ndarray]


def _zero(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    return np.zeros((fan_in, fan_out))


def _random(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    return rng.uniform(-0.01, 0.01, size=(fan_in, fan_out))


def _normal(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    return rng.normal(0.0, 0.01, size=(fan_in, fan_out))


def _he(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(fan_in, fan_out))


def _xavier(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    bound = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-bound, bound, size=(fan_in, fan_out))


INITS: dict[str, Init] = {
    "zero": _zero,
    "random": _random,
    "normal": _normal,
    "he": _he,
    "xavier": _xavier,
}


def init_weights(
    name: str, layer_sizes: list[int], rng: np.random.Generator, dtype: type = np.float32
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Weights ``(fan_in, fan_out)`` and zero biases ``(fan_out,)`` for every layer."""
    if name not in INITS:
        raise ValueError(f"weight_init={name!r} is not one of {', '.join(INITS)}")
    draw = INITS[name]
    weights = [draw(rng, i, o).astype(dtype) for i, o in zip(layer_sizes[:-1], layer_sizes[1:])]
    biases = [np.zeros(o, dtype=dtype) for o in layer_sizes[1:]]
    return weights, biases
