import pytest
from helpers import read_summary, read_table, run_quick

from trainlab.checkpoints import list_checkpoints


def test_quick_run_trains_its_own_models_and_explains_the_mean(tmp_path):
    run_dir = run_quick("autoencoder-mean-latent", tmp_path)
    _, rows = read_table(run_dir, "mean_code")
    assert [r["latent"] for r in rows] == ["2", "32"]
    for r in rows:
        assert r["collapsed"] == "False"
        assert float(r["isolation"]) >= 0 and 0 <= float(r["neighbour_share"]) <= 100
        assert 0 < float(r["l1_to_pixel_mean"]) < 1 and float(r["recon_mean_l1_to_pixel_mean"]) < 1
    _, classes = read_table(run_dir, "class_means")
    assert len(classes) == 2 * 10
    assert list_checkpoints(run_dir) == ["conv-latent2-seed0", "conv-latent32-seed0"]
    note = (run_dir / "text" / "explanation.md").read_text()
    assert note.count("**λ =") == 2 and f"{float(rows[0]['l1_to_pixel_mean']):.3f}" in note
    assert read_summary(run_dir)["l1_to_pixel_mean_latent2"] == pytest.approx(float(rows[0]["l1_to_pixel_mean"]))
