"""Benchmark: ddpm-steps' grid trained as stacks against one model at a time, same results.

``ddpm-steps`` trains one noise model per (toy set, T): 5 sets x 5 T = 25 models. Both
ways here run the recipe's own protocol (``diffusion/protocol.fit_and_score_all``:
train, sample ``n_samples`` points, score them) on the recipe's default grid and
settings, in this process, one after the other:

- one at a time (``stacked=false``): ``train_ddpm`` + ``sample`` + the metrics per model,
  threads by ``device.cpu_plan`` (one for these step sizes);
- stacked (the default): models of one data dimension in stacks of up to 8
  (``diffusion/stacked.py``), each stack trained, sampled and scored on one of the
  single-threaded workers ``device.cpu_plan`` gives (one per core).

Every model starts from the same weights and draws the same batches and noise both
ways, so their results agree up to float rounding, amplified a little by training;
``max_emd_ratio_diff`` is the largest difference of a model's EMD ratio between the two
ways (for scale: one EMD ratio varies by several percent between subsample draws).

    python bench/ddpm_studies.py [--train-steps 300] [--datasets moons,helix]

``--train-steps 3000`` is the recipe's default training length (then about 20 minutes
on an idle 2-core machine, most of it the one-at-a-time way); the default 300 keeps the
bench near 5 minutes with the same grid, models, data, sampling and scoring (scoring 25
models is then the larger part of either way's time). ``speedup`` is in wall time,
``cpu_speedup`` in process CPU time (what stacking saves, whatever the machine's load;
the second core's share shows only in the wall time).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

try:
    import trainlab  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch

from trainlab.device import claim_cores
from trainlab.data.toy import make_toy
from trainlab.diffusion.protocol import fit_and_score_all
from trainlab.experiments import ddpm_steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-steps", type=int, default=300, help="optimizer steps per model (recipe: 3000)")
    parser.add_argument("--datasets", default=None, help="comma-separated toy sets (default: the recipe's five)")
    parser.add_argument("--threads", type=int, default=0, help="cores to use (0: all)")
    args = parser.parse_args()
    if args.threads:
        claim_cores(args.threads)
    cfg = ddpm_steps.Config(train_steps=args.train_steps)
    if args.datasets:
        cfg = replace(cfg, datasets=args.datasets.split(","))
    sets = [(name, make_toy(name, n=cfg.n_points)[0]) for name in cfg.datasets]
    keys, specs, _ = ddpm_steps.grid(cfg, sets, torch.device("cpu"))
    print(f"ddpm-steps grid: {len(specs)} models ({', '.join(cfg.datasets)} x T in {sorted(set(cfg.Ts))}), "
          f"{cfg.train_steps} steps of {cfg.batch_size}, width {cfg.hidden}, {cfg.n_samples} samples scored each; "
          f"{os.cpu_count()} cpus; load average {os.getloadavg()[0]:.1f}", flush=True)

    timings, tables = {}, {}
    for way in ("stacked", "one at a time"):
        start, cpu = time.perf_counter(), time.process_time()
        tables[way] = [fit.row for fit in fit_and_score_all(specs, cfg, stacked=way == "stacked")]  # the config is a Protocol
        timings[way] = (time.perf_counter() - start, time.process_time() - cpu)
        print(f"{way}: {timings[way][0]:.1f} s wall, {timings[way][1]:.1f} s CPU "
              f"(load average {os.getloadavg()[0]:.1f})", flush=True)

    print(f"\n{'dataset':>12} {'T':>4} | {'EMD ratio stacked':>17} {'one at a time':>13} {'diff':>8}")
    diffs = []
    for (name, T), a, b in zip(keys, tables["stacked"], tables["one at a time"]):
        diffs.append(abs(a["emd_ratio"] - b["emd_ratio"]))
        print(f"{name:>12} {T:>4} | {a['emd_ratio']:>17.4f} {b['emd_ratio']:>13.4f} {a['emd_ratio'] - b['emd_ratio']:>+8.4f}")
    nll_diff = max(abs(a["nll"] - b["nll"]) for a, b in zip(tables["stacked"], tables["one at a time"]))
    speedup = timings["one at a time"][0] / timings["stacked"][0]
    print(f"\nspeedup {speedup:.2f}x in wall time ({timings['one at a time'][1] / timings['stacked'][1]:.2f}x in "
          f"process CPU time); largest EMD ratio difference {max(diffs):.4f} (mean {np.mean(diffs):.4f}), "
          f"largest NLL difference {nll_diff:.4f} nats")
    cpu_speedup = timings["one at a time"][1] / timings["stacked"][1]
    print(f"RESULT speedup={speedup:.2f} max_emd_ratio_diff={max(diffs):.4f} cpu_speedup={cpu_speedup:.2f} "
          f"stacked_s={timings['stacked'][0]:.1f} "
          f"one_at_a_time_s={timings['one at a time'][0]:.1f} models={len(specs)} train_steps={cfg.train_steps} "
          f"load={os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
