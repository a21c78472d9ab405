"""Hidden-layer activations for the NumPy network, each with its derivative.

The derivative is written in terms of the activation's *output* ``a`` rather than
its input ``z``: every one of these functions allows it, and it means the
backward pass needs only the activations the forward pass already returns.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from trainlab.errors import ConfigError
from trainlab.nn.activations import activation_name


class Activation(NamedTuple):
    forward: Callable[[np.ndarray], np.ndarray]
    """z -> a, elementwise."""
    slope: Callable[[np.ndarray], np.ndarray]
    """a -> da/dz at the z that produced a."""


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # 0.5 * (1 + tanh(z/2)) is the logistic function without exp overflow for large |z|.
    return (0.5 * (1.0 + np.tanh(0.5 * z))).astype(z.dtype, copy=False)


ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation(lambda z: np.maximum(z, 0), lambda a: (a > 0).astype(a.dtype)),
    "sigmoid": Activation(_sigmoid, lambda a: a * (1 - a)),
    "tanh": Activation(np.tanh, lambda a: 1 - a * a),
    "identity": Activation(lambda z: z, lambda a: np.ones_like(a)),
}


def get_activation(name: str) -> Activation:
    """The activation called ``name`` (or an alias, see :mod:`trainlab.nn.activations`); ConfigError otherwise."""
    name = activation_name(name)
    if name not in ACTIVATIONS:
        raise ConfigError(f"activation={name!r} is not one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def log_softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise log softmax, shifted by the row max so exp never overflows."""
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
