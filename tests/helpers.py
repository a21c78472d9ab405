"""Shared test helpers (importable as ``helpers``: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import csv
import re
import json
from pathlib import Path
from typing import Any

from trainlab.execute import build_config, run_experiment
from trainlab.experiments.registry import get_experiment


def run_quick(name: str, tmp_path: Path, **overrides: Any) -> Path:
    """Run experiment ``name`` with its quick profile on the CPU; return the run folder."""
    items = [f"{k}={_value(v)}" for k, v in overrides.items()]
    exp = get_experiment(name)
    return run_experiment(exp, build_config(exp, [*items, "device=cpu"], quick=True), out=tmp_path)


def _value(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(map(str, v)) + "]"
    if v is None:
        return "null"
    return str(v)


def read_table(run_dir: Path, name: str) -> tuple[list[str], list[dict[str, str]]]:
    """Columns and rows of ``tables/<name>.csv``."""
    with open(run_dir / "tables" / f"{name}.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def read_summary(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "summary.json").read_text())


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The records of ``metrics.jsonl``, in order."""
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]


def write_cifar(folder: Path, per_batch: int = 20, n_test: int = 30, seed: int = 0) -> Path:
    """A small ``cifar-10-python.tar.gz`` in the release's format in ``folder`` (random pixels,
    labels cycling 0..9, class c a little brighter in channel c % 3 so that it can be learned)."""
    import numpy as np

    from trainlab.data import cifar

    rng = np.random.default_rng(seed)

    def batch(n: int, offset: int) -> bytes:
        labels = (np.arange(n) + offset) % 10
        images = rng.integers(0, 128, size=(n, 32, 32, 3), dtype=np.uint8)
        for i, c in enumerate(labels):
            images[i, :, :, c % 3] += np.uint8(60 + 6 * c)
        return cifar.batch_bytes(images, labels)

    members = {name: batch(per_batch, i) for i, name in enumerate(cifar.TRAIN_BATCHES)}
    members[cifar.TEST_BATCH] = batch(n_test, 0)
    meta = {"label_names": list(cifar.CLASS_NAMES), "num_cases_per_batch": per_batch, "num_vis": 3072}
    return cifar.write_archive(folder / cifar.ARCHIVE, members, meta=meta)


def assert_same_table(a: list[dict[str, str]], b: list[dict[str, str]], skip: tuple[str, ...] = (),
                      rtol: float = 1e-3) -> None:
    """Two tables read by :func:`read_table` hold the same rows: text equal, numbers to ``rtol``
    (columns in ``skip``, such as timings, are not compared)."""
    import math

    assert len(a) == len(b)
    for row_a, row_b in zip(a, b, strict=True):
        assert row_a.keys() == row_b.keys()
        for key in row_a.keys() - set(skip):
            x, y = row_a[key], row_b[key]
            try:
                fx, fy = float(x), float(y)
            except ValueError:
                assert x == y, key
                continue
            assert math.isclose(fx, fy, rel_tol=rtol, abs_tol=1e-9) or (math.isnan(fx) and math.isnan(fy)), \
                f"{key}: {x} != {y}"


def load_noise_model(run_dir: Path, name: str):
    """(model, scheduler, info) of a DDPM recipe's checkpoint ``name``, rebuilt from its description."""
    from trainlab.checkpoints import checkpoint_info, load_checkpoint
    from trainlab.diffusion.ddpm import make_noise_model
    from trainlab.diffusion.schedules import make_scheduler

    info = checkpoint_info(run_dir, name)
    model = make_noise_model(**info["architecture"])
    load_checkpoint(run_dir, name, model)
    return model.eval(), make_scheduler(**info["schedule"]), info


def outputs_when_saved(monkeypatch, recipe: str, probe) -> dict[str, Any]:
    """``probe(model)`` of every model that recipe module ``recipe`` saves, by checkpoint name, taken
    from the live model as it is saved (what the run's numbers came from), to compare with a reload."""
    import importlib

    import torch

    module = importlib.import_module(f"trainlab.experiments.{recipe}")
    save, seen = module.save_checkpoint, {}

    def spy(run, name, model, **kwargs):
        with torch.no_grad():
            seen[name] = probe(model)
        return save(run, name, model, **kwargs)

    monkeypatch.setattr(module, "save_checkpoint", spy)
    return seen


def cli(args: list[str]) -> int:
    """Exit code of ``trainlab ARGS`` run in this process."""
    from trainlab.cli import main

    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


# Wall-clock numbers differ between any two runs; everything else of a resumed run must not.
_TIMING = re.compile(r"(time|seconds|_s$|_s_|per_s|speed|throughput)")


def without_timing(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` without its wall-clock numbers (keys that name a time, seconds or a speed)."""
    return {k: v for k, v in record.items() if not _TIMING.search(k)}


def stop_and_resume(name: str, tmp_path: Path, stop_after: int, monkeypatch: Any, **overrides: Any) -> Path:
    """Run ``name``'s quick profile snapshotting at every epoch boundary, stop it after its
    ``stop_after``-th snapshot as Ctrl-C would, resume it to the end; return the run folder."""
    from trainlab.execute import resume_config
    from trainlab.processes import Interrupted
    from trainlab.resume import STOP_AFTER

    monkeypatch.setenv(STOP_AFTER, str(stop_after))
    try:
        run_quick(name, tmp_path, checkpoint_every=0, **overrides)
    except Interrupted as stop:
        folder = stop.folder
    else:
        raise AssertionError(f"{name} finished before its snapshot {stop_after}; stop it earlier")
    monkeypatch.delenv(STOP_AFTER)
    assert json.loads((folder / "run.json").read_text())["status"] == "interrupted"
    exp, cfg = resume_config(folder)
    assert run_experiment(exp, cfg, resume=folder) == folder
    return folder


def comparable_results(run_dir: Path) -> dict[str, Any]:
    """A run's tables, metrics and summary without wall-clock numbers: what a resumed run must repeat."""
    keep = without_timing
    tables = {p.stem: [keep(r) for r in read_table(run_dir, p.stem)[1]] for p in sorted((run_dir / "tables").glob("*.csv"))}
    metrics_path = run_dir / "metrics.jsonl"
    metrics = [keep(json.loads(line)) for line in metrics_path.read_text().splitlines()] if metrics_path.exists() else []
    return {"tables": tables, "metrics": metrics, "summary": keep(read_summary(run_dir)),
            "status": json.loads((run_dir / "run.json").read_text())["status"]}


def spy_snapshots(monkeypatch: Any) -> list[tuple[str, bool]]:
    """``(job, finished)`` of every snapshot saved from now on, in order: what state/resume.json
    recorded before a finished run dropped its snapshots (``dict(saves)``: each job's last)."""
    from trainlab.resume import RunSnapshots

    saves: list[tuple[str, bool]] = []
    save = RunSnapshots.save

    def spying(self: Any, job: str, snapshot: Any) -> None:
        if self.writable:
            saves.append((job, snapshot.finished))
        save(self, job, snapshot)

    monkeypatch.setattr(RunSnapshots, "save", spying)
    return saves


def register_probe(tmp_path: Path, monkeypatch: Any, module: str, source: str) -> Path:
    """Make ``source`` the experiment module ``trainlab.experiments.<module>`` for one test; return its folder.
    The caller pops ``sys.modules`` entry ``trainlab.experiments.<module>`` when the test ends."""
    import textwrap

    import trainlab.experiments

    folder = tmp_path / "probe_pkg"
    folder.mkdir()
    (folder / f"{module}.py").write_text(textwrap.dedent(source))
    monkeypatch.setattr(trainlab.experiments, "__path__", [*trainlab.experiments.__path__, str(folder)])
    return folder
