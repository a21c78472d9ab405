"""Benchmark: Langevin MCMC on the energy-based model study's 14.4M-parameter EnergyRegressor.

Everything is measured in this process, side by side, repeated (median and spread):

- MALA against ULA per step, 128 chains (trainlab.mcmc.langevin.sample): MALA reuses
  the gradient of the accepted point, so both cost one forward and one input-gradient
  backward per step. Goal: MALA <= 1.1x ULA (the study: 2.3x).
- 128 chains as one batch: FLOP rate of a step (4 * multiply-adds * chains, see
  trainlab.nn.energy.energy_flops) over this machine's float32 matmul rate (best
  2048^3 torch.mm, measured next to each repeat), and chain-steps per second against
  one chain. Goals: >= 60% of the matmul rate, >= 15x one chain.
- Effective samples per second of the energy trace (bulk ESS, arviz-stats): trainlab
  (128 chains, one evaluation per step, no host sync) against the study's loop (one
  chain; energy and gradient at x and at the proposal every step; ``.item()`` for the
  accept test and the trace every step), same energy, same tau. Goal: >= 30x.

The energy: the regressor at PyTorch's default initialisation, weights frozen, plus a
Gaussian confinement |x - 0.5|^2 / (2 * 0.25^2). The network costs what the study's
costs; at random init it is almost constant, and exp(-E) of a ReLU network need not be
normalisable, so without the confinement the energy trace would be a random walk and
its ESS meaningless. The confinement costs O(d) per chain, the same for both ways.
Chains start from the confinement's Gaussian (near stationarity); 10 burn-in steps.

Denormals: at random init the input gradients of the deep, narrowing ReLU stack are
~1e-7 and the intermediate ones denormal, which slows the CPU's backward pass about 2x;
the bench flushes denormals to zero (``torch.set_flush_denormal``) unless --keep-denormals.

    python bench/mcmc.py [--threads 1] [--repeats 3] [--steps 5]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch

try:
    import trainlab  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _machine import matmul_rates  # bench/ is on sys.path when a bench runs as a script

from trainlab.mcmc.diagnostics import ess_bulk
from trainlab.mcmc.langevin import energy_and_grad, sample
from trainlab.nn.energy import EnergyRegressor, energy_flops, parameter_count

CENTRE, SCALE = 0.5, 0.25


def make_energy(seed: int):
    torch.manual_seed(seed)
    model = EnergyRegressor().eval()
    for p in model.parameters():
        p.requires_grad_(False)

    def energy(x):
        return model(x).squeeze(-1) + ((x - CENTRE) ** 2).sum(1) / (2 * SCALE**2)

    return model, energy


class TwoClocks:
    """A ``clock`` for :func:`sample` that returns this process's CPU time and records wall time too."""

    def __init__(self):
        self.walls: list[float] = []

    def __call__(self) -> float:
        self.walls.append(time.perf_counter())
        return time.process_time()

    @property
    def last_wall(self) -> float:
        """Wall-clock seconds between the last two readings (the sampling phase)."""
        return self.walls[-1] - self.walls[-2]


def start(chains: int, seed: int) -> torch.Tensor:
    return CENTRE + SCALE * torch.randn(chains, 784, generator=torch.Generator().manual_seed(seed))


def step_seconds(energy, chains: int, method: str, steps: int, seed: int) -> tuple[float, float]:
    """Seconds per sampling step: (wall clock, CPU time)."""
    clock = TwoClocks()
    res = sample(energy, start(chains, seed), method=method, tau=0.01, burn_in=1, n_samples=steps,
                 generator=torch.Generator().manual_seed(seed), clock=clock)
    return clock.last_wall / steps, res.sampling_s / steps


def study_mala(energy, x: torch.Tensor, tau: float, steps: int, burn_in: int, seed: int):
    """The study's loop: one chain, energy and gradient at x and at x' every step, .item() per step."""
    torch.manual_seed(seed)
    trace = []
    for i in range(burn_in + steps):
        if i == burn_in:
            wall, cpu = time.perf_counter(), time.process_time()
        e, g = energy_and_grad(energy, x)
        prop = x - tau * g + math.sqrt(2 * tau) * torch.randn_like(x)
        e_new, g_new = energy_and_grad(energy, prop)
        log_q_fwd = -((prop - x + tau * g) ** 2).sum() / (4 * tau)
        log_q_back = -((x - prop + tau * g_new) ** 2).sum() / (4 * tau)
        alpha = torch.exp(e - e_new + log_q_back - log_q_fwd).clamp(max=1.0)
        if torch.rand(1).item() < alpha.item():
            x = prop
            e = e_new
        if i >= burn_in:
            trace.append(e.item())
    return torch.tensor(trace)[:, None], time.perf_counter() - wall, time.process_time() - cpu


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def loadavg() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3]) if os.path.exists("/proc/loadavg") else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    parser.add_argument("--chains", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5, help="steps per timing of the batched chains")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ess-steps", type=int, default=40, help="trainlab's sampling steps for the ESS run")
    parser.add_argument("--study-steps", type=int, default=400, help="the study loop's sampling steps")
    parser.add_argument("--keep-denormals", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.keep_denormals:
        torch.set_flush_denormal(True)
    # With one thread, CPU time leaves out the time this process waited for a core on a shared
    # machine; with more, CPU time adds up the threads' (and their spin-waits), so wall clock it is.
    by_cpu = torch.get_num_threads() == 1
    pick = 1 if by_cpu else 0
    model, energy = make_energy(args.seed)
    B, flops_b, flops_1 = args.chains, energy_flops(model, args.chains), energy_flops(model, 1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cpus, "
          f"flush denormals {not args.keep_denormals}; load average {loadavg()} at start")
    print(f"EnergyRegressor: {parameter_count(model) / 1e6:.2f}M parameters; one step = "
          f"{flops_1 / 1e6:.1f} MFLOP per chain; headline clock: {'CPU time' if by_cpu else 'wall clock'}")

    # 1. per-step cost: MALA vs ULA (B chains, order alternating), one chain, and the matmul rate
    rows = []
    step_seconds(energy, B, "mala", 1, args.seed)  # warm up
    for r in range(args.repeats):
        peak = matmul_rates()
        order = ("mala", "ula") if r % 2 == 0 else ("ula", "mala")
        t = {m: step_seconds(energy, B, m, args.steps, args.seed + r) for m in order}
        one = step_seconds(energy, 1, "mala", 10 * args.steps, args.seed + r)
        peak = tuple(max(a, b) for a, b in zip(peak, matmul_rates()))
        row = {}
        for k, clock in enumerate(("wall", "cpu")):
            row[clock] = {"ratio": t["mala"][k] / t["ula"][k], "fraction": flops_b / t["mala"][k] / peak[k],
                          "speedup": (B / t["mala"][k]) / (1 / one[k]), "one_rate": flops_1 / one[k],
                          "peak": peak[k]}
            print(f"repeat {r} ({clock:4s}): matmul {peak[k] / 1e9:.1f} GFLOP/s; {B} chains MALA "
                  f"{1e3 * t['mala'][k]:.0f} ms/step ({flops_b / t['mala'][k] / 1e9:.1f} GFLOP/s), ULA "
                  f"{1e3 * t['ula'][k]:.0f} ms/step; 1 chain MALA {1e3 * one[k]:.1f} ms/step "
                  f"({flops_1 / one[k] / 1e9:.2f} GFLOP/s)")
        rows.append(row)
        print(f"  load average {loadavg()}")

    def med(key, clock=("wall", "cpu")[pick]):
        values = [row[clock][key] for row in rows]
        return statistics.median(values), min(values), max(values)

    ratio, fraction, speedup = med("ratio"), med("fraction"), med("speedup")
    print(f"(one chain runs at {med('one_rate')[0] / 1e9:.2f} GFLOP/s, a matrix-vector product bound by memory "
          f"bandwidth: {B} chains can be at most {med('peak')[0] / med('one_rate')[0]:.1f}x faster per chain-step "
          "than one on this CPU, even at the full matmul rate)")

    # 2. ESS per second of the energy trace: trainlab (B chains) vs the study's loop (one chain)
    clock = TwoClocks()
    ours = sample(energy, start(B, args.seed), method="mala", tau=0.01, burn_in=10, n_samples=args.ess_steps,
                  generator=torch.Generator().manual_seed(args.seed), clock=clock)
    ours_s = (clock.last_wall, ours.sampling_s)
    ours_ess = float(ess_bulk(ours.sample_energy))
    study_trace, *study_s = study_mala(energy, start(1, args.seed), 0.01, args.study_steps, 10, args.seed)
    study_ess = float(ess_bulk(study_trace))
    ess_speedup = [(ours_ess / ours_s[k]) / (study_ess / study_s[k]) for k in (0, 1)]
    print(f"ESS: trainlab {B} chains x {args.ess_steps} steps: bulk ESS {ours_ess:.0f} (accept "
          f"{float(ours.accept_rate.mean()):.2f}) in {ours_s[0]:.1f} s wall / {ours_s[1]:.1f} s CPU; study loop "
          f"1 chain x {args.study_steps} steps: bulk ESS {study_ess:.0f} in {study_s[0]:.1f} s wall / "
          f"{study_s[1]:.1f} s CPU; ESS/s ratio {ess_speedup[0]:.1f} (wall), {ess_speedup[1]:.1f} (CPU)")
    print(f"load average {loadavg()} at end")

    def spread(m):
        return f"{m[0]:.3g} (range {m[1]:.3g}-{m[2]:.3g} over {args.repeats} repeats)"

    other = ("wall", "cpu")[1 - pick]
    print(f"Goals ({('wall clock', 'CPU time')[pick]}; by {other}: ratio {med('ratio', other)[0]:.3g}, fraction "
          f"{med('fraction', other)[0]:.3g}, chain speedup {med('speedup', other)[0]:.3g}, "
          f"ESS/s {ess_speedup[1 - pick]:.3g}):")
    print(f"  MALA per step <= 1.1x ULA: {spread(ratio)} -> {verdict(ratio[0] <= 1.1)}")
    print(f"  {B} chains >= 60% of the float32 matmul rate: {spread(fraction)} -> {verdict(fraction[0] >= 0.6)}")
    print(f"  {B} chains >= 15x the chain-steps/s of one chain: {spread(speedup)} -> {verdict(speedup[0] >= 15)}")
    print(f"  ESS/s of the energy trace >= 30x the study's loop: {ess_speedup[pick]:.3g} -> "
          f"{verdict(ess_speedup[pick] >= 30)}")
    print(f"RESULT mala_ula_ratio={ratio[0]:.3f} flop_fraction_128={fraction[0]:.3f} "
          f"chain_speedup_128={speedup[0]:.2f} ess_per_s_speedup={ess_speedup[pick]:.2f}")


if __name__ == "__main__":
    main()
