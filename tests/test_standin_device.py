"""Device discipline without a GPU: every experiment's quick profile on the stand-in accelerator.

Each experiment runs twice, on the CPU and on the stand-in device of ``tests/standin.py`` (tensors
that a GPU would hold, their values on the CPU), and the test fails on anything a first GPU
run would hit: a device tensor meeting a CPU tensor, ``.numpy()`` of a device tensor, a
generator on the wrong device, a float64 tensor on the device (MPS has none), more
host-device synchronisations per training step than the experiment's budget, or numbers
that differ from the CPU run's. Every problem is reported with its operation and the
trainlab source line.

``KNOWN`` lists what the GPU review found and the device fixes remove (float64 on the device,
per-step copies and reads); those experiments are ``xfail(strict=True)`` on exactly those
findings: any other problem fails them as usual, and once the findings are gone the strict
mark fails until their entry is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from helpers import comparable_results, run_quick
from standin import Record, standin_device, start_cpu_runs, wait_for_cpu_run
from trainlab.experiments.registry import all_experiments

NAMES = sorted(all_experiments())

SHORTER = {
    "autoencoder": {"epochs": 4},
    "autoencoder-mean-latent": {"epochs": 5},
    "cifar-features": {"head_epochs": 4},
    "cifar-scaling": {"epochs": 3, "min_steps": 30},
    "ebm-sample": {"epochs": 4, "burn_in": 40, "n_samples": 40},
}
"""Fewer epochs (the same code paths) for the five slowest quick profiles: the stand-in runs every
operation through Python, about 2.5 times the CPU's time, and all 22 experiments share a minute."""

SYNCS_PER_STEP = 1.0
"""Host-device synchronisations (reads and copies) per optimizer step over a whole quick run:
the loops read their losses once per epoch, so a run above one per step synchronises inside
its steps. Quick runs are short, so loading data, evaluating and saving weigh more than in a
full run; experiments whose fixed part outweighs their few steps have their own budget."""

BUDGETS = {
    # Short runs of many small models: evaluating and snapshotting each model every epoch, and
    # saving it, weigh as much as its few steps (measured: 1.0 to 2.3 per step).
    "autoencoder": 1.5,
    "autoencoder-mean-latent": 1.5,
    "cifar-features": 3.0,
    "cifar-scaling": 3.0,
    "ddpm-steps": 2.0,
    "ddpm-schedules": 12.0,
    "ebm-sample": 1.5,
    # Hundreds of models with one step per epoch, each model's metrics read once: all fixed costs.
    "mnist-imbalance": 30.0,
    # No training step at all: the budget is on the whole run (its inputs and results).
    "torch-ops": 40.0,
}
"""Syncs per step for experiments whose quick run is mostly fixed costs (see SYNCS_PER_STEP)."""

SAVING = ("trainlab/train/snapshots.py", "trainlab/checkpoints.py")
"""Writing state to disk copies every tensor to the host, once per save: a quick run saves each
model's finished snapshot and checkpoint within a few steps, so these copies are left out of the
per-step budget (a full run saves every ``checkpoint_every`` seconds)."""


@dataclass(frozen=True)
class Finding:
    """A finding of the GPU review that the device fixes remove: what it is, and where it shows."""

    what: str
    float64_in: tuple[str, ...] = ()
    """Source files (under src/) whose float64 device tensors it explains."""
    syncs_in: tuple[str, ...] = ()
    """Source files whose synchronisations it explains (left out of the budget when it applies)."""


WHITENING = Finding("float64 whitening init on the device (nn/cnn.py)", float64_in=("trainlab/nn/cnn.py",))
CNN_COUNT = Finding("per-step torch.tensor(len(yb), device=device) in train/cnn.py", syncs_in=("trainlab/train/cnn.py",))
STACK_ADAM = Finding("Adam step counters on the device read by .item() every step (non-fused Adam of the stacks)",
                     syncs_in=("trainlab/train/stack/own_batches.py", "trainlab/train/stack/shared_batches.py"))
DDPM_COPIES = Finding("DDPM noise drawn on the CPU and copied per model and step; schedule tables copied every step",
                      syncs_in=("trainlab/diffusion/stacked.py", "trainlab/diffusion/ddpm.py",
                                "trainlab/diffusion/schedules.py"))
TARGETS = Finding("float64 Gaussian target on the device (mcmc/targets.py)", float64_in=("trainlab/mcmc/targets.py",))

KNOWN: dict[str, tuple[Finding, ...]] = {}


class KnownFindings(AssertionError):
    """Only findings listed in ``KNOWN`` (the strict xfail's expected failure)."""


def _marks(name: str) -> list:
    if name not in KNOWN:
        return []
    reason = "; ".join(f.what for f in KNOWN[name])
    return [pytest.mark.xfail(strict=True, raises=KnownFindings, reason=reason)]


@pytest.fixture(scope="module")
def cpu_runs(tmp_path_factory):
    """The CPU runs, made by another process while this one runs the stand-in (both cores busy):
    ``cpu_runs(name)`` waits for ``name``'s comparable results."""
    folder = tmp_path_factory.mktemp("cpu-runs")
    process = start_cpu_runs(folder, {name: SHORTER.get(name, {}) for name in NAMES})
    yield lambda name: wait_for_cpu_run(folder, name, process)
    process.kill()
    process.wait()


@pytest.mark.slow
@pytest.mark.parametrize("name", [pytest.param(n, marks=_marks(n)) for n in NAMES])
def test_quick_profile_on_the_standin_device(name, tmp_path, cpu_runs):
    with pytest.MonkeyPatch.context() as patch, standin_device(patch) as record:
        device = comparable_results(run_quick(name, tmp_path, **SHORTER.get(name, {})))

    known, unknown = problems(name, record)
    cpu = cpu_runs(name)
    if device != cpu:
        unknown.append(f"numbers differ from the CPU run's: {_first_difference(cpu, device)}")
    report = f"{name} on the stand-in device:\n" + "\n".join(unknown + [f"{p} [known]" for p in known])
    if unknown:
        raise AssertionError(report + "\n" + record.describe())
    if known:
        raise KnownFindings(report)


def problems(name: str, record: Record) -> tuple[list[str], list[str]]:
    """(known, unknown) problems of a stand-in run of ``name``, one line each."""
    findings = KNOWN.get(name, ())
    known, unknown = [], []
    for violation, count in sorted(record.violations.items(), key=lambda kv: str(kv[0])):
        explained = violation.kind == "float64" and any(
            violation.where.startswith(path) for f in findings for path in f.float64_in)
        (known if explained else unknown).append(f"{violation} (x{count})")
    budget = BUDGETS.get(name, SYNCS_PER_STEP)
    steps = max(record.steps, 1)
    counted = sum(n for counter in (record.reads, record.copies) for (_, where), n in counter.items()
                  if not where.startswith(SAVING))
    if counted > budget * steps:
        excused = {path for f in findings for path in f.syncs_in} | set(SAVING)
        rest = sum(n for counter in (record.reads, record.copies) for (_, where), n in counter.items()
                   if not any(where.startswith(path) for path in excused))
        line = (f"{counted} host-device synchronisations (saving left out) in {record.steps} steps: more than "
                f"{budget:g} per step")
        (known if excused and rest <= budget * steps else unknown).append(line)
    return known, unknown


def _first_difference(a, b, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in a.keys() | b.keys():
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{path}/{key}")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return _first_difference(x, y, f"{path}[{i}]")
    return f"{path}: CPU {a!r}, stand-in {b!r}"
