"""The stand-in accelerator (tests/standin.py) catches each kind of device trouble it is there for."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from standin import STANDIN, DeviceTensor, standin_device


@pytest.fixture
def record(monkeypatch):
    with standin_device(monkeypatch) as rec:
        yield rec


def _kinds(record) -> list[str]:
    return sorted({v.kind for v in record.violations})


def _line_of(text: str) -> int:
    """The line of this file that holds ``text`` (where the stand-in must say a thing happened)."""
    lines = open(__file__).read().splitlines()
    return next(i for i, line in enumerate(lines, 1) if line.strip() == text)


def test_device_tensors_hold_the_cpu_values(record):
    x = torch.arange(6.0).to(STANDIN)
    y = (x * 2 + 1).view(2, 3).sum(1)
    assert isinstance(y, DeviceTensor) and y.device == STANDIN
    assert y.values.tolist() == [9.0, 27.0]
    assert not record.violations


def test_a_cpu_tensor_meeting_a_device_tensor_is_mixing(record):
    x = torch.ones(3, device=STANDIN)
    x + torch.ones(3)
    assert _kinds(record) == ["mixing"]
    (violation,) = record.violations
    assert "add" in violation.op and "cpu float32 tensor of shape (3,)" in violation.op
    assert violation.where.endswith(f"test_standin.py:{_line_of('x + torch.ones(3)')}")


def test_zero_dimensional_cpu_tensors_and_cpu_indices_are_allowed_as_on_cuda(record):
    x = torch.arange(5.0, device=STANDIN)
    x * torch.tensor(2.0)
    picked = x[torch.tensor([0, 3])]
    assert picked.values.tolist() == [0.0, 3.0]
    assert not record.violations
    assert [op for op, _ in record.copies] == ["index.Tensor with CPU indices"]


def test_numpy_of_a_device_tensor_is_a_violation_and_the_run_goes_on(record):
    x = torch.arange(3.0, device=STANDIN)
    assert x.numpy().tolist() == [0.0, 1.0, 2.0]
    assert np.asarray(x).shape == (3,)
    assert _kinds(record) == ["numpy"]
    assert x.cpu().numpy().tolist() == [0.0, 1.0, 2.0]  # the right way: one read, no violation
    assert sum(record.violations.values()) == 2


def test_generators_on_the_wrong_device(record):
    cpu_gen, device_gen = torch.Generator().manual_seed(0), torch.Generator(device=STANDIN).manual_seed(0)
    assert device_gen.device == STANDIN and isinstance(device_gen, torch.Generator)
    torch.randn(4, generator=device_gen, device=STANDIN)  # fine
    torch.randperm(4, generator=cpu_gen)  # fine
    torch.randn(4, generator=cpu_gen, device=STANDIN)
    torch.randperm(4, generator=device_gen)
    ops = sorted(v.op for v in record.violations)
    assert _kinds(record) == ["generator"] and ops == ["randn (CPU generator, device numbers)",
                                                      "randperm (device generator, CPU numbers)"]


def test_float64_on_the_device(record):
    torch.zeros(2, device=STANDIN).double()
    torch.zeros(2, dtype=torch.float64)  # on the CPU: fine
    assert _kinds(record) == ["float64"]


def test_reads_and_copies_are_counted_per_source_line(record):
    x = torch.ones(4, device=STANDIN)
    for _ in range(3):
        x.sum().item()
    float(x[0])
    x.tolist()
    x.cpu()
    x[x > 0]  # a boolean mask: the host must learn how many
    assert sum(record.reads.values()) == 7
    assert max(record.reads.values()) == 3  # the loop's line, once per pass
    assert not record.violations


def test_python_lists_and_torch_tensor_keep_their_values(record):
    x = torch.arange(10.0, device=STANDIN).view(5, 2)
    assert x[[1, 3]].values.tolist() == [[2.0, 3.0], [6.0, 7.0]]
    assert x[[True, False, True, False, False]].values.tolist() == [[0.0, 1.0], [4.0, 5.0]]
    assert torch.tensor([1.0, 2.0], device=STANDIN).values.tolist() == [1.0, 2.0]
    assert torch.as_tensor([3, 4], device=x.device).values.tolist() == [3, 4]
    with torch.inference_mode():
        assert torch.tensor([5.0], device=STANDIN).values.tolist() == [5.0]
    assert not record.violations


def test_training_matches_the_cpu_and_counts_steps(monkeypatch):
    def train(device):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten(), torch.nn.Linear(64, 2)).to(device)
        model.to(memory_format=torch.channels_last)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        x = torch.randn(8, 1, 6, 6, generator=torch.Generator().manual_seed(1)).to(device)
        y = torch.arange(8).remainder(2).to(device)
        for _ in range(3):
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return [p.detach() for p in model.parameters()]

    on_cpu = train("cpu")
    with standin_device(monkeypatch) as record:
        on_device = train(STANDIN)
    assert all(torch.equal(a, b.values) for a, b in zip(on_cpu, on_device))
    assert record.steps == 3 and not record.violations
