"""IDX files (the MNIST format): read and write, gzip-compressed or raw.

Layout (http://yann.lecun.com/exdb/mnist/): two zero bytes, one byte naming
the element type, one byte giving the number of dimensions, then each
dimension as a big-endian uint32, then the elements in C order, big-endian.
Whether a file is gzip-compressed is decided by its first two bytes, never by
its name: Debian, Kaggle and hand-made copies do not agree on suffixes.
"""

from __future__ import annotations

import gzip as gzip_module
import math
import os
import tempfile
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from trainlab.device import check_allocation
from trainlab.errors import DataError

GZIP_MAGIC = b"\x1f\x8b"
MAX_DIMS = 32
"""More dimensions than any IDX data has, and the most every NumPy version holds."""

# IDX type byte -> big-endian NumPy dtype
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_TYPE_CODES = {dt.newbyteorder("="): code for code, dt in IDX_DTYPES.items()}


def is_gzip(path: str | os.PathLike) -> bool:
    """True when the file starts with the gzip magic bytes."""
    with open(path, "rb") as f:
        return f.read(2) == GZIP_MAGIC


def open_maybe_gzip(path: str | os.PathLike) -> BinaryIO:
    """Open for binary reading, decompressing on the fly if the file is gzip."""
    if is_gzip(path):
        return gzip_module.open(path, "rb")
    return open(path, "rb")


def _read_exactly(f: BinaryIO, buf: memoryview) -> int:
    """Fill ``buf`` from ``f``; returns how many bytes were read (less at EOF)."""
    done = 0
    while done < len(buf):
        n = f.readinto(buf[done:])
        if not n:
            break
        done += n
    return done


def _read_shape(f: BinaryIO, path: Path, head: bytes) -> tuple[tuple[int, ...], np.dtype]:
    """The element type and dimensions the header declares, after the 4 magic bytes ``head``."""
    code, ndim = head[2], head[3]
    if code not in IDX_DTYPES:
        raise DataError(
            f"{path}: unsupported IDX element type 0x{code:02x} "
            f"(known: {', '.join(f'0x{c:02x}' for c in IDX_DTYPES)})"
        )
    if not 1 <= ndim <= MAX_DIMS:
        raise DataError(f"{path}: IDX header declares {ndim} dimensions; IDX data has 1 to {MAX_DIMS}")
    dims_raw = f.read(4 * ndim)
    if len(dims_raw) < 4 * ndim:
        raise DataError(f"{path}: truncated IDX header ({ndim} dimensions declared)")
    return tuple(int(d) for d in np.frombuffer(dims_raw, dtype=">u4")), IDX_DTYPES[code]


def _check_size(path: Path, header_bytes: int, nbytes: int) -> None:
    """Refuse a header whose data the file cannot hold, or the machine cannot, before allocating.

    A raw file's size is known; a gzip stream is first decompressed and counted (never
    kept), after checking memory so that a small bomb costs no more than its header asks.
    """
    compressed = is_gzip(path)
    if not compressed:
        _compare_sizes(path, nbytes, path.stat().st_size - header_bytes)
    check_allocation(nbytes, f"{path}: IDX data", error=DataError)
    if compressed:
        _compare_sizes(path, nbytes, _gzip_size(path, header_bytes + nbytes + 1) - header_bytes)


def _compare_sizes(path: Path, declared: int, found: int) -> None:
    if found < declared:
        raise DataError(f"{path}: truncated IDX file (its header declares {declared} data bytes, "
                        f"it holds {max(found, 0)}); re-download it")
    if found > declared:
        raise DataError(f"{path}: IDX file is longer than its header says ({declared} data bytes declared); "
                        "re-download it")


def _gzip_size(path: Path, limit: int) -> int:
    """How many bytes the gzip file decompresses to, counting at most ``limit`` of them, in 1 MiB chunks."""
    total = 0
    with gzip_module.open(path, "rb") as g:
        while total < limit:
            chunk = g.read(min(1 << 20, limit - total))
            if not chunk:
                break
            total += len(chunk)
    return total


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzip or raw) into a native-byte-order, writable array.

    Raises DataError naming the file for a wrong magic number, an unknown type
    byte, a truncated or over-long file, or a corrupt gzip stream.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        with open_maybe_gzip(path) as f:
            head = f.read(4)
            if len(head) < 4:
                raise DataError(f"{path}: truncated IDX file ({len(head)} bytes, header needs 4)")
            if head[0] != 0 or head[1] != 0:
                raise DataError(
                    f"{path}: not an IDX file (magic bytes {head[:2].hex()}, expected 0000); "
                    "re-download it or use the original *-idx?-ubyte file"
                )
            shape, dtype = _read_shape(f, path, head)
            nbytes = math.prod(shape) * dtype.itemsize
            _check_size(path, 4 + 4 * len(shape), nbytes)
            # Read straight into the final buffer: no intermediate bytes copy of a 47 MB file.
            out = np.empty(shape, dtype=dtype)
            got = _read_exactly(f, memoryview(out.reshape(-1).view(np.uint8))) if out.nbytes else 0
            if got < out.nbytes:
                raise DataError(
                    f"{path}: truncated IDX file (shape {shape} needs {out.nbytes} data bytes, found {got})"
                )
            if f.read(1):
                raise DataError(f"{path}: IDX file is longer than its header {shape} says")
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError
        raise DataError(f"{path}: corrupt or truncated gzip stream ({e})") from e
    # Callers want native byte order; for one-byte types this is free (no copy).
    return out.astype(dtype.newbyteorder("="), copy=False)


def idx_bytes(array: np.ndarray) -> bytes:
    """The uncompressed IDX encoding of ``array``."""
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in _TYPE_CODES:
        raise ValueError(f"IDX cannot store dtype {array.dtype}; use uint8, int8, int16, int32, float32 or float64")
    if not 1 <= array.ndim <= MAX_DIMS:
        raise ValueError(f"IDX needs 1..{MAX_DIMS} dimensions, got {array.ndim}")
    if any(d >= 2**32 for d in array.shape):
        raise ValueError(f"IDX dimensions must fit in uint32, got {array.shape}")
    code = _TYPE_CODES[native]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()


def write_idx(path: str | os.PathLike, array: np.ndarray, gzip: bool = True) -> Path:
    """Write ``array`` as an IDX file, gzip-compressed by default; atomic (temp + rename).

    The gzip header carries no timestamp or name, so equal arrays give equal bytes.
    """
    path = Path(path)
    payload = idx_bytes(array)
    if gzip:
        payload = gzip_module.compress(payload, compresslevel=6, mtime=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
