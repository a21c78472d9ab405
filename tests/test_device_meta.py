"""Each function that once put float64 on the device, or copied to it every step, run on the
``meta`` stand-in accelerator (tests/meta_device.py): no float64 there, copies per epoch or
per call, not per step. The numbers are the CPU tests' business; these check devices and dtypes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from meta_device import MetaAccelerator
from trainlab.diffusion.ddpm import NoiseModel, train_ddpm
from trainlab.diffusion.schedules import make_scheduler
from trainlab.experiments.ebm_eval import error_rows
from trainlab.mcmc.adaptation import DualAveraging
from trainlab.mcmc.langevin import init, mala_step, sample, ula_step
from trainlab.mcmc.targets import GaussianEnergy
from trainlab.nn.cnn import FastCNN, block_widths
from trainlab.train.cnn import CNNTraining, train_cnn
from trainlab.train.imbalance import strategy_data
from trainlab.train.metrics import best_f1_threshold, binary_metrics_stacked
from trainlab.train.stack.shared_batches import adam_step_counters, fused_adam

META = torch.device("meta")


def test_the_stand_in_sees_float64_and_uploads():  # the oracle of the tests below can fail
    with MetaAccelerator() as acc:
        torch.zeros(3, device=META).double()
        torch.tensor([1.0, 2.0], device=META)
        torch.ones(2).to(META)
    assert acc.float64_ops and acc.uploads == 2


def test_whitening_init_keeps_float64_on_the_host():
    model = FastCNN(3, 10, block_widths(4)).to(META)
    with MetaAccelerator() as acc:
        model.init_from_data(torch.zeros(16, 3, 32, 32, dtype=torch.uint8, device=META))
    assert acc.float64_ops == [] and model.whiten.weight.is_meta and model.whiten.weight.dtype == torch.float32


def _cnn_uploads(epochs: int) -> int:
    model = FastCNN(3, 10, block_widths(4)).to(META)
    x = torch.zeros(64, 3, 32, 32, dtype=torch.uint8, device=META)
    y = torch.zeros(64, dtype=torch.long, device=META)
    with MetaAccelerator() as acc:
        train_cnn(model, (x, y), CNNTraining(epochs=epochs, batch_size=8, tta_level=0),
                  generator=torch.Generator().manual_seed(0), progress=False)
    assert acc.float64_ops == []
    return acc.uploads


def test_cnn_training_copies_to_the_device_per_epoch_not_per_step():
    per_epoch = _cnn_uploads(2) - _cnn_uploads(1)
    assert per_epoch < 8, f"{per_epoch} copies to the device in an epoch of 8 steps"


def test_gaussian_target_is_float32_on_the_device():
    d, k = 6, 2
    with MetaAccelerator() as acc:
        target = GaussianEnergy(torch.zeros(d, device=META), torch.zeros(k, d, device=META),
                                torch.full((k,), 2.0, device=META), 0.5)
        energies = target(torch.zeros(5, d, device=META))
        target.sample(4)
        target.ula_mean_energy(0.1)
    assert acc.float64_ops == [] and energies.dtype == torch.float32 and isinstance(target.log_norm, float)


def _energy(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (x * x).sum(1)


@pytest.mark.parametrize("step", [mala_step, ula_step])
def test_langevin_acceptance_is_in_the_chains_dtype(step):
    with MetaAccelerator() as acc:
        state = init(torch.zeros(8, 3, device=META), _energy)
        new, info = step(state, _energy, 0.1)
    assert acc.float64_ops == [] and info.log_accept_ratio.dtype == torch.float32 and new.position.is_meta


def test_adapted_langevin_sampling_puts_no_float64_on_the_device():
    with MetaAccelerator() as acc:
        res = sample(_energy, torch.zeros(8, 3, device=META), tau=0.1, burn_in=3, n_samples=2, adapt=True)
        adapter = DualAveraging(0.1, device=META, dtype=torch.float32)
        adapter.update(torch.tensor(0.5, device=META))
    assert acc.float64_ops == [] and res.accept_rate.is_meta and adapter.tau.dtype == torch.float32


def test_energy_error_sums_run_on_the_host():
    part = np.array(["data", "data", "noise", "noise"])
    with MetaAccelerator() as acc:
        rows = error_rows(torch.zeros(4, device=META), torch.zeros(4, device=META), part)
    assert acc.float64_ops == [] and [r["points"] for r in rows] == ["data", "noise", "all"]


def test_binary_metrics_and_thresholds_run_on_the_host():
    scores, labels = torch.zeros(2, 10, device=META), torch.zeros(10, dtype=torch.long, device=META)
    with MetaAccelerator() as acc:
        metrics = binary_metrics_stacked(labels, scores)
        threshold = best_f1_threshold(labels, scores)
    assert acc.float64_ops == [] and metrics["acc"].shape == (2,)
    assert threshold.is_meta and threshold.shape == (2,)


def test_resampling_weights_stay_on_the_host():
    labels = torch.zeros(10, dtype=torch.long, device=META)
    with MetaAccelerator() as acc:
        data = strategy_data("resample", torch.arange(10, device=META), labels, 4.0)
    assert acc.float64_ops == [] and data.sample_weights.device.type == "cpu"


def test_adam_counters_live_where_the_kernel_reads_them():
    assert fused_adam(torch.device("cpu")) and fused_adam(torch.device("cuda"))
    assert not fused_adam(torch.device("mps"))  # foreach: it would .item() device counters every call
    assert all(c.device.type == "cpu" for c in adam_step_counters(3, torch.device("mps")))
    assert [c.device for c in adam_step_counters(2, META)] == [torch.device("cpu")] * 2


def test_schedule_tables_go_to_the_device_once():
    scheduler = make_scheduler("linear", 10)
    x = torch.zeros(4, 2, device=META)
    t = torch.zeros(4, dtype=torch.long, device=META)
    with MetaAccelerator() as first:
        scheduler.add_noise(x, x, t)
        scheduler.step(x, t, x, noise=x)
    with MetaAccelerator() as later:
        scheduler.add_noise(x, x, t)
        scheduler.step(x, t, x, noise=x)
    assert first.uploads > 0 and later.uploads == 0
    assert scheduler.betas.device.type == "cpu"  # the public tables stay where they were


def test_ddpm_training_draws_and_steps_without_copies_to_the_device():
    def uploads(steps: int) -> int:
        model = NoiseModel(2, 10, hidden=8, depth=1).to(META)
        with MetaAccelerator() as acc:
            train_ddpm(model, make_scheduler("linear", 10), torch.zeros(32, 2, device=META), steps=steps,
                       batch_size=8, progress=False)  # no generator: every draw on the device
        assert acc.float64_ops == []
        return acc.uploads

    assert uploads(9) == uploads(3)
