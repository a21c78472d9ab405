import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from helpers import read_summary, read_table, run_quick, write_cifar

from trainlab.errors import ConfigError
from trainlab.nn.cnn import FastCNN

SRC = str(Path(__file__).resolve().parents[2] / "src")


def test_quick_run_has_the_studys_four_curves_and_per_class_accuracy(tmp_path):
    run_dir = run_quick("cifar-cnn", tmp_path)
    columns, rows = read_table(run_dir, "epochs")
    assert columns == ["epoch", "train_loss", "train_acc", "test_loss", "test_acc"]
    assert [int(r["epoch"]) for r in rows] == list(range(1, 9))
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    _, classes = read_table(run_dir, "per_class")
    assert [r["name"] for r in classes] == [str(d) for d in range(10)]
    assert sum(int(r["images"]) for r in classes) == 450  # digits' fixed test split
    summary = read_summary(run_dir)
    assert summary["test_acc_tta"] > 80  # digits, 8 epochs at width 8
    assert (run_dir / "figures" / "curves.png").is_file()
    # the checkpoint rebuilds and loads weights-only (cifar-features reads it this way)
    arch = json.loads((run_dir / "checkpoints" / "cnn.json").read_text())["architecture"]
    model = FastCNN(arch["in_channels"], arch["num_classes"], arch["widths"], image_size=arch["image_size"])
    model.load_state_dict(torch.load(run_dir / "checkpoints" / "cnn.pt", weights_only=True))
    assert "flip: false" in (run_dir / "config.yaml").read_text()  # digits are not mirror-safe


def test_two_seeds_add_std_columns(tmp_path):
    run_dir = run_quick("cifar-cnn", tmp_path, seeds=2, epochs=2)
    columns, rows = read_table(run_dir, "epochs")
    assert "test_acc_std" in columns and all(r["n"] == "2" for r in rows)
    _, runs = read_table(run_dir, "runs")
    assert [r["seed"] for r in runs] == ["0", "1"]


def test_cifar10_tarball_in_data_dir(tmp_path):
    write_cifar(tmp_path / "data")
    run_dir = run_quick("cifar-cnn", tmp_path / "runs", dataset="cifar10", data_dir=str(tmp_path / "data"),
                        epochs=1, width=2, translate=2)
    _, classes = read_table(run_dir, "per_class")
    assert classes[0]["name"] == "airplane" and "flip: true" in (run_dir / "config.yaml").read_text()
    assert "Conv2d(3, 24, kernel_size=(2, 2)" in (run_dir / "report.md").read_text()


def test_experiments_that_are_not_data_parallel_refuse_torchrun(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ConfigError, match="does not train data-parallel"):
        run_quick("mnist-binary", tmp_path)
    assert not any(tmp_path.iterdir())


@pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()), reason="no torch.distributed/gloo")
def test_torchrun_two_cpu_processes_write_one_report(tmp_path):
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "trainlab",
         "run", "cifar-cnn", "--quick", "epochs=2", "--device", "cpu", "--out", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=600)
    # on failure show the workers' own errors, not only torchrun's summary at the end
    errors = [line for line in done.stderr.splitlines() if "Error" in line or "terminate" in line]
    assert done.returncode == 0, "\n".join(errors[:20]) + "\n...\n" + done.stderr[-1500:]
    folders = list((tmp_path / "cifar-cnn").iterdir())
    assert len(folders) == 1  # rank 0 only
    assert done.stdout.strip().splitlines()[-1] == str(folders[0])
    assert json.loads((folders[0] / "run.json").read_text())["status"] == "done"
    _, runs = read_table(folders[0], "runs")
    assert float(runs[0]["test_acc_tta"]) > 20  # 2 epochs of data-parallel training learned something


def test_a_configs_hash_does_not_depend_on_the_hardware(monkeypatch):
    # The run folder's name ends in the config's hash: the same config must name the same
    # folder on a laptop and on a GPU machine. The hardware fills width and batch size at run time.
    import trainlab.device
    import trainlab.experiments._cifar
    from trainlab.config import config_hash
    from trainlab.experiments.cifar_cnn import Config

    on_cpu = Config()
    for module in (trainlab.device, trainlab.experiments._cifar):  # wherever a config might ask
        monkeypatch.setattr(module, "resolve_device", lambda *a, **k: torch.device("cuda"), raising=False)
    assert config_hash(Config()) == config_hash(on_cpu)
    assert (on_cpu.for_device(torch.device("cpu")).width, on_cpu.for_device(torch.device("cuda")).width) == (16, 64)
    assert on_cpu.for_device(torch.device("cuda")).batch_size == 1024
