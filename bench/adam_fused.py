"""Benchmark: torch's fused Adam (``trainlab.train.adam.make_adam``) against torch's default Adam.

Every trainlab training path makes its Adam with ``make_adam``: torch's fused kernel where the
device has one (CPU, CUDA), torch's default (``foreach``: several whole-tensor passes per step)
elsewhere. The largest model it trains on a CPU is the energy-based model study's 14.4M-parameter
regressor (``ebm-eval``, also trained by a fresh ``ebm-sample``), where the default Adam's
passes over every weight were 40% of a training step. Both ways here run ``ebm-eval`` through
the public API on the same data, once per seed (its split, initial weights and batch order): the
default by making ``fused_adam`` say no, as on a device without the kernel. The two round
differently, and five epochs of a large network carry a rounding difference as far as a change
of seed does, so quality is compared in seed-to-seed standard deviations.

Reported per way: the training time (the run's ``train_time_s``), the test MSE and R^2 (mean and
seed-to-seed SD). ``RESULT``: the default's mean training time over the fused one's, and the
change of each mean in the default's seed-to-seed SDs (positive = worse; the goal: within 1),
and, because a failed fit (the regressor collapses to a constant on some seeds, with either Adam)
swamps those SDs, the mean paired change of R^2 over the seeds where both ways trained.

    python bench/adam_fused.py [--seeds 3] [--out /tmp/adam-fused] [KEY=VALUE ...]

About 10 minutes on an idle 2-core machine (six ebm-eval runs, the ways alternated per seed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

try:
    import trainlab
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import trainlab

import trainlab.train.adam as adam_module

WAYS = ("default", "fused")
QUALITY = {"test_mse": "lower", "r2": "higher"}


def run_once(way: str, seed: int, out: Path, overrides: dict[str, str]) -> dict[str, float]:
    """One ebm-eval run with Adam made ``way``; its summary numbers."""
    fused = adam_module.fused_adam
    if way == "default":
        adam_module.fused_adam = lambda device: False  # make_adam reads it at every call
    try:
        run = trainlab.run("ebm-eval", out=out / f"{way}-{seed}", seed=seed, **overrides)
    finally:
        adam_module.fused_adam = fused
    if run.status != "done":
        raise SystemExit(f"ebm-eval with {way} Adam, seed {seed}: {run.status}")
    return json.loads((Path(run.path) / "summary.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("/tmp/adam-fused"))
    parser.add_argument("overrides", nargs="*", help="ebm-eval settings as KEY=VALUE (e.g. epochs=2)")
    args = parser.parse_args()
    overrides = dict(item.split("=", 1) for item in args.overrides)
    print(f"load average {os.getloadavg()[0]:.1f} at start; ebm-eval {overrides or 'defaults'}, "
          f"seeds 0..{args.seeds - 1}", flush=True)
    results: dict[str, list[dict[str, float]]] = {way: [] for way in WAYS}
    for seed in range(args.seeds):
        for way in WAYS if seed % 2 == 0 else WAYS[::-1]:  # alternate which way meets the machine first
            summary = run_once(way, seed, args.out, overrides)
            results[way].append(summary)
            print(f"seed {seed} {way:>7}: train {summary['train_time_s']:.1f} s, test MSE {summary['test_mse']:.1f}, "
                  f"R^2 {summary['r2']:.4f} (load {os.getloadavg()[0]:.1f})", flush=True)

    def stats(way: str, key: str) -> tuple[float, float]:
        values = [r[key] for r in results[way]]
        return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else float("nan")

    changes = {}
    for key, better in QUALITY.items():
        (base, sd), (mine, mine_sd) = stats("default", key), stats("fused", key)
        worse = (mine - base) if better == "lower" else (base - mine)
        changes[key] = worse / sd
        print(f"{key}: default {base:.4g} +- {sd:.3g}, fused {mine:.4g} +- {mine_sd:.3g}: "
              f"{changes[key]:+.2f} default SDs (positive = worse)")
    # A failed fit (a constant predictor, or one far off on the test set) swamps the SDs above; where
    # both ways trained (R^2 > 0.1), their R^2 side by side, seed by seed.
    paired = [(seed, d["r2"], f["r2"]) for seed, (d, f) in enumerate(zip(results["default"], results["fused"]))
              if min(d["r2"], f["r2"]) > 0.1]
    failed = [seed for seed, (d, f) in enumerate(zip(results["default"], results["fused"])) if min(d["r2"], f["r2"]) <= 0.1]
    print("seeds where both trained: " + (", ".join(f"{seed}: R^2 {d:.4f} default, {f:.4f} fused"
                                                      for seed, d, f in paired) or "none")
          + f"; failed fits (R^2 <= 0.1 either way) at seeds {failed or 'none'}")
    time_ratio = stats("default", "train_time_s")[0] / stats("fused", "train_time_s")[0]
    print("RESULT " + " ".join(f"{k}_sd={v:+.2f}" for k, v in changes.items())
          + f" worst_sd={max(changes.values()):+.2f} train_time_ratio={time_ratio:.2f}"
          f" default_train_s={stats('default', 'train_time_s')[0]:.1f} fused_train_s={stats('fused', 'train_time_s')[0]:.1f}"
          f" paired_r2_diff={statistics.mean(f - d for _, d, f in paired) if paired else float('nan'):+.4f}"
          f" failed_seeds={len(failed)} seeds={args.seeds} load={os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
