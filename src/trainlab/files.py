"""Writing files safely: atomic replace, JSONL append and read, JSON-ready values.

A leaf module: it imports nothing of trainlab, so the run folder (runs.py), the
report renderer (report/html.py), sweeps and the tour can all use it without
importing each other.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Mapping


def _umask() -> int:
    # Linux shows the umask in /proc; elsewhere it can only be read by setting it and
    # setting it straight back (trainlab starts no threads that create files meanwhile).
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def not_a_file(path: Path | str) -> str | None:
    """Why ``path`` cannot be read as a file (``does not exist``, ``is a folder, not a file``), or None.

    Callers put it in their one-line error, so a folder given where a file belongs is named as
    a folder instead of being reported missing.
    """
    path = Path(path)
    if path.is_file():
        return None
    if path.is_dir():
        return "is a folder, not a file"
    return "does not exist"


@contextmanager
def atomic_file(path: Path | str) -> Iterator[BinaryIO]:
    """A binary file to write ``path`` through: a temp file in the same folder, moved onto
    ``path`` with ``os.replace`` when the block ends, and removed if it raises.

    A reader sees the old file or the new one, never half of one, and a caller that finds
    its data wrong (a download's checksum) raises inside the block to leave ``path`` as it
    was. The file gets the permissions an ordinary ``open`` would give it (0666 minus the
    umask, 0644 under the usual umask 022): mkstemp's 0600 would hide every run folder
    written to a shared ``--out``, and every cached dataset, from the other users of a cluster.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fchmod(fh.fileno(), 0o666 & ~_umask())
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: Path | str, data: bytes | str) -> None:
    """Write ``data`` to ``path`` whole or not at all (:func:`atomic_file`)."""
    with atomic_file(path) as fh:
        fh.write(data.encode() if isinstance(data, str) else data)


def atomic_copy(source: Path | str, path: Path | str) -> None:
    """Copy ``source`` to ``path`` whole or not at all, streamed, with the umask's permissions
    (not the source's, as ``shutil.copy`` would give)."""
    with open(source, "rb") as src, atomic_file(path) as fh:
        shutil.copyfileobj(src, fh, 1 << 20)


def append_jsonl(path: Path | str, record: Mapping[str, Any]) -> None:
    """Append one JSON line and flush it to disk (a killed process loses nothing written).

    The line starts on a line of its own even after a torn last line (a writer killed
    mid-line), which readers skip; a write that fails (a full disk) is cut off again, so
    the file never ends in half a record of ours.
    """
    line = (json.dumps(jsonable(record), sort_keys=False) + "\n").encode()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)  # the umask applies, as for open()
    try:
        size = os.lseek(fd, 0, os.SEEK_END)
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line
        try:
            _write_all(fd, line)
            os.fsync(fd)
        except OSError:
            _cut(fd, size)
            raise
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _cut(fd: int, size: int) -> None:
    try:
        os.ftruncate(fd, size)
    except OSError:  # the record stays torn; readers skip it
        pass


def read_jsonl(path: Path | str) -> list[dict[str, Any]]:
    """The JSON objects of a JSONL file, skipping torn or damaged lines (a killed writer's last line)."""
    if not Path(path).exists():
        return []
    records = (jsonl_record(line) for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines())
    return [record for record in records if record is not None]


def jsonl_record(line: str) -> dict[str, Any] | None:
    """One JSONL line's object, or None for a blank, torn or damaged line (which readers skip)."""
    if not line.strip():
        return None
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def read_json(path: Path | str, default: Any = None) -> Any:
    """The JSON in ``path``, or ``default`` when the file is missing or damaged."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return default


def jsonable(value: Any) -> Any:
    """Convert NumPy/torch scalars and arrays, tuples and paths to JSON types; NaN -> None."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):  # numpy / torch scalars and arrays
        return jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
