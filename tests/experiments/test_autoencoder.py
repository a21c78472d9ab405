import pytest
import torch
import torch.nn.functional as F
from helpers import read_summary, read_table, run_quick

from trainlab.checkpoints import checkpoint_info, list_checkpoints, load_checkpoint
from trainlab.data import load_images, to_tensor
from trainlab.errors import ConfigError
from trainlab.nn.autoencoder import build_autoencoder

TEST_COLUMNS = ["arch", "latent", "train_l1", "test_l1", "test_mse", "dead_units", "train_time_s"]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    return run_quick("autoencoder", tmp_path_factory.mktemp("ae"))


def test_quick_run_has_the_studys_tables_and_figures(quick_run):
    columns, rows = read_table(quick_run, "loss")
    assert columns == ["arch", "latent", "seed", "epoch", "train_l1"]
    models = {(r["arch"], r["latent"], r["seed"]) for r in rows}
    assert models == {(a, l, s) for a in ("mlp", "conv") for l in ("2", "32") for s in ("0", "1")}
    columns, summary = read_table(quick_run, "test")
    beyond_the_study = ("n", "dead_pixels", "dead_pixel_l1", "code_knn_acc", "edges_kept", "train_cpu_s")
    assert [c for c in columns if not c.endswith("_std") and c not in beyond_the_study] == TEST_COLUMNS
    assert "test_l1_std" in columns and all(r["n"] == "2" for r in summary)
    constant = read_summary(quick_run)["constant_test_l1"]
    for r in summary:
        assert 0 <= float(r["dead_units"]) <= int(r["latent"])
        assert float(r["train_time_s"]) > 0 and 0 < float(r["test_mse"]) < float(r["test_l1"])
        if r["latent"] == "32":  # 32 units reconstruct clearly better than the best constant image
            assert float(r["test_l1"]) < 0.8 * constant
    _, runs = read_table(quick_run, "runs")
    for r in runs:  # every model learned something: its last epoch beats its first
        curve = [float(x["train_l1"]) for x in rows if (x["arch"], x["latent"], x["seed"]) ==
                 (r["arch"], r["latent"], r["seed"])]
        assert r["status"] == "done" and curve[-1] < curve[0]
    _, per_class = read_table(quick_run, "per_class")
    assert len(per_class) == 4 * 10
    for name in ("loss", "study_mlp", "study_conv", "codes", "plane_mlp", "plane_conv", "interpolation", "per_class"):
        assert (quick_run / "figures" / f"{name}.png").is_file(), name
    note = (quick_run / "text" / "comparison.md").read_text()
    mlp2 = next(r for r in summary if (r["arch"], r["latent"]) == ("mlp", "2"))
    assert f"test L1 {float(mlp2['test_l1']):.4f} at λ = 2" in note


def test_checkpoints_reload_to_the_reported_test_error(quick_run):
    assert len(list_checkpoints(quick_run)) == 8
    info = checkpoint_info(quick_run, "conv-latent32-seed1")
    model = build_autoencoder(**info["architecture"])
    load_checkpoint(quick_run, "conv-latent32-seed1", model, architecture={"kind": "conv", "latent": 32})
    data = load_images("digits")
    x = to_tensor(data.test_images, "cpu")
    with torch.no_grad():
        l1 = F.l1_loss(model(x), x).item()
    _, runs = read_table(quick_run, "runs")
    reported = next(r for r in runs if (r["arch"], r["latent"], r["seed"]) == ("conv", "32", "1"))
    assert l1 == pytest.approx(float(reported["test_l1"]), rel=1e-5)
    assert info["test_l1"] == pytest.approx(l1, rel=1e-5) and info["dataset"] == "digits"


def test_mean_latent_from_a_run_decodes_the_mean_of_its_codes(quick_run, tmp_path):
    out = run_quick("autoencoder-mean-latent", tmp_path, from_run=str(quick_run), seed=1)
    columns, rows = read_table(out, "mean_code")
    assert columns[:3] == ["latent", "collapsed", "dead_units"] and [r["latent"] for r in rows] == ["2", "32"]
    # oracle: the same checkpoint, the training codes averaged and decoded by hand
    data = load_images("digits")
    x = to_tensor(data.train_images, "cpu")
    for latent in (2, 32):
        name = f"conv-latent{latent}-seed1"
        model = build_autoencoder(**checkpoint_info(quick_run, name)["architecture"])
        load_checkpoint(quick_run, name, model)
        with torch.no_grad():
            expected = model.decode(model.encode(x).mean(dim=0, keepdim=True)).reshape(8, 8).numpy()
        import numpy as np
        assert np.allclose(np.load(out / "arrays" / f"decoded_mean_latent{latent}.npy"), expected, atol=1e-5)
    assert "checkpoint" in (out / "text" / "data.md").read_text()
    for name in ("mean_code", "against_pixel_mean", "class_means"):
        assert (out / "figures" / f"{name}.png").is_file()
    assert "λ = 32" in (out / "text" / "explanation.md").read_text()


def test_mean_latent_refuses_a_run_of_another_dataset_or_model(quick_run, tmp_path):
    with pytest.raises(ConfigError, match="was trained on digits; add dataset=digits"):
        run_quick("autoencoder-mean-latent", tmp_path, from_run=str(quick_run), dataset="fashion-mnist")
    with pytest.raises(ConfigError, match=r"has no checkpoint 'conv-latent3-seed0' \(it has: conv-latent2-seed0"):
        run_quick("autoencoder-mean-latent", tmp_path, from_run=str(quick_run), latents=[3])


def test_a_run_whose_every_model_diverged_says_so_and_still_draws_its_report(tmp_path):
    """lr=3e37 blows every model up: the run must end ``diverged`` with its tables and figures
    (the code-space figure once crashed on the NaN codes inside PCA)."""
    import json

    run_dir = run_quick("autoencoder", tmp_path, lr=3e37, seeds=1, epochs=1)
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "diverged" and "diverged" in info["error"]
    _, rows = read_table(run_dir, "runs")
    assert rows and {r["status"] for r in rows} == {"diverged"}
    assert (run_dir / "figures" / "codes.png").is_file() and not list((run_dir / "figures").glob("plane_*"))
    assert "diverged" in (run_dir / "report.md").read_text()
