"""Benchmark: the energy-based model study's regressor, the earlier training recipe against today's.

The regressor is the study's 784 -> 4096 -> ... -> 2 -> 1 ReLU stack (14.4M parameters), trained by
``ebm-eval`` (and by a fresh ``ebm-sample``) on images and exact draws of a known energy. The earlier
recipe (He-normal weights with biases 0.5, Adam lr 1e-3, 5 epochs) left the 2- and 4-wide layers dead
on seeds 1-3 of 0-5: a constant predictor or one far off. Today's default starts every hidden unit
alive on the data (data-dependent initialisation, ``init_active=0.5``) and trains at lr 3e-4, reached
by a linear warm-up over the first of 3 epochs. Both run here through the public API on the same
data, once per seed, the recipes alternated per seed; the earlier one is ``init_active=null lr=0.001
epochs=5 warmup_epochs=0``. Its initial weights are drawn in
another order than the code of the time drew them, so a seed's run is that recipe on other draws.

Reported per recipe: training time, test MSE and R^2 (mean and seed-to-seed SD), and R^2 seed by
seed (``bench/_compare.py``). ``RESULT``: the change of each mean in the earlier recipe's SDs
(positive = worse), the training-time ratio, the failed fits per recipe.

    python bench/ebm_regressor.py [--seeds 6] [--out /tmp/ebm-regressor] [KEY=VALUE ...]

About 15 minutes on an idle 2-core machine at 6 seeds.
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

from _compare import main  # bench/ is on sys.path when a bench runs as a script

RECIPES = {"earlier": {"init_active": None, "lr": 1e-3, "epochs": 5, "warmup_epochs": 0}, "default": {}}


def run_once(recipe: str, seed: int, out: Path, overrides: dict[str, str]) -> dict[str, float]:
    """One ebm-eval run of ``recipe``; its summary numbers."""
    run = trainlab.run("ebm-eval", out=out / f"{recipe}-{seed}", seed=seed, **{**overrides, **RECIPES[recipe]})
    if run.status != "done":
        raise SystemExit(f"ebm-eval, {recipe} recipe, seed {seed}: {run.status}")
    return json.loads((Path(run.path) / "summary.json").read_text())


if __name__ == "__main__":
    main(__doc__.splitlines()[0], "earlier", "default", run_once, "/tmp/ebm-regressor", default_seeds=6)
