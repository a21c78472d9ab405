"""The CIFAR recipes stopped mid-run and resumed (``--resume``) end as an uninterrupted run:
same tables, metrics, summary and trained networks (everything but wall-clock times)."""

import json

import pytest
import torch

from helpers import comparable_results, run_quick, spy_snapshots, stop_and_resume

from trainlab.checkpoints import list_checkpoints, read_checkpoint

# cifar-cnn: two seeds of 3 epochs, a snapshot at every epoch boundary: seed 0 saves 1, 2 and
# 3 (finished), seed 1 saves 4, 5 and 6 (finished).
CNN = {"seeds": 2, "epochs": 3}
# cifar-scaling: 1 image per class (filled to one batch: an epoch is one step) with two seeds
# of 4 steps: per_class1_seed0 saves 1, 2, 3 and 4 (finished), per_class1_seed1 5..8.
SCALING = {"per_class": [1], "seeds": 2, "full": False, "min_steps": 4, "epochs": 1}


def same_networks(a, b) -> None:
    """Both run folders hold the same checkpoints with equal weights."""
    assert list_checkpoints(a) == list_checkpoints(b) and list_checkpoints(a)
    for name in list_checkpoints(a):
        (wa, _), (wb, _) = read_checkpoint(a, name), read_checkpoint(b, name)
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa), name


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """Uninterrupted quick runs, one per recipe (snapshots at every boundary, as the stopped ones)."""
    root = tmp_path_factory.mktemp("whole")
    return {"cifar-cnn": run_quick("cifar-cnn", root, checkpoint_every=0, **CNN),
            "cifar-scaling": run_quick("cifar-scaling", root, checkpoint_every=0, **SCALING)}


@pytest.mark.parametrize("stop_after", [1, 3, 5])  # inside seed 0, at its end, inside seed 1
def test_cifar_cnn_stopped_and_resumed_ends_as_an_uninterrupted_run(tmp_path, monkeypatch, whole, stop_after):
    saves = spy_snapshots(monkeypatch)
    resumed = stop_and_resume("cifar-cnn", tmp_path, stop_after, monkeypatch, **CNN)
    assert comparable_results(resumed) == comparable_results(whole["cifar-cnn"])
    assert [r["epoch"] for r in map(json.loads, (resumed / "metrics.jsonl").read_text().splitlines())] == [1, 2, 3] * 2
    same_networks(resumed, whole["cifar-cnn"])
    assert len(saves) == 6
    assert json.loads((resumed / "run.json").read_text())["resumed"] == 1


@pytest.mark.parametrize("stop_after", [2, 4, 6])  # inside the first training, at its end, inside the second
def test_cifar_scaling_stopped_and_resumed_ends_as_an_uninterrupted_run(tmp_path, monkeypatch, whole, stop_after):
    saves = spy_snapshots(monkeypatch)
    resumed = stop_and_resume("cifar-scaling", tmp_path, stop_after, monkeypatch, **SCALING)
    assert comparable_results(resumed) == comparable_results(whole["cifar-scaling"])
    same_networks(resumed, whole["cifar-scaling"])
    assert len(saves) == 8


def test_cifar_scaling_side_by_side_trainings_resume(tmp_path, monkeypatch, whole):
    # Two worker threads: the stop comes in whichever training saves third, the other one
    # stops at its next save; both continue from their own snapshots.
    from trainlab import workers as pool
    from trainlab.device import CpuPlan

    monkeypatch.setattr(pool, "cpu_plan", lambda *a, **k: CpuPlan(workers=2, threads=1))
    resumed = stop_and_resume("cifar-scaling", tmp_path, 3, monkeypatch, **SCALING)
    assert comparable_results(resumed) == comparable_results(whole["cifar-scaling"])
    same_networks(resumed, whole["cifar-scaling"])


@pytest.mark.parametrize("stop_after", [2, 6])  # inside the first tuned network's training, inside the second's
def test_a_tuned_cifar_scaling_stopped_and_resumed_ends_as_an_uninterrupted_run(tmp_path, monkeypatch, stop_after):
    # The tuned jobs (costlier) train first; their trials keep no snapshot, only each study's
    # trials in tunes/<network>/study.db, which the resumed run reads back instead of tuning again.
    tuned = {**SCALING, "tune_trials": 2}
    whole = run_quick("cifar-scaling", tmp_path / "whole", checkpoint_every=0, **tuned)
    resumed = stop_and_resume("cifar-scaling", tmp_path / "stopped", stop_after, monkeypatch, **tuned)
    assert comparable_results(resumed) == comparable_results(whole)
    same_networks(resumed, whole)


# cifar-features' quick run extracting AlexNet's features one batch of 128 at a time (a snapshot
# after each: 3 batches of the 300 training images, 4 of the 450 test images, saves 1-7, then 8
# finished); then each of the four feature sets trains its MLP head for 3 epochs (saves 2, 3
# finished) and keeps its two heads' results (1, finished): alexnet_1000 saves 9-12,
# alexnet_4096 13-16, pixels 17-20, pixels_pca10 21-24.
FEATURES = {"head_epochs": 3}


@pytest.fixture(scope="module")
def whole_features(tmp_path_factory):
    """cifar-features uninterrupted, extracting in its own chunks (one here): the chunks of a
    stopped run must not change a feature."""
    return run_quick("cifar-features", tmp_path_factory.mktemp("whole"), checkpoint_every=0, **FEATURES)


@pytest.mark.parametrize("stop_after", [2, 8, 22])  # inside the extraction, at its end, inside a later head
def test_cifar_features_stopped_and_resumed_ends_as_an_uninterrupted_run(tmp_path, monkeypatch, whole_features,
                                                                          stop_after):
    from trainlab.experiments import cifar_features

    monkeypatch.setattr(cifar_features, "EXTRACT_CHUNK", 1)
    saves = spy_snapshots(monkeypatch)
    resumed = stop_and_resume("cifar-features", tmp_path, stop_after, monkeypatch, **FEATURES)
    assert comparable_results(resumed) == comparable_results(whole_features)
    assert len(saves) == 24  # the saves counted above, the stopped run's and the rest
