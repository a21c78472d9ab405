"""An unpickler for data only: containers, strings, numbers and NumPy arrays, and nothing that runs code.

Unpickling runs whatever a pickle names, so pickles from elsewhere (CIFAR-10's batches)
are read with :class:`RestrictedUnpickler`, which builds only dicts, lists, tuples,
strings, bytes, numbers and NumPy arrays of plain dtypes, and refuses every other global
(``os.system``, ``builtins.eval``, ...; ``bytes`` only as ``bytes()``).
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError(f"array subtype {subtype!r} is not numpy.ndarray")
    return np.ndarray.__new__(np.ndarray, shape, _dtype(dtype))


def _dtype(*args: Any) -> np.dtype:
    dtype = np.dtype(*args)
    if dtype.hasobject:
        raise pickle.UnpicklingError(f"dtype {dtype} holds Python objects")
    return dtype


def _frombuffer(buffer: Any, dtype: Any, shape: Any, order: str) -> np.ndarray:
    array = np.frombuffer(buffer, dtype=_dtype(dtype)).reshape(shape, order=order)
    return array.copy()


def _empty_bytes(*args: Any) -> bytes:
    # Protocol 2 spells b"" as bytes(); any argument (bytes(10**12) allocates) is refused.
    if args:
        raise pickle.UnpicklingError(f"bytes{args!r}")
    return b""


def _encode(text: str, encoding: str = "latin1") -> bytes:
    # Protocol-2 pickles written by Python 3 spell bytes as _codecs.encode(str, "latin1").
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


_NUMPY_MODULES = ("numpy.core.multiarray", "numpy._core.multiarray", "numpy.core.numeric", "numpy._core.numeric")


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler for data only: containers, strings, numbers and NumPy arrays.

    Containers and scalars need no globals; arrays need ``numpy.ndarray``,
    ``numpy.dtype`` and NumPy's reconstruct helpers, which are replaced by
    checked versions (no subclasses, no object dtypes). Any other global raises
    ``pickle.UnpicklingError`` before it is imported.
    """

    _ALLOWED: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): _dtype,
        ("_codecs", "encode"): _encode,
        ("__builtin__", "bytes"): _empty_bytes,
        ("builtins", "bytes"): _empty_bytes,
        **{(module, "_reconstruct"): _reconstruct for module in _NUMPY_MODULES if "multiarray" in module},
        **{(module, "_frombuffer"): _frombuffer for module in _NUMPY_MODULES if "numeric" in module},
    }

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refused global {module}.{name}") from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refused persistent id")
