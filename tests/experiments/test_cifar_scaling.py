import numpy as np
from helpers import read_summary, read_table, run_quick

from trainlab.config import load_config
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


def test_a_quick_tune_writes_tuned_beside_untuned(tmp_path):
    import optuna

    from trainlab.checkpoints import checkpoint_info
    from trainlab.sweeps.tune_folder import STUDY_NAME, study_url

    run_dir = run_quick("cifar-scaling", tmp_path, full=False, min_steps=20, tune_trials=2)
    _, sizes = read_table(run_dir, "sizes")
    _, runs = read_table(run_dir, "runs")
    columns, tuned = read_table(run_dir, "tuned")
    assert [r["per_class"] for r in tuned] == ["1", "10"]
    for column in ("untuned_test_acc", "untuned_test_acc_std", "tuned_test_acc", "tuned_test_acc_std", "gain_std"):
        assert column in columns
    summary = read_summary(run_dir)
    for size, row in zip(sizes, tuned):
        k = row["per_class"]
        assert float(row["untuned_test_acc"]) == float(size["test_acc"])  # the untuned table, unchanged
        mine = [float(r["test_acc"]) for r in runs if r["per_class"] == k and r["settings"] == "tuned"]
        assert len(mine) == 2 and np.isclose(float(row["tuned_test_acc"]), np.mean(mine))
        assert summary[f"tuned_test_acc_{k}"] == float(row["tuned_test_acc"])

    _, chosen = read_table(run_dir, "chosen")
    assert [(r["per_class"], r["validation"], r["val_images"]) for r in chosen] == \
        [("1", "extra", "50"), ("1", "extra", "50"), ("10", "held out", "20"), ("10", "held out", "20")]
    cfg = load_config(Config, base=QUICK)
    for row in chosen:
        name = f"tuned_per_class{row['per_class']}_seed{row['seed']}"
        study = optuna.load_study(study_name=STUDY_NAME, storage=study_url(run_dir / "tunes" / name))
        assert len(study.trials) == 2 and all(t.state.name == "COMPLETE" for t in study.trials)
        # the first trial is the untuned settings; the chosen ones are the study's best trial
        assert study.trials[0].params == {"lr": cfg.lr, "weight_decay": cfg.weight_decay, "length": 1.0,
                                          "translate": cfg.translate}
        assert float(row["untuned_val_acc"]) == study.trials[0].value
        assert float(row["val_acc"]) == study.best_value >= study.trials[0].value
        assert checkpoint_info(run_dir, name)["tuned"] == study.best_trial.params
        untuned, tuned_run = ({r["settings"]: r for r in runs if r["per_class"] == row["per_class"]
                               and r["seed"] == row["seed"]}[s] for s in ("untuned", "tuned"))
        if study.best_trial.number == 0:  # same subset, same initial weights, same settings: same network
            assert tuned_run["test_acc"] == untuned["test_acc"]


def test_the_validation_split_is_disjoint_from_what_trains_and_from_the_test_set():
    import torch

    from trainlab.data import per_class
    from trainlab.experiments._cifar import load_tensors
    from trainlab.experiments._scaling_tune import validation_split

    cfg = load_config(Config, base=QUICK)
    data = load_tensors(cfg, torch.device("cpu"))
    labels = data.train[1].numpy()
    for k, held, extra in ((10, 2, False), (5, 1, False), (1, 0, True)):
        subset = per_class(labels, k, seed=3)
        split = validation_split(labels, subset, fraction=0.2, extra_per_class=4, seed=3)
        assert split.extra == extra
        assert not set(split.fit) & set(split.val)
        if extra:  # one image per class: scored on 4 other training images per class
            assert list(split.fit) == list(subset) and not set(split.val) & set(subset)
            assert np.bincount(labels[split.val]).tolist() == [4] * 10
        else:  # held out from the subset: what trains and what scores make up the subset
            assert sorted([*split.fit, *split.val]) == sorted(subset)
            assert np.bincount(labels[split.val]).tolist() == [held] * 10
        # indices into the training images only (the test set is a separate array nothing indexes)
        assert split.val.max() < len(labels) and split.val.min() >= 0
        test_images = {bytes(x) for x in data.test[0].numpy()}
        assert not any(bytes(x) in test_images for x in data.train[0][split.val].numpy())
