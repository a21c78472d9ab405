"""The Langevin chains through the study's regressor are the same on one thread and on two: what lets
``trainlab.device.cpu_plan`` give their steps only the cores idle at the time (``threads_change_numbers=False``)."""

import pytest
import torch

from trainlab.device import available_cores, use_threads
from trainlab.mcmc.langevin import sample
from trainlab.nn.energy import EnergyRegressor


@pytest.mark.skipif(available_cores() < 2, reason="needs two cores")
@pytest.mark.parametrize("packed", [False, True], ids=["module", "packed"])
def test_the_study_regressor_chains_do_not_depend_on_the_thread_count(packed):
    gen = torch.Generator().manual_seed(0)
    model = EnergyRegressor().init_for_training(torch.rand(256, 784, generator=gen) * 2 - 1, gen).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    x0 = 0.3 * torch.randn(16, 784, generator=torch.Generator().manual_seed(1))  # ebm-sample's 16 chains
    energy = model.frozen_energy(16) if packed else model.energy  # ebm-sample samples the packed one
    runs = []
    for threads in (1, 2):
        with use_threads(threads):
            assert torch.get_num_threads() == threads
            runs.append(sample(energy, x0, method="mala", tau=0.01, burn_in=2, n_samples=3,
                               generator=torch.Generator().manual_seed(2)))
    assert torch.equal(runs[0].samples, runs[1].samples) and torch.equal(runs[0].energy, runs[1].energy)
    assert torch.equal(runs[0].accept_rate, runs[1].accept_rate)
