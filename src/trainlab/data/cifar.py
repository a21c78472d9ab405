"""CIFAR-10 from its python tarball, read without trusting the pickles.

The release is ``cifar-10-python.tar.gz`` holding ``cifar-10-batches-py/`` with
``data_batch_1`` .. ``data_batch_5`` (10000 images each), ``test_batch`` (10000)
and ``batches.meta``. Each batch is a Python pickle of a dict whose ``data`` is a
uint8 array (N, 3072) -- 1024 red, then 1024 green, then 1024 blue values, rows
top to bottom -- and whose ``labels`` is a list of N ints in 0..9.

Images are returned channels-last, uint8 ``(N, 32, 32, 3)``: the layout
matplotlib shows directly and the one torchvision's ``CIFAR10.data`` uses;
grayscale datasets are ``(N, H, W)``. ``images.image_tensor`` makes either
``(N, C, H, W)`` on a device for convolutions.

Lookup order, first hit wins (as for the IDX datasets in ``sources``):
  1. an explicit ``data_dir``: the extracted ``cifar-10-batches-py/`` folder, a folder
     holding it or the tarball (or either under ``DIR/cifar10/``); a tarball there is
     extracted into a temporary folder, read and removed (the user's folder is not written);
  2. the cache: ``$TRAINLAB_DATA/cifar10/`` or ``~/.cache/trainlab/cifar10/`` (see ``sources``);
  3. a download of the tarball, kept only once SHA-256 verified, then extracted into the cache;
  4. a DataError saying what to put where.

Several processes. Extracting or downloading into the cache happens under
``sources.cache_lock`` (the first process fills the cache, the others wait and read it),
and a folder enters the cache by one rename, whole. A ``cifar-10-batches-py/`` already
in the cache that reads is never deleted or replaced: another process may be reading it
(data-parallel ranks and Ray trials share one cache). Only a folder that does not read
(a partial copy, useless to everyone) is replaced by a good one.

Safety. Batches are read with :class:`~trainlab.data.safe_pickle.RestrictedUnpickler`,
which builds data only and refuses every global that could run code. Tar
members must stay inside ``cifar-10-batches-py/`` and pass tarfile's ``data``
filter (no absolute paths, ``..``, links out of the folder or device files).
"""

from __future__ import annotations

import io
import lzma
import os
import pickle
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from trainlab.data.safe_pickle import RestrictedUnpickler
from trainlab.data.sources import cache_dir, cache_lock, download_file
from trainlab.errors import DataError
from trainlab.files import atomic_copy

NAME = "cifar10"
ARCHIVE = "cifar-10-python.tar.gz"
FOLDER = "cifar-10-batches-py"
SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
MIRRORS = ("https://www.cs.toronto.edu/~kriz/",)
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META = "batches.meta"
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SIDE = 32
ROW = 3 * SIDE * SIDE  # 3072 values per image in a batch's "data"


# --------------------------------------------------------------------------- pickles
def safe_unpickle(stream: BinaryIO, where: str) -> Any:
    """Load one pickle with :class:`RestrictedUnpickler`; anything refused or broken is a DataError."""
    try:
        obj = RestrictedUnpickler(stream, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, MemoryError, OverflowError, UnicodeDecodeError) as exc:
        raise DataError(f"{where}: not a CIFAR-10 batch pickle or not safe to load ({exc})") from None
    return obj


def _check_arrays(obj: Any, where: str) -> None:
    if isinstance(obj, np.ndarray) and obj.dtype.hasobject:
        raise DataError(f"{where}: array of Python objects; CIFAR-10 batches hold uint8 pixels only")
    if isinstance(obj, dict):
        for value in obj.values():
            _check_arrays(value, where)


# --------------------------------------------------------------------------- batches
def read_meta(path: Path, where: str | None = None) -> dict[str, Any]:
    """``batches.meta``: ``label_names`` (10 strings) and ``num_cases_per_batch``; errors name ``where`` or ``path``."""
    where = where or str(path)
    with open(path, "rb") as f:
        meta = safe_unpickle(f, where)
    if not isinstance(meta, dict) or "label_names" not in meta:
        raise DataError(f"{where}: expected a dict with 'label_names' (the 10 class names)")
    names = meta["label_names"]
    if not isinstance(names, list) or len(names) != len(CLASS_NAMES) or not all(isinstance(n, str) for n in names):
        raise DataError(f"{where}: expected 'label_names' to be a list of {len(CLASS_NAMES)} strings, "
                        f"found {type(names).__name__} of {len(names) if hasattr(names, '__len__') else '?'}")
    count = meta.get("num_cases_per_batch")
    if count is not None and (not isinstance(count, int) or count < 1):
        raise DataError(f"{where}: 'num_cases_per_batch' should be a positive int, found {count!r}")
    return meta


def read_batch(path: Path, expected_count: int | None = None, where: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One batch file -> (uint8 images (N, 32, 32, 3), int64 labels (N,)), fully checked; errors name ``where``."""
    where = where or str(path)
    with open(path, "rb") as f:
        batch = safe_unpickle(f, where)
    if not isinstance(batch, dict) or not {"data", "labels"} <= set(batch):
        found = sorted(map(str, batch)) if isinstance(batch, dict) else type(batch).__name__
        raise DataError(f"{where}: expected a dict with keys 'data' and 'labels', found {found}")
    _check_arrays(batch, where)
    data, labels = batch["data"], batch["labels"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != ROW:
        shape = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{where}: expected 'data' to be a uint8 array of shape (N, {ROW}), found {shape}")
    if len(data) == 0:  # an empty split would fail much later, far from the file, as a NaN or an empty batch
        raise DataError(f"{where}: holds 0 images; a CIFAR-10 batch holds 10000, re-download {ARCHIVE}")
    try:
        labels = np.asarray(labels)
    except (TypeError, ValueError):
        labels = np.asarray([], dtype=object)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DataError(f"{where}: expected 'labels' to be a list of ints, found {labels.dtype} {labels.shape}")
    if len(labels) != len(data):
        raise DataError(f"{where}: 'data' holds {len(data)} images but 'labels' holds {len(labels)} labels")
    if expected_count is not None and len(data) != expected_count:
        raise DataError(f"{where}: holds {len(data)} images, expected {expected_count} "
                        f"(num_cases_per_batch in {META})")
    if labels.size and (labels.min() < 0 or labels.max() >= len(CLASS_NAMES)):
        raise DataError(f"{where}: labels must lie in 0..{len(CLASS_NAMES) - 1}, found {labels.min()}..{labels.max()}")
    images = data.reshape(-1, 3, SIDE, SIDE).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels.astype(np.int64)


def missing_files(folder: Path) -> list[str]:
    return [name for name in (META, *TRAIN_BATCHES, TEST_BATCH) if not (folder / name).is_file()]


def read_folder(folder: Path, archive: Path | None = None) -> dict[str, Any]:
    """Read an extracted ``cifar-10-batches-py`` folder: train/test arrays and class names.

    Errors name ``archive`` and its member if ``folder`` is its temporary extraction (a path soon gone)."""
    def where(name: str) -> str:
        return f"{archive} (member {FOLDER}/{name})" if archive else str(folder / name)

    missing = missing_files(folder)
    if missing:
        holder = f"{archive} lacks members" if archive else f"{folder} lacks"
        raise DataError(f"{holder} {', '.join(missing)}; it should be the extracted {FOLDER}/ of {ARCHIVE}")
    meta = read_meta(folder / META, where(META))
    count = meta.get("num_cases_per_batch")
    train = [read_batch(folder / name, count, where(name)) for name in TRAIN_BATCHES]
    test_images, test_labels = read_batch(folder / TEST_BATCH, where=where(TEST_BATCH))
    return {
        "train_images": np.concatenate([images for images, _ in train]),
        "train_labels": np.concatenate([labels for _, labels in train]),
        "test_images": test_images,
        "test_labels": test_labels,
        "class_names": list(meta["label_names"]),
    }


# --------------------------------------------------------------------------- archives
def extract_archive(archive: Path, dest: Path) -> Path:
    """Extract ``archive`` into ``dest`` and return ``dest/cifar-10-batches-py``.

    Every member must lie under ``cifar-10-batches-py/`` and pass tarfile's
    ``data`` filter; on any refusal or error nothing is left in ``dest``
    (extraction goes to a temporary folder that is renamed at the end). Files
    and folders get the umask's permissions (as every file trainlab writes), not the archive's.
    A folder already there that reads is kept (see :func:`_install`).
    """
    dest.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=dest, prefix=".extract-"))
    try:
        try:
            with _open_tar(archive) as tar:
                members = tar.getmembers()
                for member in members:
                    top = Path(member.name).parts[:1]
                    if top != (FOLDER,) or ".." in Path(member.name).parts:
                        raise DataError(f"{archive}: refused member {member.name!r}; "
                                        f"every member must lie inside {FOLDER}/")
                # the "data" filter, then mode=None: nothing is chmod-ed to the archive's modes
                tar.extractall(staging, members=members,
                               filter=lambda member, path: tarfile.data_filter(member, path).replace(mode=None))
                while tar.fileobj.read(1 << 20):  # gzip checks its CRC only at the end, which tarfile never reads
                    pass
        except tarfile.FilterError as exc:
            raise DataError(f"{archive}: refused member ({_one_line(exc)})") from None
        except (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
            raise DataError(f"{archive}: not a readable tar.gz archive ({_one_line(exc)}); "
                            f"re-download {ARCHIVE}") from None
        if not (staging / FOLDER).is_dir():
            raise DataError(f"{archive}: holds no {FOLDER}/ folder; is it {ARCHIVE}?")
        return _install(staging / FOLDER, dest / FOLDER)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _install(staged: Path, target: Path) -> Path:
    """Put the complete folder ``staged`` at ``target`` by one rename (a reader sees all of it or none).

    A folder already at ``target`` that reads is kept, and ``staged`` is left for the caller
    to delete: another process may be reading it, and deleting a folder under a reader is how
    data-parallel ranks failed with ``FileNotFoundError``. One that does not read is useless to
    every process and is replaced (moved aside first: ``os.replace`` cannot overwrite a folder).
    """
    if target.exists():
        try:
            read_folder(target)
            return target
        except DataError:
            pass
        aside = Path(tempfile.mkdtemp(dir=target.parent, prefix=".replaced-"))
        os.replace(target, aside / FOLDER)
        os.replace(staged, target)
        shutil.rmtree(aside, ignore_errors=True)
        return target
    os.replace(staged, target)
    return target


def _open_tar(archive: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(archive, "r:*")
    except tarfile.ReadError:  # its own text lists every compression tried, one per line
        raise DataError(f"{archive}: not a tar archive (neither gzip, bzip2, xz nor plain tar); "
                        f"re-download {ARCHIVE}") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _folder_in(root: Path) -> Path | None:
    """The batches folder at or directly under ``root`` (or under ``root/cifar10``), if any."""
    for candidate in (root, root / FOLDER, root / NAME, root / NAME / FOLDER):
        if (candidate / META).is_file() or (candidate.name == FOLDER and candidate.is_dir()):
            return candidate
    return None


def _archive_in(root: Path) -> Path | None:
    for candidate in (root / ARCHIVE, root / NAME / ARCHIVE):
        if candidate.is_file():
            return candidate
    return None


def where_to_put() -> str:
    return (f"put {ARCHIVE} (or its extracted {FOLDER}/) in a folder and pass data_dir=DIR, "
            f"or into $TRAINLAB_DATA/{NAME}/ (now {cache_dir(NAME)}), "
            f"or run `trainlab data fetch {NAME}` where the internet is reachable")


def download(dest: Path | None = None, *, mirrors: Sequence[str] | None = None, sha256: str | None = None) -> Path:
    """Download the tarball into ``dest`` (the cache), verify it, extract it, delete it; return the folder.

    Into the cache, hold ``sources.cache_lock`` around it (:func:`load_cifar10` does)."""
    dest = cache_dir(NAME) if dest is None else Path(dest)
    failures = []
    for base in mirrors if mirrors is not None else MIRRORS:
        url = base.rstrip("/") + "/" + ARCHIVE
        try:
            archive = download_file(url, dest / ARCHIVE, sha256 or SHA256)
            break
        except DataError:
            failures.append(f"{url} (checksum mismatch, deleted)")
        except (OSError, ValueError) as exc:  # URLError is an OSError
            failures.append(f"{url} ({getattr(exc, 'reason', None) or exc})")
    else:
        raise DataError(f"could not download {ARCHIVE}: {'; '.join(failures)}; instead {where_to_put()}")
    try:
        return extract_archive(archive, dest)
    finally:
        archive.unlink(missing_ok=True)


def load_cifar10(
    data_dir: str | os.PathLike | None = None,
    *,
    download_ok: bool = True,
    mirrors: Sequence[str] | None = None,
    sha256: str | None = None,
) -> tuple[dict[str, Any], str]:
    """The arrays of CIFAR-10 (see :func:`read_folder`) and a note on where they came from."""
    if data_dir is not None:
        root = Path(data_dir).expanduser()
        if not root.is_dir():
            raise DataError(f"data_dir={root} is not a folder; point it at the folder holding {ARCHIVE} or {FOLDER}/")
        folder = _folder_in(root)
        if folder is not None:
            return read_folder(folder), f"{folder} (data_dir)"
        archive = _archive_in(root)
        if archive is None:
            raise DataError(f"data_dir={root} holds neither {ARCHIVE} nor {FOLDER}/")
        with tempfile.TemporaryDirectory(prefix="trainlab-cifar-") as tmp:
            return read_folder(extract_archive(archive, Path(tmp)), archive), f"{archive} (data_dir)"

    cached = cache_dir(NAME)
    if (cached / FOLDER).is_dir():  # read without the lock: a folder in the cache is whole and stays
        return read_folder(cached / FOLDER), f"{cached / FOLDER} (cache)"
    if not download_ok and not (cached / ARCHIVE).is_file():
        raise DataError(f"{NAME} not found (download disabled): {where_to_put()}")
    with cache_lock(NAME) as cached:
        if (cached / FOLDER).is_dir():  # another process filled the cache while this one waited
            origin = f"{cached / FOLDER} (cache)"
        elif (cached / ARCHIVE).is_file():  # put there by hand: extract once, keep the folder
            extract_archive(cached / ARCHIVE, cached)
            origin = f"{cached / ARCHIVE} (cache, extracted)"
        else:
            origin = f"{download(cached, mirrors=mirrors, sha256=sha256)} (downloaded)"
    return read_folder(cached / FOLDER), origin


def fetch_cifar10(data_dir: str | os.PathLike | None = None, **kw: Any) -> Path:
    """Make sure the cache holds a checked ``cifar-10-batches-py/``; return that folder.

    From ``data_dir``, its copy goes into the cache unless the cache already holds one that reads."""
    target = cache_dir(NAME) / FOLDER
    if data_dir is None:
        if not target.is_dir():
            load_cifar10(None, **kw)
        return target
    root = Path(data_dir).expanduser()
    load_cifar10(root, download_ok=False)  # a broken copy fails here, before anything is copied
    folder, archive = _folder_in(root), _archive_in(root)
    with cache_lock(NAME) as cached:
        if folder is None:
            return extract_archive(archive, cached)
        if folder.resolve() != target.resolve():
            cached.mkdir(exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=cached, prefix=".copy-"))
            try:
                for name in (META, *TRAIN_BATCHES, TEST_BATCH):  # not copytree: it would copy the user's modes
                    atomic_copy(folder / name, staging / FOLDER / name)
                _install(staging / FOLDER, target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    return target


# --------------------------------------------------------------------------- writing (tests, tools)
def batch_bytes(images: np.ndarray, labels: Sequence[int], *, batch_label: str = "batch", protocol: int = 2) -> bytes:
    """A batch pickle in the release's layout from channels-last uint8 images (N, 32, 32, 3)."""
    images = np.asarray(images, dtype=np.uint8)
    data = np.ascontiguousarray(images.transpose(0, 3, 1, 2)).reshape(len(images), ROW)
    return pickle.dumps({"batch_label": batch_label, "labels": [int(v) for v in labels], "data": data,
                         "filenames": [f"img_{i}.png" for i in range(len(images))]}, protocol=protocol)


def write_archive(path: Path, batches: dict[str, bytes], *, meta: dict[str, Any] | None = None) -> Path:
    """Write a ``cifar-10-python.tar.gz``-shaped archive from ready-made member bytes (tests, tools)."""
    meta = meta if meta is not None else {"label_names": list(CLASS_NAMES), "num_vis": ROW,
                                          "num_cases_per_batch": None}
    members = {META: pickle.dumps(meta, protocol=2), **batches}
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name if "/" in name or name.startswith("..") else f"{FOLDER}/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return path
