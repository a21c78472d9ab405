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
