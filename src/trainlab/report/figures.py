"""Figures for report files, drawn without pyplot.

``new_figure`` builds a :class:`matplotlib.figure.Figure` directly: such a figure needs no
GUI backend and no global pyplot state, so library code never has to pick a backend
(``matplotlib.use``) and nothing opens a window; ``savefig`` renders it with Agg.
``mean_std_lines`` draws repeated measurements (seeds) as mean lines with std bars; ``mosaic``
lays flat images out as one grid to show with ``imshow``.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from matplotlib.figure import Figure

from trainlab.report.stats import mean_and_std


def log_scale_if_any(values: Any) -> str:
    """``"log"`` for an axis of ``values`` (any nesting of numbers), or ``"linear"`` when none is
    positive and finite (every run diverged): matplotlib refuses a log axis with no such value."""
    flat = np.concatenate([np.asarray(v, dtype=float).ravel() for v in values]) if len(values) else np.array([])
    return "log" if bool((np.isfinite(flat) & (flat > 0)).any()) else "linear"


def new_figure(nrows: int = 1, ncols: int = 1, size: tuple[float, float] = (4.5, 3.4), **kw: Any):
    """A figure with ``nrows x ncols`` axes of ``size`` inches each; returns (fig, axes).

    Arguments follow matplotlib's ``subplots(nrows, ncols)`` order; ``axes`` is always a 2-D
    array (``axes[row, col]``), and ``kw`` goes to ``subplots`` (``sharex``, ``sharey``, ...).
    """
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def mean_std_lines(ax: Any, lines: dict[str, Sequence[Sequence[float]]], x: Sequence[Any], *, log: bool = False,
                   clip: tuple[float, float] | None = None) -> None:
    """One line per entry of ``lines`` (label -> one array of repeats per x): mean, bars of one std.

    With ``log`` the x axis is logarithmic at the values of ``x``; otherwise ``x`` are
    categories at 0, 1, 2, ... The lines are shifted a little sideways so that their
    bars stay apart; ``clip`` cuts the bars at the range the values live in (e.g. (0, 1)).
    """
    for i, (label, values) in enumerate(lines.items()):
        spread = [mean_and_std(v) for v in values]
        mean = np.array([m for m, _ in spread], dtype=float)
        # a single repeat draws no bar
        std = np.array([s if len(v) > 1 else 0.0 for (_, s), v in zip(spread, values)], dtype=float)
        low, high = (std, std) if clip is None else (np.minimum(std, mean - clip[0]), np.minimum(std, clip[1] - mean))
        shift = 0.015 * (i - (len(lines) - 1) / 2)
        xs = np.asarray(x, dtype=float) * (1 + shift) if log else np.arange(len(x)) + 5 * shift
        ax.errorbar(xs, mean, yerr=np.stack([low, high]), marker="o", capsize=3, label=label)
    if log:
        ax.set_xscale("log")
        ax.minorticks_off()
    ax.set_xticks(list(x) if log else list(range(len(x))), [str(v) for v in x])


def mosaic(images: np.ndarray, shape: Sequence[int], columns: int, gap: int = 1) -> np.ndarray:
    """Flat images (N, H*W) as one 2-D array, ``columns`` per row, separated by ``gap`` white pixels."""
    h, w = shape
    rows = -(-len(images) // columns)
    out = np.ones((rows * (h + gap) - gap, columns * (w + gap) - gap))
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        out[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = image.reshape(h, w)
    return out
