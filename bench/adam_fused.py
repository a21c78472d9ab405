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

import json
import sys
from pathlib import Path

try:
    import trainlab
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import trainlab

import trainlab.train.adam as adam_module
from _compare import main  # bench/ is on sys.path when a bench runs as a script


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


if __name__ == "__main__":
    main(__doc__.splitlines()[0], "default", "fused", run_once, "/tmp/adam-fused", default_seeds=3)
