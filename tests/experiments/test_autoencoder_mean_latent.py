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


def test_a_from_run_of_another_dataset_is_refused_before_any_data_is_looked_up(tmp_path, monkeypatch):
    import trainlab.experiments._autoencoder as plumbing
    from trainlab.errors import ConfigError

    digits_run = run_quick("autoencoder-mean-latent", tmp_path / "digits", epochs=1, latents=[2])

    def no_data(cfg):
        raise AssertionError(f"{cfg.dataset} was looked up before from_run was checked")

    monkeypatch.setattr(plumbing, "load_data", no_data)
    for dataset in ("fashion-mnist", "mnist"):  # refused the same whether or not the data exists here
        with pytest.raises(ConfigError, match="was trained on digits; add dataset=digits"):
            run_quick("autoencoder-mean-latent", tmp_path / dataset, from_run=str(digits_run), dataset=dataset,
                      latents=[2])
