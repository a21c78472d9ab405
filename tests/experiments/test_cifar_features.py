import pytest
import torch
from helpers import read_summary, read_table, run_quick

from trainlab.cli import main
from trainlab.errors import DataError
from trainlab.nn.alexnet import AlexNet

COLUMNS = ["features", "dims", "logreg_train_acc", "logreg_test_acc", "mlp_train_acc", "mlp_test_acc"]


def _weights(path, widths=(192, 384)):
    """A torchvision-shaped AlexNet state_dict of constants stored as stride-0 views (a few kB)."""
    state = {k: torch.full((), 0.01).expand(v.shape) for k, v in AlexNet().state_dict().items()}
    if widths != (192, 384):
        state["features.3.weight"] = torch.zeros(()).expand(widths[0], 64, 5, 5)
    torch.save(state, path)
    return path


def test_quick_without_weights_says_so_and_compares_feature_sets(tmp_path):
    run_dir = run_quick("cifar-features", tmp_path)
    columns, rows = read_table(run_dir, "features")
    assert columns == COLUMNS
    assert [r["features"] for r in rows] == ["alexnet_1000", "alexnet_4096", "pixels", "pixels_pca10"]
    assert [int(r["dims"]) for r in rows] == [1000, 4096, 64, 10]
    pixels = rows[2]
    assert float(pixels["logreg_test_acc"]) > 85  # ten digits from raw pixels
    report = (run_dir / "report.md").read_text()
    assert "No pretrained weights were given" in report and "192 and 384" in report
    _, confusion = read_table(run_dir, "confusion")
    assert len(confusion) == 10 and sum(int(v) for r in confusion for k, v in r.items() if k != "true") == 450
    assert read_summary(run_dir)["pretrained"] is False


def test_weights_file_and_from_run(tmp_path):
    cnn_dir = run_quick("cifar-cnn", tmp_path / "cnn", epochs=2)
    run_dir = run_quick("cifar-features", tmp_path / "f", weights=str(_weights(tmp_path / "alexnet.pth")),
                        from_run=str(cnn_dir), head_epochs=2)
    _, rows = read_table(run_dir, "features")
    assert rows[-1]["features"] == "cifar_cnn" and int(rows[-1]["dims"]) == 32  # 4 x width 8
    assert float(rows[-1]["logreg_test_acc"]) > 50
    assert "ImageNet weights from" in (run_dir / "report.md").read_text()
    assert read_summary(run_dir)["pretrained"] is True


def test_the_studys_printed_widths_end_in_one_line_exit_2(tmp_path, capsys):
    path = _weights(tmp_path / "study.pth", widths=(128, 256))
    with pytest.raises(SystemExit) as info:
        main(["run", "cifar-features", "--quick", f"weights={path}", "--device", "cpu", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and len(err.splitlines()) == 1 and "features.3.weight" in err


def test_from_run_on_another_dataset_is_refused(tmp_path):
    from helpers import write_cifar

    cnn_dir = run_quick("cifar-cnn", tmp_path / "cnn", epochs=1)
    write_cifar(tmp_path / "data")
    with pytest.raises(DataError, match="train cifar-cnn on the same dataset"):
        run_quick("cifar-features", tmp_path / "f", dataset="cifar10", data_dir=str(tmp_path / "data"),
                  from_run=str(cnn_dir))
