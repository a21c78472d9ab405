"""1-D losses to watch an optimiser on (the Optimisation & CNN study, Question 1).

A piecewise-linear loss with a triangular bump (:func:`bump_landscape`) and the
activations ReLU, Sigmoid and |x| as losses (:func:`activation`), whose derivatives at
the kinks follow torch (relu'(0) = 0, |x|'(0) = 0).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Callable

import numpy as np

Grad = Callable[[float], float]


@dataclass(frozen=True)
class PiecewiseLinear:
    """A continuous piecewise-linear f with f(0) = 0.

    ``slopes[i]`` holds on ``[knots[i-1], knots[i])`` (``slopes[0]`` left of the
    first knot, ``slopes[-1]`` right of the last); at a knot the derivative is
    the right-hand slope.
    """

    knots: tuple[float, ...]
    slopes: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.slopes) != len(self.knots) + 1 or list(self.knots) != sorted(self.knots):
            raise ValueError("PiecewiseLinear needs increasing knots and one more slope than knots")

    def grad(self, x: float) -> float:
        return self.slopes[bisect.bisect_right(self.knots, x)]

    def __call__(self, x: np.ndarray | float) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        edges = np.array([-np.inf, *self.knots, np.inf])
        out = np.zeros_like(x)
        for lo, hi, s in zip(edges[:-1], edges[1:], self.slopes):
            # signed length of [0, x] inside [lo, hi)
            out += s * (np.clip(x, lo, hi) - np.clip(0.0, lo, hi))
        return out


def bump_landscape(L: float = 1.0, h: float = 0.5, slope: float = 1.0) -> PiecewiseLinear:
    """The study's loss: down with slope -``slope`` from x = 0, then a triangular bump.

    The bump starts at ``L``, rises with slope +``slope`` up to its peak at
    ``L + h``, falls with slope -``slope`` to its far foot at ``L + 2h`` (height
    h and width 2h for slope 1), and the loss keeps falling after it.
    """
    if h <= 0 or L <= 0:
        raise ValueError("bump_landscape needs L > 0 and h > 0")
    return PiecewiseLinear((L, L + h, L + 2 * h), (-slope, slope, -slope, -slope))


@dataclass(frozen=True)
class Objective:
    """A named 1-D loss ``f`` (vectorised over NumPy arrays) and its derivative ``grad`` at one point."""

    name: str
    f: Callable[[np.ndarray], np.ndarray]
    grad: Grad


def activation(name: str) -> Objective:
    """ReLU, Sigmoid or |x| as a 1-D objective, with torch's derivative at the kinks."""
    if name == "relu":
        return Objective("ReLU", lambda x: np.maximum(x, 0.0), lambda x: 1.0 if x > 0 else 0.0)
    if name == "sigmoid":

        def sig(x):
            return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=float)))

        return Objective("Sigmoid", sig, lambda x: float(sig(x) * (1.0 - sig(x))))
    if name == "abs":
        return Objective("|x|", np.abs, lambda x: float(np.sign(x)))
    raise ValueError(f"unknown activation {name!r}; choose relu, sigmoid or abs")
