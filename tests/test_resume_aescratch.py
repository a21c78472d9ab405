"""Resuming the autoencoder and NumPy-network studies: their trainers stopped after k snapshots and
continued with fresh objects end with the weights of an uninterrupted training, and each recipe
stopped mid-run and resumed ends with an uninterrupted run's tables, metrics and summary."""

import threading

import numpy as np
import pytest
import torch

from helpers import comparable_results, read_table, run_quick, stop_and_resume
from trainlab import workers
from trainlab.data import load_images, to_tensor
from trainlab.device import CpuPlan, global_seed
from trainlab.resume import STOP_AFTER, RunSnapshots
from trainlab.scratch.network import NeuralNetwork
from trainlab.train.autoencoder import AutoencoderSpec, train_autoencoders
from trainlab.train.snapshots import ClockedSlot, pack, restore_rng, rng_states, unpack


def side_by_side(monkeypatch, n_workers: int = 2) -> None:
    """Make workers.run_independent run its tasks on ``n_workers`` threads (quick profiles are too small to)."""
    monkeypatch.setattr(workers, "cpu_plan", lambda *a, **k: CpuPlan(workers=n_workers, threads=1))


def stopped(monkeypatch, stop_after: int, train) -> None:
    """Run ``train()`` until the run folder's store has saved ``stop_after`` snapshots (as a kill would stop it)."""
    monkeypatch.setenv(STOP_AFTER, str(stop_after))
    with pytest.raises(KeyboardInterrupt):
        train()
    monkeypatch.delenv(STOP_AFTER)


# -- library: the trainers -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits():
    data = load_images("digits")
    return to_tensor(data.train_images[:400], "cpu").numpy(), data.train_labels[:400]


@pytest.mark.parametrize("stop_after", [1, 4, 5])  # after epoch 1, at the last epoch boundary, finished
def test_a_numpy_fit_stopped_and_continued_ends_with_the_uninterrupted_weights(tmp_path, monkeypatch, digits,
                                                                               stop_after):
    X, y = digits

    def net():
        return NeuralNetwork([64, 16, 10], "tanh", learning_rate=0.1, batch_size=32, num_epochs=5, seed=3)

    whole = net().fit(X, y, X[:50], y[:50])
    stopped(monkeypatch, stop_after, lambda: net().fit(X, y, X[:50], y[:50],
                                                       snapshot=RunSnapshots(tmp_path, 0).slot("fit")))
    resumed = net().fit(X, y, X[:50], y[:50], snapshot=RunSnapshots(tmp_path, 0).slot("fit"))
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert np.array_equal(a, b)
    assert resumed.result.history == whole.result.history and resumed.result.status == "done"
    assert 0 < resumed.result.seconds  # the seconds of both processes, not only the continued epochs'


def test_a_diverged_numpy_fit_comes_back_from_its_finished_snapshot_diverged(tmp_path, digits):
    X, y = digits
    first = NeuralNetwork([64, 16, 10], "identity", learning_rate=1e30, num_epochs=4)
    first.fit(X, y, snapshot=RunSnapshots(tmp_path, 0).slot("fit"))
    assert first.diverged and len(first.result.history) < 4
    again = NeuralNetwork([64, 16, 10], "identity", learning_rate=1e30, num_epochs=4)
    again.fit(X, y, snapshot=RunSnapshots(tmp_path, 0).slot("fit"))  # NaN weights load: the snapshot is the job's end
    assert again.diverged and repr(again.result.history) == repr(first.result.history)  # NaN loss: repr compares
    assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(first.weights, again.weights))


@pytest.mark.parametrize("n_workers", [1, 2])
def test_autoencoders_stopped_and_continued_end_with_the_uninterrupted_weights(tmp_path, monkeypatch, digits,
                                                                                n_workers):
    x = torch.from_numpy(digits[0])
    specs = [AutoencoderSpec("mlp", 2, 0), AutoencoderSpec("conv", 4, 1)]
    side_by_side(monkeypatch, n_workers)

    def train(store=None):
        slots = None if store is None else [store.slot(f"m{i}") for i in range(len(specs))]
        return train_autoencoders(specs, x, (8, 8), latent_activation="relu", output_activation="relu", lr=1e-3,
                                  epochs=3, batch_size=64, snapshots=slots)

    whole = train()
    # 2 models x (2 epoch boundaries + finished): stopped after the 3rd save, one model is finished or
    # both are half-way, whichever thread saved first
    stopped(monkeypatch, 3, lambda: train(RunSnapshots(tmp_path, 0)))
    resumed = train(RunSnapshots(tmp_path, 0))
    for a, b in zip(whole, resumed, strict=True):
        assert a.result.history == b.result.history
        for p, q in zip(a.model.state_dict().values(), b.model.state_dict().values(), strict=True):
            assert torch.equal(p, q)
        assert b.cpu_seconds > 0


def test_clocked_slot_carries_the_seconds_of_the_process_it_was_saved_in(tmp_path):
    ticks = iter([10.0, 13.0, 100.0, 101.5])  # made at 10, saved at 13; the next process: made at 100, asked at 101.5
    first = ClockedSlot(RunSnapshots(tmp_path, 0).slot("job"), lambda: next(ticks))
    first.save(pack(step=1))
    again = ClockedSlot(RunSnapshots(tmp_path, 0).slot("job"), lambda: next(ticks))
    assert unpack(again.load())["step"] == 1
    assert again.seconds() == 3.0 + 1.5
    alone = ClockedSlot(None, iter([0.0, 2.0]).__next__)  # no slot: a plain stopwatch that saves nothing
    alone.save(pack(step=1))
    assert alone.load() is None and not alone.due() and alone.seconds() == 2.0


def test_a_job_resuming_in_a_thread_never_changes_another_threads_seeded_initialisation():
    # restore_rng sets torch's global generator; global_seed draws a model's initial weights from it.
    # Without one lock for both, a restore landing mid-initialisation changes the weights.
    with global_seed(0):
        expected = torch.nn.Linear(64, 64).weight.detach().clone()
    saved = unpack(pack(rng=rng_states()))["rng"]
    stop = threading.Event()

    def keep_restoring():
        while not stop.is_set():
            restore_rng(saved)

    restorer = threading.Thread(target=keep_restoring)
    restorer.start()
    try:
        for _ in range(300):
            with global_seed(0):
                assert torch.equal(torch.nn.Linear(64, 64).weight, expected)
    finally:
        stop.set()
        restorer.join()


# -- recipes: stopped and resumed against an uninterrupted run ---------------------------------

# Shrunk quick profiles (a few seconds each); each job saves at every epoch boundary and once finished.
AUTOENCODER = {"archs": ["mlp", "conv"], "latents": [2], "seeds": 1, "epochs": 3, "train_limit": 300}
MEAN_LATENT = {"latents": [2, 4], "epochs": 3, "train_limit": 300}
SCRATCH_MLP = {"activations": ["relu", "tanh"], "epochs": 3, "tsne_points": 0}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """name -> the comparable results of an uninterrupted run with those overrides (run once each)."""
    cache = {}

    def get(name, **overrides):
        key = (name, repr(sorted(overrides.items())))
        if key not in cache:
            cache[key] = comparable_results(run_quick(name, tmp_path_factory.mktemp("whole"), checkpoint_every=0,
                                                      **overrides))
        return cache[key]

    return get


# Saves, one after another: mlp 1, 2, finished (3); conv 4, 5, finished (6).
@pytest.mark.parametrize("stop_after", [1, 3, 5])
def test_autoencoder_resumed_ends_as_uninterrupted(tmp_path, monkeypatch, uninterrupted, stop_after):
    resumed = stop_and_resume("autoencoder", tmp_path, stop_after, monkeypatch, **AUTOENCODER)
    assert comparable_results(resumed) == uninterrupted("autoencoder", **AUTOENCODER)
    _, runs = read_table(resumed, "runs")
    assert all(float(r["train_cpu_s"]) > 0 for r in runs)  # a model finished before the stop keeps its seconds


def test_autoencoder_resumed_side_by_side_ends_as_uninterrupted(tmp_path, monkeypatch, uninterrupted):
    side_by_side(monkeypatch)  # both models train at once; the stop lands in whichever saved 4th
    resumed = stop_and_resume("autoencoder", tmp_path, 4, monkeypatch, **AUTOENCODER)
    assert comparable_results(resumed) == uninterrupted("autoencoder", **AUTOENCODER)


# Saves: λ=2 1, 2, finished (3); λ=4 4, 5, finished (6).
@pytest.mark.parametrize("stop_after", [2, 3, 4])
def test_autoencoder_mean_latent_resumed_ends_as_uninterrupted(tmp_path, monkeypatch, uninterrupted, stop_after):
    resumed = stop_and_resume("autoencoder-mean-latent", tmp_path, stop_after, monkeypatch, **MEAN_LATENT)
    assert comparable_results(resumed) == uninterrupted("autoencoder-mean-latent", **MEAN_LATENT)


# Saves: scratch relu 1, 2, finished (3); scikit-learn relu finished (4); scratch tanh 5, 6, 7; sklearn tanh 8.
@pytest.mark.parametrize("stop_after", [2, 4, 6])
def test_scratch_mlp_resumed_ends_as_uninterrupted(tmp_path, monkeypatch, uninterrupted, stop_after):
    resumed = stop_and_resume("scratch-mlp", tmp_path, stop_after, monkeypatch, **SCRATCH_MLP)
    assert comparable_results(resumed) == uninterrupted("scratch-mlp", **SCRATCH_MLP)
    _, rows = read_table(resumed, "activations")
    assert all(float(r["scratch_fit_s"]) > 0 and float(r["sklearn_fit_s"]) > 0 for r in rows)


def test_scratch_mlp_resumed_side_by_side_ends_as_uninterrupted(tmp_path, monkeypatch, uninterrupted):
    side_by_side(monkeypatch)
    resumed = stop_and_resume("scratch-mlp", tmp_path, 3, monkeypatch, **SCRATCH_MLP)
    assert comparable_results(resumed) == uninterrupted("scratch-mlp", **SCRATCH_MLP)


# The quick grid: 4 networks x 4 epochs, saves 1-4 for the first, 5-8 the second, ...
@pytest.mark.parametrize("stop_after", [2, 4, 11])
def test_scratch_sweep_resumed_ends_as_uninterrupted(tmp_path, monkeypatch, uninterrupted, stop_after):
    resumed = stop_and_resume("scratch-sweep", tmp_path, stop_after, monkeypatch)
    assert comparable_results(resumed) == uninterrupted("scratch-sweep")
