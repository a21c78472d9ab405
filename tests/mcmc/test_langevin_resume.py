"""A sampling stopped at a chunk boundary and continued from its snapshot ends as an uninterrupted one."""

import json

import pytest
import torch

from trainlab.resume import MANIFEST, STATE_DIR, STOP_AFTER, RunSnapshots
from trainlab.mcmc.langevin import sample

# 20 burn-in steps (step size adapting for MALA), then 15 samples 2 steps apart: 50 steps, and
# a snapshot may be taken every 7: after steps 7 and 14 (adapting), 21 (step frozen), ..., 49,
# then the finished one (8 saves).
SETTINGS = dict(tau=0.3, burn_in=20, n_samples=15, thin=2, chunk=7)


def banana(x):
    """A curved, non-Gaussian energy (so no step is a linear map of the last)."""
    return 0.5 * x[:, 0] ** 2 + 2.0 * (x[:, 1] - 0.5 * x[:, 0] ** 2) ** 2 + 0.5 * (x[:, 2:] ** 2).sum(1)


def _sample(method, snapshot=None, seed=0, calls=None):
    def energy(x):
        if calls is not None:
            calls.append(len(x))
        return banana(x)

    x0 = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))
    generator = torch.Generator().manual_seed(seed)
    result = sample(energy, x0, method=method, adapt=method == "mala", generator=generator, snapshot=snapshot,
                    **SETTINGS)
    return result, torch.rand(3, generator=generator)  # what the caller's generator draws next


def _same(a, b):
    for name in ("samples", "energy", "accept_rate", "burn_in_accept_rate"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert a.tau == b.tau


@pytest.mark.parametrize("method,stop_after", [("mala", 1), ("mala", 3), ("mala", 6), ("ula", 2), ("mala", 8)])
def test_a_sampling_stopped_at_a_chunk_boundary_continues_to_the_same_chains(tmp_path, monkeypatch, method,
                                                                               stop_after):
    expected, expected_next = _sample(method)
    monkeypatch.setenv(STOP_AFTER, str(stop_after))
    with pytest.raises(KeyboardInterrupt):
        _sample(method, RunSnapshots(tmp_path, every_s=0).slot("chains"))
    monkeypatch.delenv(STOP_AFTER)
    calls = []
    store = RunSnapshots(tmp_path, every_s=0)  # a new process: the folder is all it has
    resumed, resumed_next = _sample(method, store.slot("chains"), seed=5, calls=calls)  # another generator seed
    _same(resumed, expected)
    assert torch.equal(resumed_next, expected_next)  # the generator continues where the whole run left it
    steps_left = 50 - 7 * stop_after if stop_after < 8 else 0
    assert len(calls) == steps_left  # one energy evaluation per remaining step; none for a finished sampling
    assert store.load("chains").finished
    if method == "mala" and stop_after == 1:
        assert resumed.tau != SETTINGS["tau"]  # the adapted step came through the snapshot


def test_a_sampling_snapshots_only_when_its_slot_is_due(tmp_path):
    _sample("mala", RunSnapshots(tmp_path, every_s=3600).slot("chains"))
    manifest = json.loads((tmp_path / STATE_DIR / MANIFEST).read_text())
    assert manifest["count"] == 1 and manifest["files"] == {"chains": "chains-1"}  # only the finished one


def test_a_snapshot_of_another_sampling_is_refused(tmp_path):
    store = RunSnapshots(tmp_path, every_s=0)
    _sample("ula", store.slot("chains"))
    x0 = torch.zeros(6, 4)
    with pytest.raises(ValueError, match="another sampling"):
        sample(banana, x0, method="ula", tau=0.3, burn_in=20, n_samples=10, generator=torch.Generator(),
               snapshot=store.slot("chains"))
