"""Every tunable recipe reports its validation metric after each epoch through ``Run.report_epoch``.

Oracles: the run folder. What the recipe hands the watcher each epoch is what its metrics.jsonl
records for that epoch, and its summary's value is the last epoch's (the best model's, for a
recipe that trains several: those report member by member). mnist-binary and mnist-grid are
checked in their own tests and in tests/sweeps.
"""

from __future__ import annotations

import pytest
from helpers import _value, read_metrics, read_summary, read_table

from trainlab.execute import build_config, run_experiment
from trainlab.experiments.registry import get_experiment


def watched(name, tmp_path, give_up=lambda step, values: None, **overrides):
    """Run ``name`` quick on the CPU with a watcher that records every report and returns
    ``give_up(step, values)`` (the members to stop); (folder, reports)."""
    reports = []

    def reporter(step, values):
        reports.append((step, values))
        return give_up(step, values)

    exp = get_experiment(name)
    items = [f"{k}={_value(v)}" for k, v in overrides.items()] + ["device=cpu"]
    return run_experiment(exp, build_config(exp, items, quick=True), out=tmp_path, reporter=reporter), reports


def test_mnist_reconstruct_reports_val_mse_every_epoch(tmp_path):
    run_dir, reports = watched("mnist-reconstruct", tmp_path, epochs=3)
    logged = read_metrics(run_dir)
    assert [step for step, _ in reports] == [r["epoch"] for r in logged] == [1, 2, 3]
    assert [values["val_mse"] for _, values in reports] == [r["val_mse"] for r in logged]
    assert read_summary(run_dir)["val_mse"] == pytest.approx(logged[-1]["val_mse"], rel=1e-6)


def test_cifar_cnn_holds_out_a_validation_split_and_reports_it(tmp_path):
    run_dir, reports = watched("cifar-cnn", tmp_path, epochs=2, val_fraction=0.2, seeds=2)
    logged = read_metrics(run_dir)
    # Steps count over both seeds' epochs, as one run's.
    assert [step for step, _ in reports] == [1, 2, 3, 4]
    assert [values["val_acc"] for _, values in reports] == [r["val_acc"] for r in logged]
    lasts = [r["val_acc"] for r in logged if r["epoch"] == 2]
    assert read_summary(run_dir)["val_acc"] == pytest.approx(sum(lasts) / 2)
    assert "held out for validation" in (run_dir / "report.md").read_text()


def test_cifar_cnn_without_a_split_reports_nothing(tmp_path):
    run_dir, reports = watched("cifar-cnn", tmp_path, epochs=1)
    assert reports == [] and "val_acc" not in read_summary(run_dir)


def test_scratch_mlp_reports_each_activation_as_a_member(tmp_path):
    run_dir, reports = watched("scratch-mlp", tmp_path, epochs=3, activations=["relu", "tanh"], sklearn="false",
                               tsne_points=0)
    logged = read_metrics(run_dir)
    for activation in ("relu", "tanh"):
        mine = [(step, v["members"][activation]["val_acc"]) for step, v in reports if activation in v["members"]]
        assert mine == [(r["epoch"], r["val_acc"]) for r in logged if r["activation"] == activation]
    last = {r["activation"]: r["val_acc"] for r in logged if r["epoch"] == 3}
    assert read_summary(run_dir)["val_acc"] == pytest.approx(max(last.values()))


@pytest.mark.parametrize("name, overrides", [
    ("autoencoder", {"archs": ["mlp"], "latents": [2, 8], "seeds": 1}),
    ("autoencoder-mean-latent", {"arch": "mlp", "latents": [2, 8]}),
])
def test_autoencoders_report_each_model_as_a_member(tmp_path, name, overrides):
    run_dir, reports = watched(name, tmp_path, epochs=3, val_fraction=0.2, **overrides)
    logged = read_metrics(run_dir)
    members = {member for _, values in reports for member in values["members"]}
    assert members == {f"mlp-latent{latent}-seed0" for latent in (2, 8)}
    for latent in (2, 8):
        mine = [(step, v["members"][f"mlp-latent{latent}-seed0"]["val_l1"]) for step, v in reports
                if f"mlp-latent{latent}-seed0" in v["members"]]
        assert mine == [(r["epoch"], r["val_l1"]) for r in logged if r["latent"] == latent]
    last = [r["val_l1"] for r in logged if r["epoch"] == 3]
    assert read_summary(run_dir)["val_l1"] == pytest.approx(min(last))


def test_autoencoder_without_a_split_trains_on_every_training_image(tmp_path):
    run_dir, reports = watched("autoencoder", tmp_path, epochs=1, archs=["mlp"], latents=[2], seeds=1)
    assert reports == [] and "val_l1" not in read_summary(run_dir)


def after_epoch_2(member):
    return lambda step, values: {member} if step == 2 and member in values.get("members", {}) else None


def test_a_member_given_up_on_stops_and_the_others_finish(tmp_path):
    run_dir, _ = watched("autoencoder", tmp_path / "ae", give_up=after_epoch_2("mlp-latent2-seed0"), epochs=3,
                         val_fraction=0.2, archs=["mlp"], latents=[2, 8], seeds=1)
    runs = {int(r["latent"]): r["status"] for r in read_table(run_dir, "runs")[1]}
    assert runs == {2: "pruned", 8: "done"}
    assert [r["epoch"] for r in read_metrics(run_dir) if r["latent"] == 2] == [1, 2]
    run_dir, _ = watched("scratch-mlp", tmp_path / "scratch", give_up=after_epoch_2("tanh"), epochs=3,
                         activations=["relu", "tanh"], sklearn="false", tsne_points=0)
    rows = {r["activation"]: r for r in read_table(run_dir, "activations")[1]}
    assert (rows["relu"]["scratch_status"], rows["tanh"]["scratch_status"]) == ("done", "pruned")
    assert rows["tanh"]["scratch_test_acc"] == ""  # a pruned network has no final accuracy
    assert [r["epoch"] for r in read_metrics(run_dir) if r["activation"] == "tanh"] == [1, 2]
