"""Model checkpoints in a run folder, and loading them into another run (``from_run=RUN_DIR``).

A checkpoint is two files in ``<run>/checkpoints/``:

- ``<name>.pt``: the model's ``state_dict`` saved with ``torch.save``, nothing else, so
  plain PyTorch reads it too: ``model.load_state_dict(torch.load(path, weights_only=True))``;
- ``<name>.json``: what it takes to rebuild and check the model: its ``architecture``
  (the keyword arguments of its builder), the ``config`` of the run that trained it,
  and the shape of every tensor.

Loading never unpickles code: ``torch.load(weights_only=True)`` only, and the result
must be a mapping of names to tensors. Every mismatch (another architecture, a missing
or unexpected key, a tensor of another shape, a file that is not a state_dict) is a
one-line :class:`~trainlab.errors.ConfigError` or :class:`~trainlab.errors.DataError`
naming what differs.
"""

from __future__ import annotations

import dataclasses
import io
import json
import pickle
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from trainlab.errors import ConfigError, DataError

FOLDER = "checkpoints"
FORMAT = 1


def save_checkpoint(run: Any, name: str, model: nn.Module | Any, *, architecture: Mapping[str, Any],
                    config: Any = None, **extra: Any) -> Path:
    """Write ``checkpoints/<name>.pt`` (the state_dict) and ``<name>.json`` through ``run``.

    ``model`` is a module or anything else with a ``state_dict()`` of tensors (a Gaussian energy)
    or of NumPy arrays (the NumPy network: saved as tensors, so every checkpoint is one format;
    ``NeuralNetwork.from_state_dict(state, info["architecture"])`` takes them back, bit for bit).

    ``architecture`` holds plain values (numbers, strings, lists) that rebuild the model;
    ``config`` (a dataclass or mapping) is the training run's config, kept for reference;
    ``extra`` are further plain values to keep (for example the test loss).
    """
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else v.detach().cpu()
             for k, v in model.state_dict().items()}
    if dataclasses.is_dataclass(config):
        config = dataclasses.asdict(config)
    info = {
        "format": FORMAT,
        "name": name,
        "experiment": getattr(run, "experiment", None),
        "architecture": dict(architecture),
        "config": dict(config) if config is not None else None,
        "shapes": {k: list(v.shape) for k, v in state.items()},
        "torch": torch.__version__,
        **extra,
    }
    path = run.file(f"{FOLDER}/{name}.pt", state_dict_bytes(state))
    run.file(f"{FOLDER}/{name}.json", json.dumps(info, indent=2, default=str))
    return path


def state_dict_bytes(state: Mapping[str, torch.Tensor]) -> bytes:
    """``state`` as a ``.pt`` file's bytes: ``torch.save`` of a plain mapping of names to tensors."""
    buf = io.BytesIO()
    torch.save(dict(state), buf)
    return buf.getvalue()


def list_checkpoints(run_dir: str | Path) -> list[str]:
    """Names of the checkpoints in a run folder (``<name>.pt`` with its ``<name>.json``), sorted."""
    folder = Path(run_dir) / FOLDER
    return sorted(p.stem for p in folder.glob("*.pt") if p.with_suffix(".json").is_file())


def checkpoint_info(run_dir: str | Path, name: str) -> dict[str, Any]:
    """The ``<name>.json`` of a checkpoint: architecture, config, shapes and extras."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"from_run={run_dir} is not a folder; give the run folder that holds {FOLDER}/")
    path = run_dir / FOLDER / f"{name}.json"
    if not path.is_file() or not path.with_suffix(".pt").is_file():
        have = list_checkpoints(run_dir)
        raise ConfigError(f"from_run={run_dir} has no checkpoint {name!r} "
                          f"({'it has: ' + ', '.join(have) if have else f'it has no {FOLDER}/*.pt with their .json'})")
    try:
        info = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path} is not readable JSON ({exc}); re-run the experiment that wrote it") from None
    if not isinstance(info, dict) or not isinstance(info.get("architecture"), dict):
        raise DataError(f"{path} has no 'architecture' mapping; re-run the experiment that wrote it")
    return info


def read_state_dict(path: str | Path, label: str | None = None) -> dict[str, torch.Tensor]:
    """A state_dict from a ``.pt`` file, read with ``torch.load(weights_only=True)`` on the CPU.

    Files that hold pickled objects other than tensors and plain containers are refused,
    and so is anything that is not a mapping of names to tensors. ``label`` names the file
    in the one-line errors (default: its path; e.g. ``weights=PATH`` for a config field).
    """
    path = Path(path)
    label = label or str(path)
    if not path.is_file():
        raise DataError(f"{label} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, TypeError, AttributeError, OSError,
            zipfile.BadZipFile) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataError(f"{label} is not a plain state_dict "
                        f"(torch.load(weights_only=True) refused it: {first[:200]})") from None
    if not isinstance(state, Mapping) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                 for k, v in state.items()):
        raise DataError(f"{label} holds a {type(state).__name__}, not a state_dict (a mapping of names to tensors)")
    return dict(state)


def check_state_dict(model: nn.Module, state: Mapping[str, torch.Tensor], source: str,
                     model_name: str = "the model") -> None:
    """Raise a one-line DataError unless ``state`` has exactly ``model``'s keys and shapes.

    ``source`` names where the weights came from and ``model_name`` what they were meant
    for, e.g. ``"weights=alexnet.pth"`` and ``"torchvision's AlexNet"``.
    """
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}")
        if unexpected:
            parts.append(f"unexpected {', '.join(unexpected[:4])}{' ...' if len(unexpected) > 4 else ''}")
        raise DataError(f"{source} does not fit {model_name}: {'; '.join(parts)}")
    for key, tensor in expected.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise DataError(f"{source} does not fit {model_name}: {key} has shape {tuple(state[key].shape)}, "
                            f"{model_name} expects {tuple(tensor.shape)}")


def read_checkpoint(run_dir: str | Path, name: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The state_dict and the info of checkpoint ``name`` of ``run_dir``, both checked, no model built.

    For models rebuilt from their weights (``EnergyRegressor.from_state_dict``) or that are not
    modules (a Gaussian energy); :func:`load_checkpoint` loads into a model built from the info.
    """
    info = checkpoint_info(run_dir, name)
    return read_state_dict(Path(run_dir) / FOLDER / f"{name}.pt"), info


def load_checkpoint(run_dir: str | Path, name: str, model: nn.Module, *,
                    architecture: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Load checkpoint ``name`` of ``run_dir`` into ``model`` and return its info.

    With ``architecture``, every key given must equal the saved one (a ConfigError names
    the first that differs); then the state_dict's keys and shapes are checked against
    ``model`` before anything is copied into it.
    """
    info = checkpoint_info(run_dir, name)
    if architecture is not None:
        saved = info["architecture"]
        for key, want in architecture.items():
            have = saved.get(key)
            if _plain(have) != _plain(want):
                raise ConfigError(f"from_run={run_dir}: checkpoint {name!r} has {key}={have!r}, "
                                  f"this run asks for {key}={want!r}")
    path = Path(run_dir) / FOLDER / f"{name}.pt"
    state = read_state_dict(path)
    check_state_dict(model, state, str(path))
    model.load_state_dict(state)
    return info


def _plain(value: Any) -> Any:
    """Tuples as lists, so a description read back from JSON compares equal to the original."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value
