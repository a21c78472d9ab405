"""Benchmark: each experiment's default run, one at a time, as a new user runs it.

Each experiment runs as ``trainlab run NAME --out DIR/NAME`` in a fresh process and an
empty output folder (start-up, data loading, report writing included; nothing to reuse, so
``ebm-sample`` trains its own regressor), one after another, and its wall time is
printed with the machine's one-minute load average before and after. These are
the numbers behind every ``RUNTIME`` and the README's experiment table; take them on
an idle machine (the load columns say whether it was).

    python bench/runtimes.py [NAME ...] [--skip cifar-cnn,cifar-eda,cifar-features,cifar-scaling] [--out /tmp/runtimes]
                             [--mnist-as fashion-mnist]

Where the MNIST training set cannot be had (no network), ``--mnist-as fashion-mnist`` runs
the MNIST-family recipes (those whose ``dataset`` defaults to mnist) on Fashion-MNIST, the
same size and shape, and the line says so.

Prints one line per experiment and ``RESULT`` lines with the seconds, and writes
``runtimes.json`` in ``--out``. Experiments whose data is missing fail with their own
one-line message and are reported as such.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from trainlab.experiments.registry import all_experiments, get_experiment


def _load() -> float:
    return os.getloadavg()[0]


def overrides(name: str, mnist_as: str | None) -> list[str]:
    """``dataset=<mnist_as>`` for a recipe whose dataset defaults to mnist, when asked."""
    cfg = get_experiment(name).config_cls()
    return [f"dataset={mnist_as}"] if mnist_as and getattr(cfg, "dataset", None) == "mnist" else []


def time_one(name: str, out: Path, items: list[str]) -> dict:
    """Run ``trainlab run NAME ITEMS`` once in a fresh interpreter; its wall time, exit code and loads."""
    before = _load()
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "trainlab", "run", name, *items, "--out", str(out / name)],
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    last = (proc.stderr.strip().splitlines() or [""])[-1]
    return {"name": name, "items": items, "seconds": round(seconds, 1), "rc": proc.returncode, "load_before": round(before, 2),
            "load_after": round(_load(), 2), "error": last if proc.returncode else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="experiments to time (default: all but --skip)")
    parser.add_argument("--skip", default="cifar-cnn,cifar-eda,cifar-features,cifar-scaling",
                        help="comma-separated experiments left out when no names are given")
    parser.add_argument("--mnist-as", default=None, help="dataset for the MNIST-family recipes, e.g. fashion-mnist")
    parser.add_argument("--out", default="/tmp/trainlab-runtimes", help="folder for the runs and runtimes.json")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    names = args.names or [name for name in sorted(all_experiments()) if name not in skip]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in names:
        row = time_one(name, out, overrides(name, args.mnist_as))
        rows.append(row)
        status = "ok" if row["rc"] == 0 else f"exit {row['rc']}: {row['error']}"
        print(f"{name:26s} {row['seconds']:8.1f} s  load {row['load_before']:.2f} -> {row['load_after']:.2f}  "
              f"{' '.join(row['items'])} {status}",
              flush=True)
        (out / "runtimes.json").write_text(json.dumps(rows, indent=2))
    for row in rows:
        print(f"RESULT name={row['name']}{''.join(' ' + i for i in row['items'])} seconds={row['seconds']} rc={row['rc']} "
              f"load={row['load_before']:.2f}->{row['load_after']:.2f}")


if __name__ == "__main__":
    main()
