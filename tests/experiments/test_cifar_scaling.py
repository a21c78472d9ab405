import numpy as np
from helpers import read_summary, read_table, run_quick

from trainlab.experiments.cifar_scaling import QUICK, Config, _epochs, _steps


def test_quick_accuracy_against_size_with_error_bars(tmp_path):
    run_dir = run_quick("cifar-scaling", tmp_path)
    columns, rows = read_table(run_dir, "sizes")
    for column in ("per_class", "train_images", "train_acc", "train_acc_std", "test_acc", "test_acc_std", "n"):
        assert column in columns
    assert [r["per_class"] for r in rows] == ["1", "10", "all"]
    assert [int(r["train_images"]) for r in rows] == [10, 100, 1347]
    assert all(r["n"] == "2" for r in rows)
    assert all(int(r["steps"]) >= 60 for r in rows)  # min_steps in the quick profile
    test = [float(r["test_acc"]) for r in rows]
    assert test[-1] > test[0] > 10  # more data helps; one image per class still beats chance
    _, runs = read_table(run_dir, "runs")
    subsets = {r["seed"]: r for r in runs if r["per_class"] == "1"}
    assert set(subsets) == {"0", "1"}
    assert (run_dir / "figures" / "scaling.png").is_file()
    assert read_summary(run_dir)["test_acc_full"] == float(rows[-1]["test_acc"])
    _reloaded_networks_score_the_tables_test_accuracy(run_dir, runs)


def _reloaded_networks_score_the_tables_test_accuracy(run_dir, runs):
    """Every trained network is a checkpoint; reloaded weights-only, it scores the test accuracy of its row."""
    import torch

    from trainlab.checkpoints import checkpoint_info, load_checkpoint
    from trainlab.config import load_config
    from trainlab.experiments._cifar import load_tensors
    from trainlab.nn.cnn import FastCNN
    from trainlab.train.cnn import evaluate_cnn

    cfg = load_config(Config, base=QUICK)
    data = load_tensors(cfg, torch.device("cpu"))
    for row in runs:
        name = f"{'all' if row['per_class'] == 'all' else 'per_class' + row['per_class']}_seed{row['seed']}"
        model = FastCNN(**checkpoint_info(run_dir, name)["architecture"])
        load_checkpoint(run_dir, name, model)
        acc = evaluate_cnn(model, *data.test, tta_level=cfg.tta_level, flip=cfg.flip).acc
        assert acc == float(row["test_acc"]), name


def test_small_sets_get_at_least_min_steps():
    cfg = Config(epochs=4.0, min_steps=100, batch_size=512)
    for n in (10 * 52, 1000, 10000, 60000):  # a 10-image set filled to a batch: 52 copies
        epochs = _epochs(n, cfg)
        steps = _steps(n, type("S", (), {"batch_size": 512, "epochs": epochs}))
        assert steps >= 100 and epochs >= 4.0
    assert _epochs(60000, cfg) == 4.0  # the full set keeps its epochs
    assert np.isclose(_epochs(1000, cfg), 100.0)  # 1 step per epoch


def test_parallel_trainings_give_the_same_numbers(tmp_path, monkeypatch):
    from trainlab import workers as pool
    from trainlab.device import CpuPlan

    def numbers(workers):
        monkeypatch.setattr(pool, "cpu_plan", lambda *a, **k: CpuPlan(workers=workers, threads=1))
        run_dir = run_quick("cifar-scaling", tmp_path / str(workers), full=False, min_steps=20)
        _, runs = read_table(run_dir, "runs")
        return [{k: v for k, v in r.items() if k != "train_time_s"} for r in runs]

    assert numbers(1) == numbers(2)
