"""The one size check for models: a model is sized on the meta device before it is built.

``hidden=1000000000`` or a checkpoint description with ``channels`` of 10**8 must be
refused in one line, not end in a 3 TB allocation, a traceback or the OOM killer.
Rather than a limit per field, :func:`size_checked` builds the model once on PyTorch's
``meta`` device (shapes only, no memory), adds up its parameters and buffers, and
compares what training needs with the memory the machine has
(:func:`trainlab.device.check_allocation`); only then is the real model built.
"""

from __future__ import annotations

import functools
import itertools
from typing import Any, TypeVar

import torch
from torch import nn

from trainlab.device import check_allocation
from trainlab.errors import ConfigError

M = TypeVar("M", bound=type)

TRAINING_COPIES = 4
"""Copies of every parameter training holds: the weights, their gradients and Adam's two moments."""


def tensor_bytes(model: nn.Module) -> int:
    """Bytes of ``model``'s parameters and buffers (works on meta-device models)."""
    return sum(t.numel() * t.element_size() for t in itertools.chain(model.parameters(), model.buffers()))


def size_checked(cls: M) -> M:
    """Class decorator: every ``cls(...)`` is first built on the meta device and refused with a
    one-line :class:`ConfigError` when training it would not fit in the host's free memory."""
    build = cls.__init__

    @functools.wraps(build)
    def __init__(self: nn.Module, *args: Any, **kwargs: Any) -> None:
        if not torch.empty(0).is_meta:  # the probe itself (and models built on meta) are not probed again
            with torch.device("meta"):
                probe = cls(*args, **kwargs)
            count = sum(p.numel() for p in probe.parameters())
            check_allocation(TRAINING_COPIES * tensor_bytes(probe),
                             f"{cls.__name__} with {count:,} parameters (weights, gradients, Adam's moments)",
                             error=ConfigError, fix="choose smaller sizes")
        build(self, *args, **kwargs)

    cls.__init__ = __init__
    return cls
