"""User tensor files (``.pt``): loaded with ``weights_only=True``, checked, one-line errors.

``load_tensor_file`` never unpickles arbitrary objects: a file holding a pickled
module or class is refused with the name of what it holds and how to save it
instead. ``load_energy_data`` reads the energy-based model study's test set: a
``.pt`` holding ``x`` ``(n, d)`` and ``energy`` ``(n, 1)`` (or ``(n,)``), as a dict
with those keys or as a tuple ``(x, energy)``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from trainlab.errors import DataError
from trainlab.files import not_a_file


def load_tensor_file(path: str | Path, what: str) -> Any:
    """``torch.load(path, weights_only=True)``, with every failure as one :class:`DataError` line."""
    path = Path(path).expanduser()
    problem = not_a_file(path)
    if problem:
        raise DataError(f"{what} file {path} {problem}; give an existing .pt file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # user input: any failure of the unpickler is a bad file
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        if found or "Weights only load failed" in str(exc):
            held = f"a pickled {found.group(1)}" if found else "pickled Python objects"
            raise DataError(f"{what} file {path} holds {held}, not only tensors; expected tensors saved with "
                            f"torch.save (for a model: torch.save(model.state_dict(), path))") from None
        raise DataError(f"{what} file {path} is not a torch file ({type(exc).__name__}); "
                        "expected a .pt written by torch.save") from None


def load_energy_data(path: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, energy)`` from a ``.pt`` holding them as a dict or a tuple: x ``(n, d)``, energy ``(n,)``."""
    obj = load_tensor_file(path, "data")
    if isinstance(obj, dict):
        missing = [k for k in ("x", "energy") if k not in obj]
        if missing:
            raise DataError(f"data file {path} lacks key(s) {', '.join(missing)}: expected a dict with 'x' "
                            f"(n, d) and 'energy' (n, 1); found keys {', '.join(map(str, obj)) or 'none'}")
        x, energy = obj["x"], obj["energy"]
    elif isinstance(obj, (tuple, list)) and len(obj) == 2:
        x, energy = obj
    else:
        kind = f"a {type(obj).__name__}" + (f" of length {len(obj)}" if isinstance(obj, (tuple, list)) else "")
        raise DataError(f"data file {path} holds {kind}; expected a dict {{'x', 'energy'}} or a tuple (x, energy)")
    for name, t in (("x", x), ("energy", energy)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            kind = f"{t.dtype} tensor" if isinstance(t, torch.Tensor) else type(t).__name__
            raise DataError(f"data file {path}: {name} must be a float tensor (found {kind})")
    if x.dim() != 2 or 0 in x.shape:
        raise DataError(f"data file {path}: x must be (n, d) with n, d >= 1 (found shape {tuple(x.shape)})")
    if energy.shape not in ((len(x),), (len(x), 1)):
        raise DataError(f"data file {path}: energy must be ({len(x)}, 1) to match x {tuple(x.shape)} "
                        f"(found shape {tuple(energy.shape)})")
    if not (torch.isfinite(x).all() and torch.isfinite(energy).all()):
        raise DataError(f"data file {path}: x and energy must be finite (found NaN or inf)")
    return x.float(), energy.reshape(-1).float()
