"""Optimisation & CNN study, Q6: receptive fields of ten five-layer conv/maxpool stacks.

The study's Table 1 lists ten networks of conv2d(k, s) and maxpool2d(k, s)
layers and asks for the side of the input region that one output pixel sees;
it fills in row 1 (8 x 8) as the example. Here every row is computed layer by
layer (size, jump, start; :mod:`trainlab.analysis.receptive_field`) and, as a
check, measured: a randomly initialised network of the same layers is built,
one output pixel is backpropagated to the input, and the nonzero gradient's
bounding box is the receptive field.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import List

import numpy as np

from trainlab.analysis.receptive_field import as_specs, empirical_receptive_field, receptive_fields
from trainlab.config import BaseConfig
from trainlab.device import torch_generator
from trainlab.report.figures import new_figure
from trainlab.runs import Run

NAME = "receptive-field"
STUDY = "optim-cnn"
QUESTION = "Q6"
SUMMARY = "receptive fields of the ten conv/maxpool stacks, computed and measured from gradients"
RUNTIME = "~3 s"  # bench/runtimes.py, 2026-12-06 (3.0 s), one at a time on the 2-core machine
QUICK = {"empirical": False}

STUDY_ROWS = [
    ["conv2d(3,1)", "conv2d(3,1)", "conv2d(1,1)", "maxpool2d(2,2)", "conv2d(2,2)"],
    ["conv2d(3,1)", "maxpool2d(2,2)", "conv2d(2,2)", "maxpool2d(2,2)", "conv2d(3,1)"],
    ["conv2d(5,1)", "maxpool2d(3,1)", "conv2d(4,1)", "maxpool2d(2,2)", "conv2d(3,1)"],
    ["conv2d(7,2)", "conv2d(5,1)", "conv2d(3,2)", "conv2d(3,1)", "conv2d(1,1)"],
    ["conv2d(4,1)", "conv2d(3,2)", "maxpool2d(2,2)", "conv2d(3,1)", "maxpool2d(2,2)"],
    ["conv2d(7,2)", "conv2d(5,2)", "maxpool2d(2,2)", "conv2d(5,2)", "conv2d(7,2)"],
    ["conv2d(3,3)", "maxpool2d(2,2)", "conv2d(5,3)", "maxpool2d(3,3)", "conv2d(5,1)"],
    ["conv2d(4,2)", "maxpool2d(2,2)", "conv2d(3,1)", "conv2d(1,1)", "conv2d(2,1)"],
    ["conv2d(4,2)", "maxpool2d(2,2)", "conv2d(3,1)", "conv2d(1,1)", "conv2d(2,1)"],
    ["conv2d(11,2)", "conv2d(7,2)", "maxpool2d(2,2)", "conv2d(5,2)", "conv2d(3,1)"],
]
STUDY_ANSWERS = {1: 8}  # the only cell the study fills in ("8 x 8")


@dataclass
class Config(BaseConfig):
    extra: List[str] = field(default_factory=list)
    """Another network added as row 11: quoted layer specs, e.g. "extra=['conv2d(3,1,1)','maxpool2d(2,2)']"."""
    empirical: bool = True
    """Also measure every row from the input gradient of one output pixel (the check; ~2 s)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        as_specs(self.extra)  # parse now, so a bad spec is a ConfigError naming it before anything runs


def run(cfg: Config, out: Run) -> None:
    # Data: the study's table, plus an optional network of the user's.
    networks = [list(r) for r in STUDY_ROWS] + ([list(cfg.extra)] if cfg.extra else [])
    n_cols = max(5, max(len(n) for n in networks))

    # Compute: size, jump and start after every layer.
    table, layers, sizes = [], [], []
    for row, specs in enumerate(networks, start=1):
        fields = receptive_fields(specs)
        size = fields[-1].size if fields else 1
        sizes.append([f.size for f in fields])
        table.append({"row": row, **{f"layer{i + 1}": s for i, s in enumerate(specs)}, "receptive_field": size})
        for i, f in enumerate(fields, start=1):
            layers.append({"row": row, "layer": i, "spec": str(f.spec), "size": f.size, "jump": f.jump,
                           "start": f.start})
        out.log(row=row, receptive_field=size)

    columns = ["row", *[f"layer{i}" for i in range(1, n_cols + 1)], "receptive_field"]
    out.table("receptive_field", table, columns=columns, title="Table 1 filled in",
              caption="Side in input pixels of the square one output pixel sees (8 means 8 x 8).")
    out.table("layers", layers, title="Layer by layer", floatfmt=".4g",
              caption="size: receptive field side after the layer; jump: input pixels between neighbouring "
              "outputs (cumulative stride); start: centre of output 0's field in input pixel coordinates.")
    out.text("study", _study_note(table), title="Against the study")

    # Measure: the same networks with random positive weights, gradient of one output pixel.
    all_match = None
    if cfg.empirical:
        checks, start = [], time.perf_counter()
        for row, specs in enumerate(networks, start=1):
            measured = empirical_receptive_field(specs, torch_generator(cfg.seed + row))
            computed = table[row - 1]["receptive_field"]
            checks.append({"row": row, "computed": computed, "measured_height": measured.height,
                           "measured_width": measured.width,
                           "match": computed == measured.height == measured.width})
        all_match = all(c["match"] for c in checks)
        out.table("measured", checks, title="Check: measured from input gradients",
                  caption="Max pooling is measured as average pooling of the same shape (a max passes gradient "
                  "to one input only); weights are positive so contributions cannot cancel. "
                  f"{len(checks)} networks in {time.perf_counter() - start:.2f} s.")

    out.figure("growth", _plot(sizes), title="Receptive field after each layer")
    out.summary(headline="receptive_field_row1",
                **{f"receptive_field_row{r['row']}": r["receptive_field"] for r in table},
                **({} if all_match is None else {"all_match_measured": all_match}))


def _study_note(table: list[dict]) -> str:
    lines = ["| row | study | ours |", "|---|---|---|"]
    for row, value in STUDY_ANSWERS.items():
        ours = table[row - 1]["receptive_field"]
        lines.append(f"| {row} | {value} x {value} | {ours} x {ours} |")
    return (
        "The study fills in only row 1; the other nine cells are the question.\n\n" + "\n".join(lines) + "\n\n"
        "Rows 8 and 9 of the study's table are identical (conv2d(4,2), maxpool2d(2,2), conv2d(3,1), "
        "conv2d(1,1), conv2d(2,1)), probably a typo in the assignment; both are computed as given.\n\n"
        "Per layer: size += (k - 1) * jump, then jump *= s (kernel k, stride s, no padding, as in the table)."
    )


def _plot(sizes: list[list[int]]):
    fig, axes = new_figure(size=(6.0, 4.0))
    ax = axes[0, 0]
    for row, s in enumerate(sizes, start=1):
        ax.plot(np.arange(1, len(s) + 1), s, "o-", ms=3, label=f"row {row}")
    ax.set(xlabel="layer", ylabel="receptive field side (pixels)", yscale="log")
    ax.legend(ncol=2, fontsize=7)
    return fig
