"""Matplotlib set-up for files (Agg backend, never a window)."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def new_figure(ncols: int = 1, nrows: int = 1, size: tuple[float, float] = (4.5, 3.4), **kw: Any):
    """A figure with ``nrows x ncols`` axes of ``size`` inches each; returns (fig, axes)."""
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False, **kw
    )
    fig.set_layout_engine("constrained")
    return fig, axes
