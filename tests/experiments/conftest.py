"""Checks every experiment test makes on the way: the workers' rule for global generators."""

import random

import numpy as np
import pytest
import torch

from trainlab import workers


def _global_states() -> tuple:
    return torch.get_rng_state(), np.random.get_state(), random.getstate()


def _same(a: tuple, b: tuple) -> bool:
    (torch_a, numpy_a, python_a), (torch_b, numpy_b, python_b) = a, b
    # NumPy's legacy state: (name, key array, position, has_gauss, cached_gaussian)
    return (torch.equal(torch_a, torch_b) and python_a == python_b and np.array_equal(numpy_a[1], numpy_b[1])
            and numpy_a[2:] == numpy_b[2:])


@pytest.fixture(autouse=True)
def tasks_leave_the_global_generators_alone(monkeypatch):
    """Every task an experiment runs one after another through :mod:`trainlab.workers` must leave
    torch's, NumPy's and Python's global generators as it found them: on worker threads a task that
    draws from one (a module initialiser outside ``device.global_seed``) changes the initial weights
    another thread is drawing there, and a parallel run stops reproducing the sequential one.
    Tasks running side by side are not checked (the other thread may legitimately be seeding)."""
    run_planned = workers._run_planned

    def checked(fn, tasks, plan):
        if plan.workers > 1:
            return run_planned(fn, tasks, plan)

        def task(t):
            before = _global_states()
            result = fn(t)
            assert _same(before, _global_states()), "a worker task drew from a global generator"
            return result

        return run_planned(task, tasks, plan)

    monkeypatch.setattr(workers, "_run_planned", checked)
