"""Two ways of training the energy-based model study's regressor, compared seed by seed.

``main`` is the whole bench given how to run one way on one seed.

``bench/adam_fused.py`` (two Adams) and ``bench/ebm_regressor.py`` (two training recipes) both
run ``ebm-eval`` once per seed and way and judge the second way against the first the same way:
the change of each quality number's mean in the first way's seed-to-seed SDs, and, because one
failed fit (R^2 <= 0.1: a constant predictor, or one far off) swamps those SDs, R^2 side by side
on the seeds where both trained. ``change_in_sds`` is that measure for one number, which
``bench/langevin_packed.py`` (two ways of sampling the regressor) uses too.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
from pathlib import Path
from typing import Callable

QUALITY = {"test_mse": "lower", "r2": "higher"}
"""ebm-eval's summary numbers that say how good the regressor is, and which way is better."""
FAILED_R2 = 0.1
"""ebm-eval's own line: at or below this test R^2 the regressor has not learnt the energy."""


def mean_sd(runs: list[dict[str, float]], key: str) -> tuple[float, float]:
    values = [r[key] for r in runs]
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else float("nan")


def change_in_sds(first: list[dict[str, float]], second: list[dict[str, float]], key: str, better: str,
                  names: tuple[str, str]) -> float:
    """Print ``key``'s mean and SD in both ways; return the change of its mean from ``first`` to ``second`` in
    ``first``'s seed-to-seed SDs, positive = worse (``better``: higher, lower, or none: any change is worse)."""
    (base, sd), (mine, mine_sd) = mean_sd(first, key), mean_sd(second, key)
    worse_by = {"higher": base - mine, "lower": mine - base, "none": abs(mine - base)}[better]
    # a number constant over seeds (ULA's acceptance) has an SD of 0: a change only if the other way moves it
    change = worse_by / sd if sd > 0 else (math.copysign(math.inf, worse_by) if worse_by else 0.0)
    print(f"{key}: {names[0]} {base:.4g} +- {sd:.3g}, {names[1]} {mine:.4g} +- {mine_sd:.3g}: "
          f"{change:+.2f} {names[0]} SDs (positive = worse)")
    return change


def compare(first: str, second: str, results: dict[str, list[dict[str, float]]]) -> str:
    """Print the comparison of way ``second`` against way ``first`` (``results[way]``: one summary per seed,
    seeds in the same order); return the RESULT fields it measured, as ``key=value`` text."""
    changes = {key: change_in_sds(results[first], results[second], key, better, (first, second))
               for key, better in QUALITY.items()}
    pairs = list(zip(results[first], results[second]))
    paired = [(seed, a["r2"], b["r2"]) for seed, (a, b) in enumerate(pairs) if min(a["r2"], b["r2"]) > FAILED_R2]
    failed = {way: [seed for seed, r in enumerate(results[way]) if not r["r2"] > FAILED_R2] for way in (first, second)}
    print("seeds where both trained: " + (", ".join(f"{seed}: R^2 {a:.4f} {first}, {b:.4f} {second}"
                                                      for seed, a, b in paired) or "none")
          + "; failed fits (R^2 <= 0.1): " + "; ".join(f"{way} at seeds {seeds or 'none'}"
                                                        for way, seeds in failed.items()))
    time_ratio = mean_sd(results[first], "train_time_s")[0] / mean_sd(results[second], "train_time_s")[0]
    return (" ".join(f"{k}_sd={v:+.2f}" for k, v in changes.items())
            + f" worst_sd={max(changes.values()):+.2f} train_time_ratio={time_ratio:.2f}"
            f" {first}_train_s={mean_sd(results[first], 'train_time_s')[0]:.1f}"
            f" {second}_train_s={mean_sd(results[second], 'train_time_s')[0]:.1f}"
            f" paired_r2_diff={statistics.mean(b - a for _, a, b in paired) if paired else float('nan'):+.4f}"
            + "".join(f" {way}_failed_seeds={len(seeds)}" for way, seeds in failed.items()))


RunOnce = Callable[[str, int, Path, dict[str, str]], dict[str, float]]
"""``run_once(way, seed, out, overrides)``: one ebm-eval run of ``way``; its summary numbers."""


def main(description: str, first: str, second: str, run_once: RunOnce, default_out: str, default_seeds: int) -> None:
    """Parse ``--seeds``, ``--out`` and ebm-eval ``KEY=VALUE`` settings, run both ways on every seed (which
    meets the machine first alternates per seed), print each run and then the ``RESULT`` line."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seeds", type=int, default=default_seeds)
    parser.add_argument("--out", type=Path, default=Path(default_out))
    parser.add_argument("overrides", nargs="*", help="ebm-eval settings for both ways as KEY=VALUE (e.g. epochs=2)")
    args = parser.parse_args()
    overrides = dict(item.split("=", 1) for item in args.overrides)
    print(f"load average {os.getloadavg()[0]:.1f} at start; ebm-eval {overrides or 'defaults'}, "
          f"seeds 0..{args.seeds - 1}", flush=True)
    results: dict[str, list[dict[str, float]]] = {first: [], second: []}
    for seed in range(args.seeds):
        for way in (first, second) if seed % 2 == 0 else (second, first):
            summary = run_once(way, seed, args.out, overrides)
            results[way].append(summary)
            print(f"seed {seed} {way:>7}: train {summary['train_time_s']:.1f} s, test MSE {summary['test_mse']:.1f}, "
                  f"R^2 {summary['r2']:.4f} (load {os.getloadavg()[0]:.1f})", flush=True)
    print(f"RESULT {compare(first, second, results)} seeds={args.seeds} load={os.getloadavg()[0]:.1f}")
