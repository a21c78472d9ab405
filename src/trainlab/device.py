"""Device choice and seeding."""

from __future__ import annotations

import random
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch

from trainlab.errors import ConfigError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; an explicit choice must be available."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name} asked for but CUDA is not available; use device=cpu or auto")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("device=mps asked for but MPS is not available; use device=cpu or auto")
    return torch.device(name)


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA) from one seed.

    torch's module initialisers draw from its global generator, so it has to be
    seeded; everything trainlab writes itself takes explicit generators, and the
    returned NumPy generator is the one recipes should use.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def torch_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch generator on ``device`` seeded with ``seed``."""
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    return gen


# Below this many FLOPs per optimizer step, a second intra-op thread cannot pay
# for its synchronisation. Worse, when another process holds the other core,
# OpenMP's spin-waiting makes each tiny step ~100x slower (measured: 0.6 ms
# with one thread against 56 ms with two for a 64-5-2 MLP at batch size 2).
SMALL_STEP_FLOPS = 2e7


@contextmanager
def thread_limit(n: int | None, device: torch.device | str = "cpu") -> Iterator[None]:
    """Run the block with at most ``n`` torch intra-op and BLAS/OpenMP threads, then restore.

    Only CPU work is limited: for another ``device``, or ``n=None``, nothing changes.
    Toy-size models gain nothing from intra-op threads, and on a shared machine a
    busy core makes every parallel op wait for its slowest thread (measured on 2
    shared cores: ddpm-cfg's quick profile 17-19 s with 2 threads, 1-1.7 s with 1).
    """
    if n is None or torch.device(device).type != "cpu":
        yield
        return
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    torch.set_num_threads(min(n, previous))
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        torch.set_num_threads(previous)


def threads_for_step(flops_per_step: float, device: torch.device) -> int | None:
    """One thread for small CPU steps, else torch's default (None)."""
    return 1 if device.type == "cpu" and flops_per_step < SMALL_STEP_FLOPS else None
