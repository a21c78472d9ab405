"""Sweeps: a grid of configs of one experiment, run as trials into one sweep folder.

``run_sweep("mnist-binary", ["hidden=2,3,4", "lr=1e-3,1e-2"])`` writes::

    <out>/mnist-binary-sweep/<stamp>-<hash>/
        sweep.json        the grid: every trial's key, overrides and resolved config
        trials.jsonl      one record per finished trial, appended (and fsynced) at once
        trials/<experiment>/<stamp>-<key>/   each trial's own run folder
        tables/trials.csv the combined table, in grid order; report.md, report.html

A trial's key is the hash of its resolved config. ``resume=SWEEP_DIR`` skips the
trials recorded ``done`` or ``diverged`` and runs the rest (missing and failed); a trial
that was stopped after a snapshot continues in its own folder from that snapshot.
:mod:`trainlab.sweeps.runner` runs a sweep, :mod:`~trainlab.sweeps.grid` expands the grid,
:mod:`~trainlab.sweeps.local` and :mod:`~trainlab.sweeps.ray` are the backends.
"""

from trainlab.sweeps.runner import BACKENDS, SweepSpec, plan, read_plan, run_sweep

__all__ = ["BACKENDS", "SweepSpec", "plan", "read_plan", "run_sweep"]
