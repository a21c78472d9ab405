"""Gradient descent and Adam on a 1-D function, recording every step.

Adam follows Algorithm 1 of Kingma & Ba (2015) line by line, so the trace holds
exactly the quantities the paper names: for each step ``t = 1..T``

    g_t     = f'(x_{t-1})
    m_t     = beta1 m_{t-1} + (1 - beta1) g_t          m_hat_t = m_t / (1 - beta1^t)
    v_t     = beta2 v_{t-1} + (1 - beta2) g_t^2        v_hat_t = v_t / (1 - beta2^t)
    x_t     = x_{t-1} - alpha m_hat_t / (sqrt(v_hat_t) + eps)

With ``eps = 0`` (as the bump study asks) the update is 0/0 while every
gradient so far was 0; the step is then taken as 0, the limit for eps -> 0+.

The module also holds :func:`bisect_largest`, an honest bisection for the
largest parameter at which a predicate still holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

Grad = Callable[[float], float]
Stop = Optional[Callable[[float], bool]]
FIELDS = ("t", "x", "g", "m", "v", "m_hat", "v_hat")


@dataclass(frozen=True)
class Trace:
    """One row per step ``t = 1..T``; ``x[i]`` is the iterate *after* step ``t[i]``.

    Gradient descent has no moments: its ``m, v, m_hat, v_hat`` are NaN.
    """

    x0: float
    t: np.ndarray
    x: np.ndarray
    g: np.ndarray
    m: np.ndarray
    v: np.ndarray
    m_hat: np.ndarray
    v_hat: np.ndarray

    def __len__(self) -> int:
        return len(self.t)

    def rows(self) -> list[dict[str, float]]:
        """The trace as records (for ``run.log`` or a table)."""
        cols = [getattr(self, f) for f in FIELDS]
        return [{f: (int(c[i]) if f == "t" else float(c[i])) for f, c in zip(FIELDS, cols)} for i in range(len(self))]

    def path(self) -> np.ndarray:
        """``x_0, x_1, ..., x_T``."""
        return np.concatenate([[self.x0], self.x])


def _trace(x0: float, rows: list[tuple[float, ...]]) -> Trace:
    cols = np.array(rows, dtype=float).reshape(-1, len(FIELDS)).T
    return Trace(x0, cols[0].astype(int), *cols[1:])


def gradient_descent(grad: Grad, x0: float, steps: int, lr: float, stop: Stop = None) -> Trace:
    """``x <- x - lr f'(x)`` for ``steps`` steps, or until ``stop(x)`` is true after a step."""
    x, rows = float(x0), []
    for t in range(1, steps + 1):
        g = float(grad(x))
        x = x - lr * g
        rows.append((t, x, g, math.nan, math.nan, math.nan, math.nan))
        if stop is not None and stop(x):
            break
    return _trace(x0, rows)


def adam(
    grad: Grad,
    x0: float,
    steps: int,
    alpha: float = 0.001,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    stop: Stop = None,
) -> Trace:
    """Adam (Algorithm 1 of the paper) for ``steps`` steps, or until ``stop(x)`` after a step."""
    if not (0 <= beta1 < 1 and 0 <= beta2 < 1 and eps >= 0):
        raise ValueError("adam needs 0 <= beta1, beta2 < 1 and eps >= 0")
    x, m, v, rows = float(x0), 0.0, 0.0, []
    for t in range(1, steps + 1):
        g = float(grad(x))
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat = m / (1 - beta1**t)
        v_hat = v / (1 - beta2**t)
        denom = math.sqrt(v_hat) + eps
        x = x - (alpha * m_hat / denom if denom > 0 else 0.0)  # 0/0 only when all g were 0
        rows.append((t, x, g, m, v, m_hat, v_hat))
        if stop is not None and stop(x):
            break
    return _trace(x0, rows)


# -- thresholds ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Threshold:
    """Result of :func:`bisect_largest`: the predicate holds at ``value`` and fails at ``upper``."""

    value: float
    upper: float
    grid: np.ndarray
    grid_passes: np.ndarray
    evaluations: int


def bisect_largest(passes: Callable[[float], bool], lo: float, hi: float, tol: float, grid: int = 41) -> Threshold:
    """Largest p in [lo, hi] with ``passes(p)``, to within ``tol``, for a predicate true then false.

    Bisection is only right when the predicate switches once, so it is first
    evaluated on ``grid`` evenly spaced points: it must hold at ``lo``, fail at
    ``hi`` and switch exactly once on the grid, or ValueError says where it
    does not. Bisection then narrows the switching grid cell.
    """
    ps = np.linspace(lo, hi, grid)
    ok = np.array([bool(passes(float(p))) for p in ps])
    if not ok[0] or ok[-1]:
        raise ValueError(f"need passes(lo) and not passes(hi); got {ok[0]} at {lo}, {ok[-1]} at {hi}")
    switches = np.flatnonzero(ok[:-1] != ok[1:])
    if len(switches) != 1:
        raise ValueError(f"predicate is not monotone on the grid: it switches at {ps[switches + 1].tolist()}")
    a, b = float(ps[switches[0]]), float(ps[switches[0] + 1])
    evaluations = grid
    while b - a > tol:
        mid = 0.5 * (a + b)
        evaluations += 1
        if passes(mid):
            a = mid
        else:
            b = mid
    return Threshold(a, b, ps, ok, evaluations)
