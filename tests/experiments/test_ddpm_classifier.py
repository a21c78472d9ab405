"""Smoke test: ddpm-classifier in quick mode writes the study's columns with sane values."""

import math

import numpy as np
from helpers import assert_same_table, load_noise_model, read_summary, read_table, run_quick

from trainlab.checkpoints import list_checkpoints
from trainlab.diffusion.classifier import DiffusionClassifier
from trainlab.execute import build_config
from trainlab.experiments._toy_ddpm import labelled_point_sets
from trainlab.experiments.registry import get_experiment


def test_quick_run_writes_the_classifier_table(tmp_path):
    run_dir = run_quick("ddpm-classifier", tmp_path)
    columns, rows = read_table(run_dir, "classifier")
    for col in ("dataset", "score", "n_t", "accuracy", "mlp_accuracy", "seconds_per_prediction"):
        assert col in columns
    assert {r["score"] for r in rows} == {"error", "study", "study-min"}
    assert {int(r["n_t"]) for r in rows} == {1, 5}
    for r in rows:
        assert r["dataset"] == "moons" and r["status"] == "done"
        assert 0 <= float(r["accuracy"]) <= 100 and 0 <= float(r["mlp_accuracy"]) <= 100
        assert float(r["seconds_per_prediction"]) > 0
    # even a briefly trained model separates the moons clearly with the error score
    best = max(float(r["accuracy"]) for r in rows if r["score"] == "error")
    assert best > 70
    # on two classes, the study score and its minimum version are complementary
    for n_t in ("1", "5"):
        acc = {r["score"]: float(r["accuracy"]) for r in rows if r["n_t"] == n_t}
        assert math.isclose(acc["study"] + acc["study-min"], 100, abs_tol=1e-6)
    assert (run_dir / "figures" / "accuracy_vs_nt.png").is_file()
    assert read_summary(run_dir)

    # the checkpoint is the model the table came from: it classifies the held-out points as the run did
    from sklearn.model_selection import train_test_split

    assert list_checkpoints(run_dir) == ["moons"]
    cfg = build_config(get_experiment("ddpm-classifier"), ["device=cpu"], quick=True)
    (name, X, y), = labelled_point_sets(cfg)
    _, X_te, _, y_te = train_test_split(X, y, test_size=cfg.test_fraction, stratify=y, random_state=cfg.seed)
    keep = np.random.default_rng(cfg.seed).permutation(len(X_te))[: cfg.max_test]
    model, scheduler, info = load_noise_model(run_dir, name)
    assert info["architecture"]["n_classes"] == 2 and scheduler.T == cfg.T
    for r in rows:
        clf = DiffusionClassifier(model, scheduler, 2, n_t=int(r["n_t"]), score=r["score"].removesuffix("-adaptive"),
                                  adaptive=r["score"].endswith("-adaptive"), seed=cfg.seed)
        assert 100 * float((clf.predict(X_te[keep]) == y_te[keep]).mean()) == float(r["accuracy"])


def test_stacked_and_one_at_a_time_give_the_same_table(tmp_path):
    kwargs = dict(datasets=["moons", "blobs"], n_ts=[2], train_steps=60, max_test=100)
    _, stacked = read_table(run_quick("ddpm-classifier", tmp_path, **kwargs), "classifier")
    _, alone = read_table(run_quick("ddpm-classifier", tmp_path, stacked=False, **kwargs), "classifier")
    assert {r["dataset"] for r in stacked} == {"moons", "blobs"}
    assert_same_table(stacked, alone, skip=("seconds_per_prediction",))
