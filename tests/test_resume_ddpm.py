"""The DDPM studies resume: a run stopped after its k-th snapshot and resumed ends with the tables,
metrics and summary of an uninterrupted run, bit for bit.

Each study's quick profile is shrunk further (smaller sets, fewer samples) and trains 110 steps,
so that every model has one boundary inside its training (the NaN check after step 100) besides
its finished snapshot; the toy-set studies also keep each job's scores (``<job>.scored``).
The points below stop inside a first job, at a job boundary and inside a later one (or, where
stacks train side by side on two worker threads, at points where some jobs are further along).
"""

from __future__ import annotations

import json

import pytest

from helpers import comparable_results, run_quick, spy_snapshots, stop_and_resume
from trainlab import workers
from trainlab.device import CpuPlan
from trainlab.resume import STATE_DIR, RunSnapshots
from trainlab.train.snapshots import pack, unpack

SMALL_TOY = {"n_points": 400, "heldout": 200, "n_samples": 200, "emd_k": 2, "emd_n": 50, "ratio_n": 100, "hidden": 8,
             "train_steps": 110}
SMALL_CONDITIONAL = {"train_steps": 110, "hidden": 8, "mlp_max_iter": 10}

# (experiment, overrides, stop points, the jobs its state/ ends with)
CASES = {
    # one model per job (stacked=false): saves 1-3 are model0's (step 100, trained, scored), 4-6 model1's
    "ddpm-steps": ({**SMALL_TOY, "Ts": [10, 20], "stacked": False}, [1, 3, 5],
                   ["model0", "model0.scored", "model1", "model1.scored"]),
    # two stacks (2-D moons, 3-D helix) side by side on two worker threads: 6 saves, interleaved; the
    # stop after the 4th leaves one stack finished and scored, after the 6th every job is
    "ddpm-schedules": ({**SMALL_TOY, "datasets": ["moons", "helix"], "Ts": [10], "schedules": ["linear", "cosine"],
                        "linear_Ts": [10]}, [1, 4, 6], ["stack0", "stack0.scored", "stack1", "stack1.scored"]),
    # two stacks (2-D moons, 3-D helix) side by side: 4 saves, the stop after the 1st or the 3rd
    "ddpm-cfg": ({**SMALL_CONDITIONAL, "datasets": ["moons", "helix"], "n_samples": 60}, [1, 3],
                 ["stack0", "stack1"]),
    "ddpm-classifier": ({**SMALL_CONDITIONAL, "datasets": ["moons", "helix"], "max_test": 60}, [1, 3],
                        ["stack0", "stack1"]),
}
PARAMS = [(name, k) for name, (_, stops, _) in CASES.items() for k in stops]


@pytest.fixture(autouse=True)
def two_workers(monkeypatch):
    """Stacks run side by side on two worker threads whatever this machine's load (the snapshots of
    two threads share one store; a stop raised in a worker must still end the run ``interrupted``)."""
    monkeypatch.setattr(workers, "cpu_plan", lambda *a, **k: CpuPlan(workers=2, threads=1))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """Each study's uninterrupted run (once per module), with its comparable results."""
    done: dict[str, dict] = {}

    def get(name: str) -> dict:
        if name not in done:
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(workers, "cpu_plan", lambda *a, **k: CpuPlan(workers=2, threads=1))
                folder = run_quick(name, tmp_path_factory.mktemp(name), checkpoint_every=0, **CASES[name][0])
            done[name] = comparable_results(folder)
        return done[name]

    return get


@pytest.mark.parametrize("name,stop_after", PARAMS)
def test_a_stopped_and_resumed_study_ends_as_an_uninterrupted_one(tmp_path, monkeypatch, uninterrupted,
                                                                   name, stop_after):
    overrides, _, jobs = CASES[name]
    saves = spy_snapshots(monkeypatch)
    resumed = stop_and_resume(name, tmp_path, stop_after, monkeypatch, **overrides)
    assert comparable_results(resumed) == uninterrupted(name)
    info = json.loads((resumed / "run.json").read_text())
    assert info["status"] == "done" and info["resumed"] == 1
    # every job ends finished (a second resume would train and score nothing), and then the run
    # drops its snapshots
    saved = dict(saves)
    assert sorted(saved) == jobs and all(saved.values())
    assert not (resumed / STATE_DIR).exists()


def test_a_finished_job_is_not_sampled_or_scored_again(tmp_path, monkeypatch):
    # stopped right after the first model's scores were saved: the resumed run takes its rows back
    # from the snapshot (a row changed there shows up in the table) and samples only the second model
    from trainlab.diffusion import protocol
    from trainlab.execute import resume_config, run_experiment
    from trainlab.processes import Interrupted
    from trainlab.resume import STOP_AFTER

    monkeypatch.setenv(STOP_AFTER, "3")
    with pytest.raises(Interrupted) as stop:
        run_quick("ddpm-steps", tmp_path, checkpoint_every=0, **CASES["ddpm-steps"][0])
    monkeypatch.delenv(STOP_AFTER)
    folder = stop.value.folder
    store = RunSnapshots(folder, every_s=0)
    scored = unpack(store.load("model0.scored"))
    scored["rows"][0]["nll"] = 123.0
    store.save("model0.scored", pack(finished=True, **scored))
    sampled, sample = [], protocol.sample

    def counted(model, scheduler, n, **kwargs):
        sampled.append(scheduler.T)
        return sample(model, scheduler, n, **kwargs)

    monkeypatch.setattr(protocol, "sample", counted)
    exp, cfg = resume_config(folder)
    run_experiment(exp, cfg, resume=folder)
    nll = {row["T"]: row["nll"] for row in comparable_results(folder)["tables"]["steps"]}
    assert nll["10"] == "123.0" and nll["20"] != "123.0"
    assert sampled == [20]


def test_job_names_with_dots_keep_their_own_files(tmp_path):
    store = RunSnapshots(tmp_path, every_s=0)
    store.save("stack0", pack(step=1))
    store.save("stack0.scored", pack(finished=True, step=2))
    assert sorted(p.name for p in (tmp_path / STATE_DIR).iterdir()) == [
        "resume.json", "stack0-1.json", "stack0-1.pt", "stack0.scored-2.json", "stack0.scored-2.pt"]
    again = RunSnapshots(tmp_path, every_s=0)
    assert unpack(again.load("stack0"))["step"] == 1 and unpack(again.load("stack0.scored"))["step"] == 2


def test_each_job_keeps_its_own_save_timer(tmp_path):
    # stacks training side by side each save every checkpoint_every seconds: one saving does not
    # put off the other's save (with one timer per run the faster job would take every turn)
    import time

    store = RunSnapshots(tmp_path, every_s=0.2)
    a, b = store.slot("stack0"), store.slot("stack1")
    assert not a.due() and not b.due()
    time.sleep(0.25)
    assert a.due() and b.due()
    a.save(pack(step=1))
    assert not a.due() and b.due()
