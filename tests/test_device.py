import os

import numpy as np
import pytest
import torch

from trainlab.device import resolve_device, seed_everything, torch_generator
from trainlab.errors import ConfigError


def test_auto_picks_an_available_device():
    dev = resolve_device("auto")
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert dev.type == expected
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA present")
def test_unavailable_cuda_is_a_config_error():
    with pytest.raises(ConfigError, match="device=cpu"):
        resolve_device("cuda")


def test_one_seed_drives_numpy_and_torch():
    rng = seed_everything(5)
    a = (rng.random(3), np.random.random(3), torch.rand(3))
    rng = seed_everything(5)
    b = (rng.random(3), np.random.random(3), torch.rand(3))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and torch.equal(a[2], b[2])
    assert torch.equal(torch.rand(4, generator=torch_generator(9)), torch.rand(4, generator=torch_generator(9)))


def test_thread_limit_restores_and_small_steps_get_one_thread():
    from trainlab.device import SMALL_STEP_FLOPS, available_cores, thread_limit, threads_for_step

    before = torch.get_num_threads()
    with thread_limit(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    cpu = torch.device("cpu")
    assert threads_for_step(SMALL_STEP_FLOPS / 10, cpu) == 1
    assert threads_for_step(SMALL_STEP_FLOPS * 10, cpu) == available_cores()
    assert threads_for_step(1.0, torch.device("cuda")) is None


def test_cpu_plan_is_one_rule_for_threads_and_workers(monkeypatch):
    import trainlab.device as device

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(device, "available_cores", lambda: 2)
    big = device.MIN_PARALLEL_FLOPS
    assert device.cpu_plan(cpu, 1e3) == device.CpuPlan(workers=1, threads=1)  # tiny steps: one thread
    assert device.cpu_plan(cpu, device.SMALL_STEP_FLOPS * 10) == device.CpuPlan(workers=1, threads=2)
    # independent tasks worth a worker each: one single-threaded process per core
    assert device.cpu_plan(cpu, 1e3, tasks=5, total_flops=big) == device.CpuPlan(workers=2, threads=1)
    assert device.cpu_plan(cpu, 1e9, tasks=5, total_flops=big / 10).workers == 1  # not worth starting them
    assert device.cpu_plan(cuda, 1e9, tasks=5, total_flops=big) == device.CpuPlan(workers=1, threads=None)
    monkeypatch.setattr(device, "available_cores", lambda: 1)
    assert device.cpu_plan(cpu, 1e9, tasks=5, total_flops=big) == device.CpuPlan(workers=1, threads=1)


def test_steps_whose_numbers_ignore_threads_get_only_the_idle_cores(monkeypatch):
    import trainlab.device as device

    cpu, big = torch.device("cpu"), device.SMALL_STEP_FLOPS * 10
    monkeypatch.setattr(device, "available_cores", lambda: 2)
    monkeypatch.setattr(device, "idle_cores", lambda: 1.9)  # the other core is free
    assert device.cpu_plan(cpu, big, threads_change_numbers=False).threads == 2
    monkeypatch.setattr(device, "idle_cores", lambda: 0.4)  # other processes hold the cores
    assert device.cpu_plan(cpu, big, threads_change_numbers=False).threads == 1
    assert device.cpu_plan(cpu, big).threads == 2  # numbers that depend on threads: same at any load
    assert device.cpu_plan(cpu, device.SMALL_STEP_FLOPS / 10, threads_change_numbers=False).threads == 1


def test_idle_cores_is_a_share_of_the_available_cores():
    from trainlab.device import available_cores, idle_cores

    assert 0.0 <= idle_cores(0.02) <= available_cores()


def test_use_threads_sets_and_restores_within_the_available_cores():
    from trainlab.device import available_cores, use_threads

    before = torch.get_num_threads()
    with use_threads(1):
        with use_threads(64):  # raised again, but never past the cores this process may use
            assert torch.get_num_threads() == min(64, available_cores())
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_check_allocation_refuses_what_the_machine_lacks_in_one_line():
    from trainlab.device import available_memory, check_allocation
    from trainlab.errors import DataError

    free = available_memory()
    assert free > 0
    check_allocation(1024, "a small buffer")
    with pytest.raises(DataError, match="a huge buffer needs .* but cpu has .* free") as info:
        check_allocation(free * 4 + 2**40, "a huge buffer", error=DataError)
    assert "\n" not in str(info.value)


def _two_gpus(monkeypatch):
    """A CPU-only machine made to look like one with two GPUs (nothing touches them here)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


@pytest.mark.parametrize("name", ["cuda:x", "cuda:", "tpu", "cuda:-1", "cpu:0"])
def test_a_malformed_device_is_one_line_naming_the_choices(name):
    from trainlab.config import BaseConfig

    for check in (lambda: resolve_device(name), lambda: BaseConfig(device=name)):
        with pytest.raises(ConfigError, match=r"not one of auto, cpu, cuda, cuda:N or mps") as info:
            check()
        assert "\n" not in str(info.value)


def test_a_gpu_index_is_checked_against_the_gpus_this_process_sees(monkeypatch):
    _two_gpus(monkeypatch)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device("cuda") == torch.device("cuda")
    with pytest.raises(ConfigError, match=r"device=cuda:7 .* sees 2 GPU\(s\) \(cuda:0 to cuda:1\)"):
        resolve_device("cuda:7")


def test_cuda_runs_are_deterministic_unless_asked_to_be_fast(monkeypatch):
    from trainlab.device import CUBLAS_WORKSPACE, algorithm_choice

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    cudnn = torch.backends.cudnn
    before = (cudnn.benchmark, cudnn.deterministic, torch.are_deterministic_algorithms_enabled())
    with algorithm_choice(torch.device("cuda", 0)):
        assert (cudnn.benchmark, cudnn.deterministic) == (False, True)
        assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == CUBLAS_WORKSPACE
    assert (cudnn.benchmark, cudnn.deterministic, torch.are_deterministic_algorithms_enabled()) == before
    with algorithm_choice("cuda", deterministic=False):
        assert cudnn.benchmark and not cudnn.deterministic and not torch.are_deterministic_algorithms_enabled()
    assert (cudnn.benchmark, cudnn.deterministic, torch.are_deterministic_algorithms_enabled()) == before
    with algorithm_choice("cpu"):  # nothing to choose: the CPU's numbers stay what they were
        assert (cudnn.benchmark, cudnn.deterministic, torch.are_deterministic_algorithms_enabled()) == before


def test_env_json_records_the_gpus_and_the_algorithm_choice(monkeypatch):
    from trainlab.device import algorithm_choice
    from trainlab.environment import environment

    _two_gpus(monkeypatch)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index: f"Test GPU {index}")
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    monkeypatch.setattr(torch.backends.cudnn, "version", lambda: 91000)
    assert "gpu_name" not in environment(torch.device("cpu"), 0)
    for deterministic in (True, False):
        with algorithm_choice("cuda:1", deterministic):
            env = environment(torch.device("cuda", 1), 0)
        assert env["gpu_name"] == "Test GPU 1" and env["gpu_count"] == 2
        assert (env["cuda_version"], env["cudnn_version"]) == ("12.8", 91000)
        assert env["deterministic_algorithms"] is deterministic and env["cudnn_benchmark"] is not deterministic
        assert env["tf32_matmul"] == torch.backends.cuda.matmul.allow_tf32
        assert env["tf32_cudnn"] == torch.backends.cudnn.allow_tf32


def test_a_run_records_its_algorithm_choice_in_its_config(tmp_path):
    import trainlab

    run = trainlab.run("adam-bump", quick=True, out=tmp_path, device="cpu", deterministic=False)
    assert run.config.deterministic is False
    assert "deterministic: false" in (run.path / "config.yaml").read_text()
