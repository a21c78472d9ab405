import numpy as np
import pytest
from helpers import read_summary, read_table, run_quick, write_cifar

from trainlab.data import load_images


def test_quick_counts_figures_and_pca(tmp_path):
    run_dir = run_quick("cifar-eda", tmp_path)
    columns, rows = read_table(run_dir, "class_counts")
    assert columns == ["class", "name", "train", "train_share_pct", "test"]
    digits = load_images("digits")
    expected = np.bincount(digits.train_labels)[:2]
    assert [int(r["train"]) for r in rows] == expected.tolist()
    assert sum(float(r["train_share_pct"]) for r in rows) == pytest.approx(100.0)
    for name in ("samples", "mean_images", "pca"):
        assert (run_dir / "figures" / f"{name}.png").is_file()
    summary = read_summary(run_dir)
    assert summary["pca_nearest_mean_acc"] > 95  # 0 and 1 separate on two components
    assert 0 < summary["pca_variance_kept_pct"] < 100


def test_all_ten_cifar_classes_from_a_tarball(tmp_path):
    write_cifar(tmp_path / "data", per_batch=20, n_test=30)
    run_dir = run_quick("cifar-eda", tmp_path / "runs", dataset="cifar10", data_dir=str(tmp_path / "data"),
                        classes=None, samples=4)
    _, rows = read_table(run_dir, "class_counts")
    assert [r["name"] for r in rows][:2] == ["airplane", "automobile"]
    assert [int(r["train"]) for r in rows] == [10] * 10 and [int(r["test"]) for r in rows] == [3] * 10
    assert "exactly balanced" in (run_dir / "report.md").read_text()
