import pytest
import torch
from helpers import read_summary, read_table, run_quick
from torch import nn

from trainlab.nn.autoencoder import MLPAutoencoder
from trainlab.train.metrics import mean_loss


def test_quick_run_reports_mse_per_split_and_figures(tmp_path):
    run_dir = run_quick("mnist-reconstruct", tmp_path)
    columns, rows = read_table(run_dir, "mse")
    assert columns == ["split", "mse", "mse_unit_pixels", "images"]
    assert [r["split"] for r in rows] == ["train", "val", "test"]
    # Oracle: predicting the mean image of the training split. A trained autoencoder must beat it
    # clearly; pixels are in [-1, 1] so the [0, 1] figure is a quarter of it.
    from trainlab.data import load_images, to_tensor

    data = load_images("digits")
    x_test = to_tensor(data.test_images, torch.device("cpu")) * 2 - 1
    mean_image = (to_tensor(data.train_images, torch.device("cpu")) * 2 - 1).mean(0)
    baseline = float(((x_test - mean_image) ** 2).mean())
    for row in rows:
        assert 0 < float(row["mse"]) < 0.8 * baseline
        assert float(row["mse_unit_pixels"]) == pytest.approx(float(row["mse"]) / 4, rel=1e-4)
    assert int(rows[-1]["images"]) == len(data.test_labels)
    assert (run_dir / "figures" / "loss.png").is_file() and (run_dir / "figures" / "reconstructions.png").is_file()
    assert "(activation_output): Tanh()" in (run_dir / "report.md").read_text()
    assert read_summary(run_dir)["test_mse"] == pytest.approx(float(rows[-1]["mse"]))


def test_unit_pixel_range_reports_the_same_scale_twice(tmp_path):
    run_dir = run_quick("mnist-reconstruct", tmp_path, pixel_range="unit", output_activation="sigmoid", epochs=2)
    _, rows = read_table(run_dir, "mse")
    assert all(r["mse"] == r["mse_unit_pixels"] for r in rows)


def test_mean_loss_is_independent_of_chunking():
    torch.manual_seed(0)
    model = MLPAutoencoder(12, hidden=5)
    x = torch.rand(37, 12) * 2 - 1
    with torch.no_grad():
        whole = nn.functional.mse_loss(model(x), x).item()
    for chunk in (1, 5, 36, 100):
        assert mean_loss(model, x, x, nn.MSELoss(), batch_size=chunk) == pytest.approx(whole, rel=1e-5)


def test_autoencoder_is_the_seeds_regression_mlp():
    model = MLPAutoencoder(784, 50)
    assert [name for name, _ in model.named_children()] == ["fc1", "activation", "fc2", "activation_output"]
    out = model(torch.randn(3, 784) * 10)
    assert out.shape == (3, 784) and out.abs().max() <= 1
    assert model.encode(torch.randn(2, 784)).min() >= 0  # ReLU code


def test_the_trained_autoencoder_is_saved_as_a_checkpoint(tmp_path):
    from trainlab.checkpoints import checkpoint_info, load_checkpoint

    run_dir = run_quick("mnist-reconstruct", tmp_path)
    arch = checkpoint_info(run_dir, "autoencoder")["architecture"]
    model, untrained = MLPAutoencoder(**arch), MLPAutoencoder(**arch)
    load_checkpoint(run_dir, "autoencoder", model, architecture=arch)
    x = torch.rand(4, arch["in_dim"])
    assert model(x).shape == x.shape and not torch.equal(model(x), untrained(x))
