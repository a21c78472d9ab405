"""A sweep stopped inside a trial resumes that trial from its last snapshot, in its own folder."""

import csv
import json

import pytest

from helpers import comparable_results, without_timing
from trainlab.files import read_jsonl
from trainlab.processes import Interrupted
from trainlab.resume import STOP_AFTER
from trainlab.sweeps import run_sweep

# Two ebm-eval trials, snapshotting at every epoch: trial 0 trains 2 epochs (2 snapshots, the
# second its finished one), trial 1 trains 4 (4 snapshots).
ITEMS = ["epochs=2,4", "device=cpu", "checkpoint_every=0"]


def _table(sweep_dir):
    """trials.csv without wall-clock numbers and folder names (they carry their start time)."""
    with open(sweep_dir / "tables" / "trials.csv", newline="") as fh:
        return [{k: v for k, v in without_timing(row).items() if k != "folder"} for row in csv.DictReader(fh)]


def _info(folder):
    return json.loads((folder / "run.json").read_text())


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    return run_sweep("ebm-eval", ITEMS, quick=True, out=tmp_path_factory.mktemp("whole"))


@pytest.mark.parametrize("stop_after,stopped", [(1, 0), (3, 1)])  # inside trial 0; inside trial 1, trial 0 done
def test_a_resumed_sweep_continues_its_interrupted_trial_in_that_trials_folder(tmp_path, monkeypatch, whole,
                                                                                stop_after, stopped):
    monkeypatch.setenv(STOP_AFTER, str(stop_after))  # every run counts its own snapshots
    with pytest.raises(Interrupted):
        run_sweep("ebm-eval", ITEMS, quick=True, out=tmp_path)
    monkeypatch.delenv(STOP_AFTER)
    (sweep_dir,) = (tmp_path / "ebm-eval-sweep").iterdir()
    trials_dir = sweep_dir / "trials" / "ebm-eval"
    (interrupted,) = [p for p in trials_dir.iterdir() if _info(p)["status"] == "interrupted"]
    assert [r["index"] for r in read_jsonl(sweep_dir / "trials.jsonl")] == list(range(stopped))

    run_sweep("ebm-eval", [], resume=sweep_dir)
    assert _table(sweep_dir) == _table(whole)
    assert [r["status"] for r in _table(sweep_dir)] == ["done", "done"]
    assert len(list(trials_dir.iterdir())) == 2  # no second folder for the interrupted trial
    record = next(r for r in read_jsonl(sweep_dir / "trials.jsonl") if r["index"] == stopped)
    assert sweep_dir / record["path"] == interrupted  # the trial ended in the folder it was stopped in
    assert _info(interrupted)["status"] == "done" and _info(interrupted)["resumed"] == 1
    same_trial = whole / next(r["path"] for r in read_jsonl(whole / "trials.jsonl") if r["index"] == stopped)
    assert comparable_results(interrupted) == comparable_results(same_trial)


def test_a_trial_stopped_before_its_first_snapshot_starts_again_in_a_new_folder(tmp_path, monkeypatch):
    from trainlab.sweeps.trials import stopped_folder

    monkeypatch.setenv(STOP_AFTER, "1")
    with pytest.raises(Interrupted):
        run_sweep("ebm-eval", ITEMS, quick=True, out=tmp_path)
    (sweep_dir,) = (tmp_path / "ebm-eval-sweep").iterdir()
    (folder,) = (sweep_dir / "trials" / "ebm-eval").iterdir()
    key = folder.name.rpartition("-")[2]
    trials_dir = sweep_dir / "trials"
    assert stopped_folder(trials_dir, "ebm-eval", key) == folder
    (folder / "state" / "resume.json").unlink()  # as if stopped before its first snapshot
    assert stopped_folder(trials_dir, "ebm-eval", key) is None
    assert stopped_folder(trials_dir, "ebm-eval", "0" * len(key)) is None  # a trial that never ran
