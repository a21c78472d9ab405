"""Benchmark: EMD ratio and NLL against training steps for candidate toy-DDPM training recipes.

The toy studies' default recipe (``train_steps``, ``batch_size``, ``lr``, ``warmup_steps``,
``ema_decay``) is chosen from these curves: every candidate is trained at several step budgets
(each budget its own run, since the cosine decay ends at the budget) on all five toy sets and
several seeds, with ``ddpm-steps``' protocol at T = 100 (see ``bench/ddpm_quality.py``,
whose :func:`recipe_rows` trains and scores), and every (recipe, budget, data set, seed) row is
appended to a CSV as soon as it is scored; ``--plot`` draws the curves from that CSV and
others in its format (``bench/ddpm_quality.py``'s rows: the old recipe's 3000 steps; ``width64`` and
``width96``: the old recipe with a narrower noise model, ``bench/ddpm_quality.py --new hidden=64``).

    python bench/ddpm_recipe_curves.py [--seeds 0,1] [--only old,ema995] [--csv bench/ddpm_recipe_curves.csv]
    python bench/ddpm_recipe_curves.py --plot [more.csv ...]

Training FLOPs are proportional to steps x batch size, so budgets are compared in
``kilo_examples`` (steps x batch / 1000): ``old`` at 3000 steps of 512 is 1536.
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from pathlib import Path

from ddpm_quality import OLD_RECIPE, append_rows, recipe_rows

from trainlab.data.toy import TOY_DATASETS

HERE = Path(__file__).resolve().parent
# name -> (recipe overrides, step budgets)
CANDIDATES = {
    "old": (OLD_RECIPE, [1000]),  # its 3000 steps (the old default): bench/ddpm_quality.py's rows
    "warmup": ({**OLD_RECIPE, "warmup_steps": 100}, [1000]),
    "ema995": ({**OLD_RECIPE, "warmup_steps": 100, "ema_decay": 0.995}, [500, 1000]),
    "ema999": ({**OLD_RECIPE, "warmup_steps": 100, "ema_decay": 0.999}, [1000]),
    "ema995_lr6e-3": ({**OLD_RECIPE, "warmup_steps": 100, "ema_decay": 0.995, "lr": 6e-3}, [1000]),
    "ema995_b256": ({**OLD_RECIPE, "warmup_steps": 100, "ema_decay": 0.995, "batch_size": 256}, [2000]),
}


def plot(csv_path: Path, more: list[Path]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = [row for path in [csv_path, *more] for row in csv.DictReader(path.open())]
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    fig, axes = plt.subplots(2, len(datasets), figsize=(3.2 * len(datasets), 6), squeeze=False)
    for c, name in enumerate(datasets):
        for r_, metric in enumerate(("emd_ratio", "nll")):
            ax = axes[r_, c]
            for recipe in dict.fromkeys(r["recipe"] for r in rows):
                mine = [r for r in rows if r["recipe"] == recipe and r["dataset"] == name]
                xs = sorted({float(r["kilo_examples"]) for r in mine})
                means = [np.mean([float(r[metric]) for r in mine if float(r["kilo_examples"]) == x]) for x in xs]
                ax.plot(xs, means, marker="o", label=recipe)
                for r in mine:
                    ax.scatter(float(r["kilo_examples"]), float(r[metric]), s=6, alpha=0.4)
            ax.set_title(f"{name}: {metric}", fontsize=9)
            ax.set_xlabel("training examples (thousands)")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(csv_path.with_suffix(".png"), dpi=90)
    print(f"wrote {csv_path.with_suffix('.png')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--datasets", default=",".join(TOY_DATASETS))
    parser.add_argument("--only", default="", help="comma-separated candidate names (default: all)")
    parser.add_argument("--csv", type=Path, default=HERE / "ddpm_recipe_curves.csv")
    parser.add_argument("--plot", nargs="*", type=Path, default=None,
                        help="only draw the figure (next to --csv) from --csv and these CSVs")
    args = parser.parse_args()
    if args.plot is not None:
        plot(args.csv, args.plot)
        return
    seeds = [int(s) for s in args.seeds.split(",")]
    names = args.only.split(",") if args.only else list(CANDIDATES)
    for name in names:
        recipe, budgets = CANDIDATES[name]
        for steps in budgets:
            overrides = {**recipe, "train_steps": steps}
            start = time.perf_counter()
            rows = recipe_rows(overrides, seeds, args.datasets.split(","))
            wall = time.perf_counter() - start
            append_rows(args.csv, name, overrides, rows, wall)
            print(f"{name} {steps} steps: {wall:.0f} s, mean EMD ratio "
                  f"{sum(r['emd_ratio'] for r in rows) / len(rows):.3f} (load {os.getloadavg()[0]:.1f})", flush=True)


if __name__ == "__main__":
    main()
