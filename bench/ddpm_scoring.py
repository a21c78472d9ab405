"""Benchmark: scoring one toy DDPM's samples, the metrics of today against those they replaced.

``ddpm-steps`` and ``ddpm-schedules`` score every model's samples with
``diffusion.metrics.sample_quality``: the Parzen NLL (bandwidth searched on held-out
points), the study's score, the exact EMD on 5 disjoint splits and the EMD ratio
against the data split's floor. Here one model's scoring runs both ways at the
recipes' default sizes (4000 samples, 4000 held-out points, EMDs of 800 and 2000
points), on every toy set, in this process, on one thread (the recipes score inside
single-threaded workers), alternating which way goes first:

- old: the implementation before the blocked kernel sums (``tests/old_scoring.py``,
  the tests' oracle): one ``logsumexp`` per bandwidth over whole distance matrices;
- new: the library's (``metrics._log_kernel_sums``). The EMDs are the same code both ways.

The "samples" are training points with Gaussian noise (std 0.03) added: as close to
the data as a good model's, so the bandwidth search and the EMDs do the same work.
Times are process CPU seconds (one thread, so what the scoring costs whatever the
machine's load; ``wall_speedup`` is the same ratio in wall time); ``scoring_speedup`` is
the median over repeats of old over new seconds per model, ``speedup_min``/``_max`` its
spread. ``max_abs_diff`` is the largest difference of any metric between the two ways,
and every chosen bandwidth must be the same (``bandwidths_equal``).

It also prints what the recipes save at their defaults: the per-model saving times
their number of models, plus the EMD floors no longer drawn again per stack (a data
set's models span several stacks; each stack drew its own floor).

    python bench/ddpm_scoring.py [--repeats 3] [--datasets moons,helix]

About two minutes on an idle 2-core machine at the defaults.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

try:
    import trainlab  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the oracle: tests/old_scoring.py

import torch
from old_scoring import old_kde_nll, old_study_nll

from trainlab.data.toy import make_toy
from trainlab.device import use_threads
from trainlab.diffusion import metrics
from trainlab.diffusion.protocol import split_points
from trainlab.diffusion.stacked import plan_stacks
from trainlab.experiments import ddpm_schedules, ddpm_steps

PARTS = ("parzen_nll", "study_nll", "emd_splits", "emd_ratio")


def score(way: str, generated: np.ndarray, held: torch.Tensor, floor: metrics.EMDFloor, cfg,
          seed: int) -> tuple[dict[str, float], dict[str, float], float]:
    """(metrics, CPU seconds per part, wall seconds) of one model's scoring, as ``sample_quality`` does it."""
    times, values = {}, {}
    wall = time.perf_counter()
    start = time.process_time()

    def lap(part: str) -> None:
        nonlocal start
        times[part], start = time.process_time() - start, time.process_time()

    if way == "old":
        values["nll"], values["nll_bandwidth"] = old_kde_nll(generated, held, seed=seed)
    else:
        kde = metrics.kde_nll(generated, held, seed=seed)
        values["nll"], values["nll_bandwidth"] = kde.nll, kde.bandwidth
    lap("parzen_nll")
    values["nll_study"] = (old_study_nll if way == "old" else metrics.study_nll)(held, generated)
    lap("study_nll")
    values["emd_mean"], values["emd_std"], _ = metrics.emd_splits(generated, held, k=cfg.emd_k, n=cfg.emd_n, seed=seed)
    lap("emd_splits")
    values["emd_ratio"], _ = metrics.emd_ratio_to(generated, floor, seed=seed + 1)
    lap("emd_ratio")
    return values, times, time.perf_counter() - wall


def floors_drawn(n_models_per_set: int, dims: list[int]) -> tuple[int, int]:
    """(EMD floors drawn per stack, as before; once per data set, now) for a recipe's grid."""
    keys = [dim for dim in dims for _ in range(n_models_per_set)]  # specs are data-set-major
    sets = [s for s in range(len(dims)) for _ in range(n_models_per_set)]
    per_stack = sum(len({sets[i] for i in stack}) for stack in plan_stacks(keys))
    return per_stack, len(dims)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="rounds of both ways on every data set")
    parser.add_argument("--datasets", default=None, help="comma-separated toy sets (default: the recipes' five)")
    args = parser.parse_args()
    cfg = ddpm_steps.Config()  # the recipes' scoring sizes (ddpm-schedules has the same)
    names = args.datasets.split(",") if args.datasets else list(cfg.datasets)
    print(f"scoring one model at the recipes' defaults: {cfg.n_samples} samples, {cfg.heldout} held-out points, "
          f"EMD {cfg.emd_k}x{cfg.emd_n} and 3x{cfg.ratio_n}; one thread; {os.cpu_count()} cpus; "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)

    cases, floor_s = [], []
    rng = np.random.default_rng(0)
    for i, name in enumerate(names):
        train, held = split_points(make_toy(name, n=cfg.n_points)[0], cfg.heldout, cfg.seed, torch.device("cpu"))
        picks = rng.choice(len(train), cfg.n_samples, replace=True)
        generated = (train[picks].numpy() + rng.normal(scale=0.03, size=(cfg.n_samples, train.shape[1]))).astype(
            np.float32)
        start = time.process_time()
        with use_threads(1):
            floor = metrics.emd_floor(held, train, n=cfg.ratio_n, seed=cfg.seed)
        floor_s.append(time.process_time() - start)
        cases.append((name, generated, held, floor, 1000 * i + 100))

    per_model = {"old": [], "new": []}  # per repeat: mean CPU seconds per model over the data sets
    wall = {"old": [], "new": []}  # the same in wall time
    parts = {way: {p: [] for p in PARTS} for way in per_model}
    diffs, same_bandwidth = [], True
    with use_threads(1):
        for r in range(args.repeats):
            totals, walls = {"old": [], "new": []}, {"old": [], "new": []}
            for name, generated, held, floor, seed in cases:
                got = {}
                for way in (("old", "new") if r % 2 == 0 else ("new", "old")):
                    got[way], times, seconds = score(way, generated, held, floor, cfg, seed)
                    totals[way].append(sum(times.values()))
                    walls[way].append(seconds)
                    for p in PARTS:
                        parts[way][p].append(times[p])
                diffs += [abs(got["old"][k] - got["new"][k]) for k in got["old"]]
                same_bandwidth &= got["old"]["nll_bandwidth"] == got["new"]["nll_bandwidth"]
                if r == 0:
                    print(f"{name:>12}: old {totals['old'][-1]:.2f} s, new {totals['new'][-1]:.2f} s CPU; nll "
                          f"{got['new']['nll']:.4f}, bandwidth {got['new']['nll_bandwidth']:.4g}, "
                          f"emd ratio {got['new']['emd_ratio']:.3f}", flush=True)
            for way in per_model:
                per_model[way].append(float(np.mean(totals[way])))
                wall[way].append(float(np.mean(walls[way])))
            print(f"repeat {r + 1}: CPU s/model old {per_model['old'][-1]:.2f}, new {per_model['new'][-1]:.2f}; "
                  f"wall s/model old {wall['old'][-1]:.2f}, new {wall['new'][-1]:.2f} "
                  f"(load average {os.getloadavg()[0]:.1f})", flush=True)

    ratios = np.array(per_model["old"]) / np.array(per_model["new"])
    wall_ratios = np.array(wall["old"]) / np.array(wall["new"])
    print(f"\n{'CPU s per model':>18} {'old':>7} {'new':>7}")
    for p in PARTS:
        print(f"{p:>18} {np.mean(parts['old'][p]):>7.3f} {np.mean(parts['new'][p]):>7.3f}")
    old_s, new_s = float(np.mean(per_model["old"])), float(np.mean(per_model["new"]))
    print(f"{'total':>18} {old_s:>7.3f} {new_s:>7.3f}")
    print(f"EMD floor (once per data split): {np.mean(floor_s):.3f} CPU s")

    dims = [3 if name == "helix" else 2 for name in ddpm_steps.Config().datasets]
    for recipe, per_set in (("ddpm-steps", len(ddpm_steps.Config().Ts)),
                            ("ddpm-schedules", len(ddpm_schedules.plan(ddpm_schedules.Config())))):
        before, after = floors_drawn(per_set, dims)
        saved = per_set * len(dims) * (old_s - new_s) + (before - after) * float(np.mean(floor_s))
        print(f"{recipe}: {per_set * len(dims)} models x {old_s - new_s:.2f} s + {before - after} floors not drawn "
              f"again x {np.mean(floor_s):.2f} s = {saved:.0f} CPU s saved (~{saved / 2:.0f} s of wall time "
              f"on two workers)")
    print(f"RESULT scoring_speedup={float(np.median(ratios)):.2f} speedup_min={ratios.min():.2f} "
          f"speedup_max={ratios.max():.2f} wall_speedup={float(np.median(wall_ratios)):.2f} "
          f"per_model_old_s={old_s:.3f} per_model_new_s={new_s:.3f} "
          f"max_abs_diff={max(diffs):.2e} bandwidths_equal={same_bandwidth} repeats={args.repeats} "
          f"load={os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
