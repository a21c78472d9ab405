"""Benchmark: the toy DDPM studies' training recipe, old against new, at the same quality?

``ddpm-steps`` and ``ddpm-schedules`` train one noise model per (toy set, T, schedule) and
score it (exact EMD ratio against held-out points, Parzen NLL). Their default training
recipe (the old recipe here: 3000 Adam steps of 512 with cosine decay, width 128) is judged
against a candidate (``--new``: fewer steps, a learning-rate warm-up and an EMA of the weights,
a narrower network): none measured so far kept the quality, so the default stayed. This
bench trains both recipes on the same data with the same protocol, 3 seeds each (the
recipe's ``seed``: the train/held-out split, the initial weights and every draw), one model
per (toy set, seed) at T = 100 and the linear schedule (the studies' default schedule;
``ddpm-steps``' reference T), stacked as the recipes stack them, and reports per data set
the mean and seed-to-seed standard deviation of the EMD ratio and the NLL under each recipe.

``RESULT`` gives, per number, the change of the mean in units of the old recipe's
seed-to-seed standard deviation (positive = worse: both numbers are lower-is-better), the
worst of them (the goal: no number worse by more than 1 SD), and each recipe's wall time.

Not covered: other T and schedules (the studies' other cells: cosine, sigmoid and the linear
beta ranges train with the same recipe, so the recipe is judged at the studies' central
cell), the study's own score ``nll_study`` (reported by the studies, not a likelihood), and
the conditional studies (``ddpm-cfg``, ``ddpm-classifier``), whose recipe did not change.

    python bench/ddpm_quality.py [--seeds 0,1,2] [--datasets moons,helix] [--csv rows.csv]

About 10 minutes on an idle 2-core machine (mostly the old recipe's 3000 steps). Every
row goes to ``--csv`` as soon as its recipe is scored, and rows already there (of an
earlier run, or of ``bench/ddpm_recipe_curves.py`` with the same settings) are not trained
again: on a busy machine the recipes can run one at a time, ``--ways old`` then ``--ways
new``; the report comes from the CSV. ``old_s`` and ``new_s`` add the wall times of the
runs that trained each recipe's rows. ``--new`` names a candidate recipe that is not the
default (while the defaults are the old recipe, ``new`` without it is the old one again).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

try:
    import trainlab  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from trainlab.data.toy import TOY_DATASETS, make_toy
from trainlab.diffusion.protocol import fit_and_score_all
from trainlab.experiments import ddpm_steps

OLD_RECIPE = {"train_steps": 3000, "batch_size": 512, "lr": 3e-3, "warmup_steps": 0, "ema_decay": 0.0, "hidden": 128}
"""The toy studies' recipe before issue 21: 3000 Adam steps of 512, cosine decay from 3e-3, no EMA, width 128."""
METRICS = ("emd_ratio", "nll")
FIELDS = ["recipe", "train_steps", "batch_size", "lr", "warmup_steps", "ema_decay", "kilo_examples",
          "dataset", "seed", "emd_ratio", "nll", "status", "wall_s", "load", "hidden"]
"""Columns of the rows' CSV (shared with ``bench/ddpm_recipe_curves.py``)."""


def recipe_rows(overrides: dict[str, Any], seeds: list[int], datasets: list[str], T: int = 100) -> list[dict]:
    """One scored row per (data set, seed): ``ddpm-steps``' protocol at one T with ``overrides``
    (every seed's models trained together, stacked as the recipe stacks them)."""
    sets = [(name, make_toy(name, n=10000)[0]) for name in datasets]
    keys, specs = [], []
    cfg = None
    for seed in seeds:
        cfg = replace(ddpm_steps.Config(datasets=datasets, Ts=[T], seed=seed), **overrides)
        seed_keys, seed_specs, _ = ddpm_steps.grid(cfg, sets, torch.device("cpu"))
        keys += [(name, seed) for name, _ in seed_keys]
        specs += seed_specs
    rows = []
    for (name, seed), fit in zip(keys, fit_and_score_all(specs, cfg)):  # the config is the Protocol
        rows.append({"dataset": name, "seed": seed, **{m: fit.row[m] for m in METRICS},
                     "status": fit.row["status"]})
    return rows


def append_rows(path: Path, recipe: str, overrides: dict[str, Any], rows: list[dict], wall_s: float) -> None:
    """Append the scored ``rows`` of one recipe (named ``recipe``) to the CSV at ``path``."""
    new_file = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        if new_file:
            writer.writeheader()
        for row in rows:
            writer.writerow({"recipe": recipe, **overrides,
                             "kilo_examples": overrides["train_steps"] * overrides["batch_size"] / 1000, **row,
                             "wall_s": round(wall_s, 1), "load": round(os.getloadavg()[0], 1)})


def rows_of(path: Path, recipe: dict[str, Any], seeds: list[int], datasets: list[str]) -> list[dict]:
    """The rows of the CSV at ``path`` trained with ``recipe``'s settings (under any name), for these
    seeds and data sets: the last of each (data set, seed). A run stopped midway, or rows of
    ``bench/ddpm_recipe_curves.py`` with the same settings, are not trained again (the models of
    other seeds may have shared their stacks: the same numbers up to float rounding)."""
    if not path.exists():
        return []
    found = {}
    for row in csv.DictReader(path.open()):
        if (int(row["seed"]) in seeds and row["dataset"] in datasets
                # rows written before the bench varied the width have no hidden column: they are width 128
                and all(float(row.get(k) or OLD_RECIPE[k]) == float(v) for k, v in recipe.items())):
            found[(row["dataset"], int(row["seed"]))] = {**row, **{m: float(row[m]) for m in (*METRICS, "wall_s")}}
    return list(found.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--datasets", default=",".join(TOY_DATASETS))
    parser.add_argument("--new", default="", help="the new recipe as key=value,... over ddpm-steps' defaults "
                        "(e.g. train_steps=1000,warmup_steps=100,ema_decay=0.995): a candidate not yet the default")
    parser.add_argument("--ways", default="old,new", help="recipes to train (the seeds --csv lacks)")
    parser.add_argument("--csv", type=Path, default=Path("ddpm_quality_rows.csv"),
                        help="where the rows go; rows it holds already are not trained again")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    datasets = args.datasets.split(",")
    new = {k: getattr(ddpm_steps.Config(), k) for k in OLD_RECIPE}
    for item in filter(None, args.new.split(",")):
        key, value = item.split("=")
        new[key] = type(OLD_RECIPE[key])(float(value))
    print(f"torch {torch.__version__}, {os.cpu_count()} cpus; load average {os.getloadavg()[0]:.1f} at start\n"
          f"old recipe {OLD_RECIPE}\nnew recipe {new}\n{len(datasets)} data sets x {len(seeds)} seeds, T=100 linear",
          flush=True)
    recipes = {"old": OLD_RECIPE, "new": new}
    for way in args.ways.split(","):
        todo = [seed for seed in seeds if len(rows_of(args.csv, recipes[way], [seed], datasets)) < len(datasets)]
        start = time.perf_counter()
        if todo:
            append_rows(args.csv, way, recipes[way], recipe_rows(recipes[way], todo, datasets),
                        time.perf_counter() - start)
        print(f"{way}: seeds {todo} trained in {time.perf_counter() - start:.1f} s, the others' rows found in "
              f"{args.csv} (load average {os.getloadavg()[0]:.1f})", flush=True)

    rows = {way: rows_of(args.csv, recipe, seeds, datasets) for way, recipe in recipes.items()}
    missing = {way: len(seeds) * len(datasets) - len(found) for way, found in rows.items()}
    if any(missing.values()):
        raise SystemExit(f"{args.csv} lacks rows {missing}: run --ways with the missing recipe")
    seconds = {way: sum(set(r["wall_s"] for r in found)) for way, found in rows.items()}

    print(f"\n{'dataset':>12} {'metric':>9} | {'old mean':>9} {'old sd':>7} | {'new mean':>9} {'new sd':>7} | "
          f"{'change/old sd':>13}")
    changes = {}
    for name in datasets:
        for metric in METRICS:
            old = np.array([r[metric] for r in rows["old"] if r["dataset"] == name])
            mine = np.array([r[metric] for r in rows["new"] if r["dataset"] == name])
            sd = old.std(ddof=1)
            changes[f"{name}_{metric}"] = (mine.mean() - old.mean()) / sd
            print(f"{name:>12} {metric:>9} | {old.mean():9.4f} {sd:7.4f} | {mine.mean():9.4f} "
                  f"{mine.std(ddof=1):7.4f} | {changes[f'{name}_{metric}']:+13.2f}")
    diverged = sum(r["status"] != "done" for way in rows for r in rows[way])
    worst = max(changes, key=changes.get)
    print(f"\nworst change {changes[worst]:+.2f} old-recipe SDs ({worst}); {diverged} models diverged")
    print("RESULT " + " ".join(f"{k}_sd={v:+.2f}" for k, v in changes.items())
          + f" worst_sd={changes[worst]:+.2f} worst={worst} old_s={seconds['old']:.1f} new_s={seconds['new']:.1f}"
          f" seeds={len(seeds)} diverged={diverged} load={os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
