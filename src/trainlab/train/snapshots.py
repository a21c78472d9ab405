"""A training job's full state as one snapshot, so a stopped run continues where it stopped.

A trainer that takes a ``slot`` (:class:`SnapshotSlot`: where one job's snapshot lives)
first asks ``slot.load()``: a finished snapshot means the job is done (the trainer loads
its weights and result and returns at once), an unfinished one means it continues from
that epoch boundary. While training it saves at an epoch boundary whenever ``slot.due()``
and once more, ``finished``, at the end. The run folder provides the slots
(:mod:`trainlab.resume`); the library knows no folders.

A snapshot is plain tensors plus plain JSON, never a pickle: :func:`pack` splits nested
state (state dicts, optimizer state, counters, histories, NumPy arrays) into the two, and
:func:`unpack` joins them back. :func:`rng_states` / :func:`restore_rng` carry every random
source a trainer draws from, so the continued run draws what the uninterrupted one would.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

# Markers in the JSON half for values that JSON cannot hold by itself.
_TENSOR, _ARRAY, _ITEMS = "__tensor__", "__array__", "__items__"


@dataclass
class Snapshot:
    """One training job's state at an epoch boundary (or at its end)."""

    tensors: dict[str, torch.Tensor]
    """Every tensor of the state, on the CPU, by dotted path (saved as a plain state_dict)."""
    info: dict[str, Any]
    """Everything else as plain JSON, with markers where a tensor or array was."""
    finished: bool = False
    """Whether the job had ended: a resumed run takes its result instead of training again."""


class SnapshotSlot(Protocol):
    """Where one training job keeps its snapshot."""

    def load(self) -> Snapshot | None:
        """The job's last snapshot, or None when it has none (it starts from scratch)."""

    def due(self) -> bool:
        """Whether it is time to save (the run's ``checkpoint_every`` seconds have passed)."""

    def save(self, snapshot: Snapshot) -> None:
        """Keep ``snapshot`` as the job's state, atomically."""


def pack(finished: bool = False, **state: Any) -> Snapshot:
    """Nested ``state`` (dicts, lists, tensors, NumPy arrays, numbers, strings) as a :class:`Snapshot`."""
    tensors: dict[str, torch.Tensor] = {}

    def split(value: Any, path: str) -> Any:
        if isinstance(value, torch.Tensor):
            tensors[path] = value.detach().to("cpu", copy=True)
            return {_TENSOR: path}
        if isinstance(value, np.ndarray):
            tensors[path] = torch.from_numpy(np.array(value, copy=True))
            return {_ARRAY: path}
        if isinstance(value, dict):
            if all(isinstance(k, str) for k in value):
                return {k: split(v, f"{path}.{k}") for k, v in value.items()}
            # An optimizer's state is keyed by parameter index: keep the keys' types.
            return {_ITEMS: [[k, split(v, f"{path}.{k}")] for k, v in value.items()]}
        if isinstance(value, (list, tuple)):
            return [split(v, f"{path}.{i}") for i, v in enumerate(value)]
        if isinstance(value, (np.integer, np.floating, np.bool_)):
            return value.item()
        return value

    info = {key: split(value, key) for key, value in state.items()}
    return Snapshot(tensors, info, finished)


def unpack(snapshot: Snapshot) -> dict[str, Any]:
    """The nested state :func:`pack` was given (tuples come back as lists)."""

    def join(value: Any) -> Any:
        if isinstance(value, dict):
            if _TENSOR in value:
                return snapshot.tensors[value[_TENSOR]]
            if _ARRAY in value:
                return snapshot.tensors[value[_ARRAY]].numpy()
            if _ITEMS in value:
                return {k: join(v) for k, v in value[_ITEMS]}
            return {k: join(v) for k, v in value.items()}
        if isinstance(value, list):
            return [join(v) for v in value]
        return value

    return {key: join(value) for key, value in snapshot.info.items()}


def rng_states(*generators: torch.Generator | np.random.Generator) -> dict[str, Any]:
    """The state of ``generators`` and of the global ones (Python, NumPy, torch CPU and CUDA)."""
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(legacy=False),
        "torch": torch.get_rng_state(),
        "generators": [g.bit_generator.state if isinstance(g, np.random.Generator) else g.get_state()
                       for g in generators],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng(states: dict[str, Any], *generators: torch.Generator | np.random.Generator) -> None:
    """Put ``generators`` and the global ones back to :func:`rng_states`' ``states`` (after :func:`unpack`)."""
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    if len(states["generators"]) != len(generators):
        raise ValueError(f"the snapshot holds {len(states['generators'])} generators, {len(generators)} given")
    for gen, state in zip(generators, states["generators"]):
        if isinstance(gen, np.random.Generator):
            gen.bit_generator.state = state
        else:
            gen.set_state(state)


def training_snapshot(*, finished: bool, modules: dict[str, Any], generators: tuple = (), **state: Any) -> Snapshot:
    """A trainer's snapshot: the ``state_dict()`` of every one of ``modules`` (models, optimizers,
    anything with one), the RNG states (:func:`rng_states` of ``generators``) and ``state``."""
    return pack(finished=finished, modules={name: m.state_dict() for name, m in modules.items()},
                rng=rng_states(*generators), **state)


def resume_training(slot: SnapshotSlot | None, *, modules: dict[str, Any],
                    generators: tuple = ()) -> tuple[dict[str, Any], bool] | None:
    """Load ``slot``'s snapshot (if any) into ``modules`` and ``generators``: returns the rest of
    the state :func:`training_snapshot` was given and whether the job had finished, else None."""
    saved = slot.load() if slot is not None else None
    if saved is None:
        return None
    state = unpack(saved)
    for name, module in modules.items():
        module.load_state_dict(state["modules"][name])
    restore_rng(state.pop("rng"), *generators)
    del state["modules"]
    return state, saved.finished
