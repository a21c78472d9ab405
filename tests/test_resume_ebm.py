"""ebm-eval and ebm-sample stopped mid-run and resumed end with an uninterrupted run's tables."""

import json

import pytest

from helpers import comparable_results, run_quick, spy_snapshots, stop_and_resume
from trainlab.resume import STATE_DIR

# ebm-eval: 4 epochs of the regressor: snapshots after epochs 1-3, then the finished one (4).
EVAL = dict(epochs=4)
# ebm-sample: the regressor (2 epochs: snapshots 1, 2 finished), then 4 samplings (regressor and true
# energy x MALA and ULA) of 120 steps, each saving after step 100 and finished: 3-4, 5-6, 7-8, 9-10.
SAMPLE = dict(epochs=2, burn_in=60, n_samples=60, tsne_points=0, sw_points=200)


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """Uninterrupted runs, snapshotting as often as the stopped ones (saving must not change a number)."""
    base = tmp_path_factory.mktemp("whole")
    return {"ebm-eval": run_quick("ebm-eval", base, checkpoint_every=0, **EVAL),
            "ebm-sample": run_quick("ebm-sample", base, checkpoint_every=0, **SAMPLE)}


def _check(resumed, whole_dir):
    assert comparable_results(resumed) == comparable_results(whole_dir)
    info = json.loads((resumed / "run.json").read_text())
    assert info["status"] == "done" and info["resumed"] == 1


@pytest.mark.parametrize("stop_after", [1, 3, 4])  # inside the training, at its last epoch, when it finished
def test_ebm_eval_resumes_to_the_same_tables(tmp_path, monkeypatch, whole, stop_after):
    resumed = stop_and_resume("ebm-eval", tmp_path, stop_after, monkeypatch, **EVAL)
    _check(resumed, whole["ebm-eval"])
    assert (resumed / "checkpoints" / "regressor.pt").read_bytes() == \
        (whole["ebm-eval"] / "checkpoints" / "regressor.pt").read_bytes()


@pytest.mark.parametrize("stop_after", [1, 4, 9])  # in the regressor's training, after a sampling, inside the last
def test_ebm_sample_resumes_to_the_same_tables(tmp_path, monkeypatch, whole, stop_after):
    saves = spy_snapshots(monkeypatch)
    resumed = stop_and_resume("ebm-sample", tmp_path, stop_after, monkeypatch, **SAMPLE)
    _check(resumed, whole["ebm-sample"])
    saved = dict(saves)
    assert sorted(saved) == ["regressor", "regressor_mala", "regressor_ula", "true_mala", "true_ula"]
    assert all(saved.values()) and not (resumed / STATE_DIR).exists()
