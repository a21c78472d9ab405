"""Benchmark: Langevin sampling through the energy study's trained regressor, module against packed weights.

``ebm-sample`` samples its regressor (784 -> 4096 -> ... -> 1, 14.4M parameters) with MALA and ULA,
16 chains, 1000 burn-in steps and 1000 samples each. Each step is one forward and one input
gradient; the module's CPU path (MKL) runs those 16-row products at a fraction of the machine's
matmul rate, ``EnergyRegressor.frozen_energy`` runs them on oneDNN-packed copies of the weights
(``trainlab.nn.packed_mlp``): float32 as before, the sums in another order, so chains that start
alike part after some steps and only their statistics can be compared.

One ``ebm-eval`` run trains the regressor (or ``--from-run`` names one); then per seed both ways
sample it, alternated per seed, with ``ebm-sample``'s default settings, from the same 16 starts
(exact draws of the true energy: the bench has no image loader) and the same random numbers.
Per way, method and seed it keeps what ``ebm-sample`` reports that the change could move: the
acceptance rate, bulk and tail ESS and R-hat of the energy trace, the mean sampled energy, the
sliced Wasserstein distance to exact draws over its exact-vs-exact floor, and the time.
``RESULT``: each number's change of mean in the module's seed-to-seed SDs (positive = worse; for
the acceptance rate and the mean energy, which have no better side, the size of the change), the
worst of them, and the sampling-time ratio.

    python bench/langevin_packed.py [--seeds 3] [--from-run DIR] [--out /tmp/langevin-packed]

About 6 minutes on an idle 2-core machine at 3 seeds (1 for the regressor's training).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

try:
    import trainlab
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import trainlab

from _compare import change_in_sds, mean_sd  # bench/ is on sys.path when a bench runs as a script

from trainlab.diffusion.metrics import sliced_wasserstein
from trainlab.mcmc.diagnostics import summarize
from trainlab.mcmc.langevin import sample

BETTER = {"accept_rate": "none", "ess_bulk": "higher", "ess_tail": "higher", "rhat_off": "lower",
          "energy_mean": "none", "sw_ratio": "lower"}
"""The numbers compared, and which way is better (``none``: any change counts against)."""


def sample_once(energy, x0, exact, cfg, method: str, seed: int) -> dict[str, float]:
    res = sample(energy, x0, method=method, tau=cfg.tau, burn_in=cfg.burn_in, n_samples=cfg.n_samples,
                 generator=torch.Generator().manual_seed(seed + 2))
    diag = summarize(res.sample_energy)
    flat = res.samples.reshape(-1, x0.shape[1])
    pick = torch.randperm(len(flat), generator=torch.Generator().manual_seed(seed))[: cfg.sw_points]
    half = cfg.sw_points
    sw = sliced_wasserstein(flat[pick], exact[:half], seed=seed)
    floor = sliced_wasserstein(exact[half:], exact[:half], seed=seed)
    return {"accept_rate": float(res.accept_rate.mean()), "ess_bulk": diag["ess_bulk"], "ess_tail": diag["ess_tail"],
            "rhat_off": abs(diag["rhat"] - 1.0), "energy_mean": float(res.sample_energy.mean()),
            "sw_ratio": sw / floor, "seconds": res.total_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--from-run", type=Path, help="an ebm-eval run folder whose regressor to sample")
    parser.add_argument("--out", type=Path, default=Path("/tmp/langevin-packed"))
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} at start", flush=True)
    run = trainlab.load_run(args.from_run) if args.from_run else trainlab.run("ebm-eval", out=args.out, seed=0)
    if run.status != "done":
        raise SystemExit(f"the ebm-eval run {run.path} is {run.status}")
    regressor, target = run.model("regressor"), run.model("target")
    for p in regressor.parameters():
        p.requires_grad_(False)
    cfg = trainlab.make_config("ebm-sample")
    print(f"regressor of {run.path} (test R^2 {run.summary.get('r2', float('nan')):.3f}); {cfg.chains} chains, "
          f"tau {cfg.tau}, {cfg.burn_in} burn-in steps, {cfg.n_samples} samples; {torch.get_num_threads()} threads",
          flush=True)
    ways = {"module": regressor.energy, "packed": regressor.frozen_energy(cfg.chains)}
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    for seed in range(args.seeds):
        x0 = target.sample(cfg.chains, torch.Generator().manual_seed(1000 + seed))
        exact = target.sample(2 * cfg.sw_points, torch.Generator().manual_seed(2000 + seed))
        for way in ("module", "packed") if seed % 2 == 0 else ("packed", "module"):
            for method in cfg.methods:
                r = sample_once(ways[way], x0, exact, cfg, method, seed)
                results.setdefault((way, method), []).append(r)
                print(f"seed {seed} {way:>6} {method}: {r['seconds']:.1f} s, accept {r['accept_rate']:.3f}, "
                      f"ESS bulk {r['ess_bulk']:.1f} tail {r['ess_tail']:.1f}, |R-hat - 1| {r['rhat_off']:.3f}, "
                      f"energy {r['energy_mean']:.2f}, SW ratio {r['sw_ratio']:.3f} "
                      f"(load {os.getloadavg()[0]:.1f})", flush=True)
    changes = {}
    for method in cfg.methods:
        print(f"{method}:")
        for key, better in BETTER.items():
            changes[f"{method}_{key}"] = change_in_sds(results[("module", method)], results[("packed", method)], key,
                                                       better, ("module", "packed"))
    seconds = {way: sum(mean_sd(results[(way, m)], "seconds")[0] for m in cfg.methods) for way in ("module", "packed")}
    print("RESULT " + " ".join(f"{k}_sd={v:+.2f}" for k, v in changes.items())
          + f" worst_sd={max(changes.values()):+.2f} sampling_time_ratio={seconds['module'] / seconds['packed']:.2f}"
          f" module_s={seconds['module']:.1f} packed_s={seconds['packed']:.1f} seeds={args.seeds}"
          f" threads={torch.get_num_threads()} load={os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
