"""Figures for report files, drawn without pyplot.

``new_figure`` builds a :class:`matplotlib.figure.Figure` directly: such a figure needs no
GUI backend and no global pyplot state, so library code never has to pick a backend
(``matplotlib.use``) and nothing opens a window; ``savefig`` renders it with Agg.
"""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure


def new_figure(nrows: int = 1, ncols: int = 1, size: tuple[float, float] = (4.5, 3.4), **kw: Any):
    """A figure with ``nrows x ncols`` axes of ``size`` inches each; returns (fig, axes).

    Arguments follow matplotlib's ``subplots(nrows, ncols)`` order; ``axes`` is always a 2-D
    array (``axes[row, col]``), and ``kw`` goes to ``subplots`` (``sharex``, ``sharey``, ...).
    """
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes
