"""The suite's guard for the workers' rule (tests/generator_guard.py) fails where it must, and only there."""

import random

import numpy as np
import pytest
import torch

from trainlab.device import global_seed
from trainlab.train.snapshots import restore_rng, rng_states
from trainlab.workers import run_independent


def one_after_another(task, tasks=(0,)):
    return run_independent(task, list(tasks), costs=[1.0] * len(tasks), step_flops=1.0, device="cpu")


def build_seeded(_=None):
    with global_seed(3):
        return torch.nn.Linear(4, 2).weight.detach().clone()


@pytest.mark.parametrize("draw", [lambda: torch.nn.Linear(4, 2), lambda: np.random.rand(), lambda: random.random(),
                                  lambda: torch.manual_seed(1)])
def test_a_task_that_draws_from_a_global_generator_fails(draw):
    with pytest.raises(AssertionError, match="drew from the global generator"):
        one_after_another(lambda _: draw())


def test_seeded_builds_and_own_generators_pass():
    own = torch.Generator().manual_seed(0)
    out = one_after_another(lambda _: (build_seeded(), torch.randn(3, generator=own)), tasks=range(3))
    assert all(torch.equal(out[0][0], w) for w, _ in out)


def test_a_task_may_restore_a_snapshot_but_not_draw_after_it():
    saved = rng_states()
    torch.rand(1), np.random.rand(), random.random()  # the globals move on, as a run's would

    def resume(_):
        restore_rng(saved)
        return build_seeded()

    one_after_another(resume)
    assert torch.equal(torch.get_rng_state(), saved["torch"])

    def resume_and_draw(_):
        restore_rng(saved)
        return torch.nn.Linear(4, 2)

    with pytest.raises(AssertionError, match="of torch"):
        one_after_another(resume_and_draw)


def test_tasks_inside_a_task_are_checked_and_so_is_the_task_around_them():
    assert one_after_another(lambda _: one_after_another(build_seeded, tasks=range(2)))[0][0].shape == (2, 4)
    with pytest.raises(AssertionError, match="of numpy"):
        one_after_another(lambda _: (np.random.rand(), one_after_another(build_seeded)))
