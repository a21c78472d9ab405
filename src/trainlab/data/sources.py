"""Where the IDX datasets (MNIST, Fashion-MNIST) come from.

Lookup order, first hit wins:
  1. an explicit ``data_dir`` (it must hold the four files; nothing else is tried);
  2. the cache: ``$TRAINLAB_DATA/<name>/`` when TRAINLAB_DATA is set, else
     ``~/.cache/trainlab/<name>/``;
  3. a system copy (Debian's ``dataset-fashion-mnist`` installs
     ``/usr/share/datasets/fashion-mnist/``; ``dpkg -L`` is asked if it moved);
  4. a download from the public mirrors into the cache, SHA-256 verified;
  5. a DataError listing the four files and where to put them.

``TRAINLAB_NO_SYSTEM_DATA=1`` hides what the caller did not name: the system
copies (3) and the default cache ``~/.cache/trainlab`` (2 then needs
``$TRAINLAB_DATA``). The test suite sets it, so that it passes or fails the same
on a machine with datasets installed as on a fresh one.

Files enter the cache through ``files.atomic_file``: whole and verified or not
at all, with the umask's permissions like every other file trainlab writes.

Several processes on one machine (data-parallel ranks, Ray trials, runs started side
by side) may find a dataset missing at once. Whatever fills the cache holds
:func:`cache_lock` (the kernel's file lock, next to the dataset's folder), then looks
again: the first process downloads, the others wait and find the files there. A cache
that already holds the dataset is read without the lock, so a read-only shared cache works.

Checksums. ``sha256`` is of the ``.gz`` files exactly as the mirrors serve
them (what a download must match). ``content_sha256`` is of the decompressed
IDX bytes: Debian re-compressed Fashion-MNIST when packaging it (its .gz
files differ from upstream's, the decompressed bytes are identical), so copies
from elsewhere are checked on their content.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from trainlab.data.idx import open_maybe_gzip
from trainlab.errors import ConfigError, DataError
from trainlab.files import atomic_file

HIDE_SYSTEM_DATA = "TRAINLAB_NO_SYSTEM_DATA"

# role -> standard file stem; each may be stored with or without ".gz"
IDX_FILES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
FILE_NAMES = tuple(f"{stem}.gz" for stem in IDX_FILES.values())


@dataclass(frozen=True)
class IdxSource:
    """One IDX dataset: its classes, where to download it and how to check it."""

    name: str
    class_names: tuple[str, ...]
    mirrors: tuple[str, ...]
    sha256: Mapping[str, str]
    content_sha256: Mapping[str, str]
    system_dirs: tuple[Path, ...] = ()
    system_package: str | None = None


SOURCES: dict[str, IdxSource] = {
    "mnist": IdxSource(
        name="mnist",
        class_names=tuple(str(d) for d in range(10)),
        # yann.lecun.com itself now mostly refuses downloads; these mirror it byte for byte.
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        # tensorflow-datasets' url checksums; t10k pair re-computed from /work/shared/data/mnist-t10k
        sha256={
            "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
        content_sha256={
            "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
    ),
    "fashion-mnist": IdxSource(
        name="fashion-mnist",
        class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                     "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
        ),
        # Upstream publishes MD5 only (8d4fb7e6..., 25c81989..., bef4ecab..., bb300cfd...);
        # these SHA-256 of the same .gz files are as listed by independent loaders.
        sha256={
            "train-images-idx3-ubyte.gz": "08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc",
            "train-labels-idx1-ubyte.gz": "b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc",
            "t10k-images-idx3-ubyte.gz": "78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229",
            "t10k-labels-idx1-ubyte.gz": "42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf",
        },
        # Re-computed from Debian's copy, whose decompressed MD5s equal the published ones.
        content_sha256={
            "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
        system_dirs=(Path("/usr/share/datasets/fashion-mnist"),),
        system_package="dataset-fashion-mnist",
    ),
}


@dataclass(frozen=True)
class Located:
    """The four files of one dataset and a human-readable note on where they came from."""

    folder: Path
    files: dict[str, Path]  # role -> path
    origin: str


def get_source(name: str) -> IdxSource:
    if name not in SOURCES:
        raise ConfigError(f"unknown IDX dataset {name!r}; known: {', '.join(sorted(SOURCES))}")
    return SOURCES[name]


def system_data_hidden() -> bool:
    """Whether ``$TRAINLAB_NO_SYSTEM_DATA`` hides the system copies and ``~/.cache/trainlab``."""
    return os.environ.get(HIDE_SYSTEM_DATA, "").strip() not in ("", "0")


def cache_root() -> Path:
    """``$TRAINLAB_DATA`` if set, else ``~/.cache/trainlab`` (unless hidden, see the module's docstring)."""
    env = os.environ.get("TRAINLAB_DATA")
    if env:
        return _folder_or_none_yet(Path(env).expanduser(), f"TRAINLAB_DATA={env}",
                                   "set TRAINLAB_DATA to a folder for the datasets")
    if system_data_hidden():
        raise DataError(f"{HIDE_SYSTEM_DATA}=1 hides ~/.cache/trainlab; set TRAINLAB_DATA=DIR "
                        f"to the folder for the datasets, or unset {HIDE_SYSTEM_DATA}")
    return _folder_or_none_yet(Path.home() / ".cache" / "trainlab", "the data cache ~/.cache/trainlab",
                              "move that file away or set TRAINLAB_DATA to a folder for the datasets")


def cache_dir(name: str) -> Path:
    root = cache_root()
    return _folder_or_none_yet(root / name, f"the {name} cache folder {root / name}", "move that file away")


@contextmanager
def cache_lock(name: str) -> Iterator[Path]:
    """Hold the cache of dataset ``name`` while the block fills it; yields its folder.

    One process at a time, across every process of the machine (and of the nodes sharing
    the cache's filesystem): the lock is ``.<name>.lock`` beside the dataset's folder,
    held through ``filelock`` (the kernel's flock, released if its holder dies, even by
    SIGKILL). The block should look for the files again before fetching them: another
    process may have put them there while this one waited.
    """
    from filelock import FileLock

    folder = cache_dir(name)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(folder.parent / f".{name}.lock"))
        lock.acquire()
    except OSError as exc:
        raise DataError(f"cannot lock the {name} cache in {folder.parent} ({exc.strerror or exc}); "
                        "set TRAINLAB_DATA to a folder you can write") from None
    try:
        yield folder
    finally:
        lock.release()


def _folder_or_none_yet(path: Path, what: str, fix: str) -> Path:
    """``path``, if it is a folder or can be made one; else a one-line DataError naming ``what`` and ``fix``.

    Checked here because a file in the way otherwise surfaces far from its cause,
    as "not found" or as a download failing with "Not a directory".
    """
    # os.path's tests answer False instead of raising on unreadable parents (one line, not a traceback)
    blocker = next((p for p in (path, *path.parents) if os.path.exists(p)), None)
    if blocker is not None and not os.path.isdir(blocker):
        raise DataError(f"{what} is not a folder ({blocker} is a file); {fix}")
    return path


def find_files(folder: Path) -> tuple[dict[str, Path], list[str]]:
    """The four files in ``folder`` (``.gz`` preferred, raw accepted) and the names missing."""
    found, missing = {}, []
    for role, stem in IDX_FILES.items():
        for candidate in (folder / f"{stem}.gz", folder / stem):
            if candidate.is_file():
                found[role] = candidate
                break
        else:
            missing.append(f"{stem}.gz")
    return found, missing


def where_to_put(name: str) -> str:
    return (f"put {', '.join(FILE_NAMES)} in a folder and pass data_dir=DIR, "
            f"or into $TRAINLAB_DATA/{name}/ (now {cache_dir(name)}), "
            f"or run `trainlab data fetch {name}` where the internet is reachable")


def _dpkg_dir(package: str) -> Path | None:
    """Ask dpkg where ``package`` put its train images; None if dpkg or the package is absent."""
    if shutil.which("dpkg") is None:
        return None
    try:
        listing = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if listing.returncode != 0:
        return None
    for line in listing.stdout.splitlines():
        if line.strip().endswith(FILE_NAMES[0]):
            return Path(line.strip()).parent
    return None


def system_copy(source: IdxSource) -> Path | None:
    """A folder holding all four files installed by a system package, if any (none while hidden)."""
    if system_data_hidden():
        return None
    for folder in source.system_dirs:
        if not find_files(folder)[1]:
            return folder
    if source.system_package:
        folder = _dpkg_dir(source.system_package)
        if folder is not None and not find_files(folder)[1]:
            return folder
    return None


def locate(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
    sha256: Mapping[str, str] | None = None,
) -> Located:
    """Find (or download) the four IDX files of ``name`` following the lookup order above."""
    source = get_source(name)
    if data_dir is not None:
        folder = Path(data_dir).expanduser()
        if not folder.is_dir():
            raise DataError(f"data_dir={folder} is not a folder; point it at the folder holding {', '.join(FILE_NAMES)}")
        files, missing = find_files(folder)
        if missing and (folder / name).is_dir():  # data_dir=~/data holding ~/data/mnist/ also works
            folder = folder / name
            files, missing = find_files(folder)
        if missing:
            raise DataError(f"data_dir={folder} lacks {', '.join(missing)} (each may also be stored without .gz)")
        return Located(folder, files, f"{folder} (data_dir)")

    cached = cache_dir(name)
    files, missing = find_files(cached)
    if not missing:
        return Located(cached, files, f"{cached} (cache)")

    system = system_copy(source)
    if system is not None:
        files, _ = find_files(system)
        package = f" (Debian package {source.system_package})" if source.system_package else " (system copy)"
        return Located(system, files, f"{system}{package}")

    if not download:
        raise DataError(f"{name} not found (download disabled): {where_to_put(name)}")
    with cache_lock(name) as cached:
        files, missing = find_files(cached)
        if not missing:  # another process downloaded them while this one waited
            return Located(cached, files, f"{cached} (cache)")
        folder = download_all(name, cached, mirrors=mirrors, sha256=sha256)
    files, _ = find_files(folder)
    return Located(folder, files, f"{folder} (downloaded)")


def file_sha256(path: Path, *, decompressed: bool = False) -> str:
    """SHA-256 of a file's bytes, or of its decompressed content."""
    digest = hashlib.sha256()
    with (open_maybe_gzip(path) if decompressed else open(path, "rb")) as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def download_file(url: str, dest: Path, sha256: str, *, timeout: float = 30.0) -> Path:
    """Download ``url`` to ``dest``, streamed through a temp file that becomes ``dest`` only
    once its SHA-256 matches (:func:`trainlab.files.atomic_file`): a failure of any kind
    (network, size, checksum) leaves ``dest`` untouched and no partial file in the cache.
    """
    digest = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=timeout) as response, atomic_file(dest) as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=None, leave=False) as bar:
            while chunk := response.read(1 << 16):
                out.write(chunk)
                digest.update(chunk)
                bar.update(len(chunk))
        if digest.hexdigest() != sha256.lower():  # raised inside the block: the temp file is removed
            raise DataError(f"{url}: SHA-256 {digest.hexdigest()} does not match the expected {sha256}")
    return dest


def download_all(
    name: str,
    dest: Path | None = None,
    *,
    mirrors: Sequence[str] | None = None,
    sha256: Mapping[str, str] | None = None,
) -> Path:
    """Download the four files of ``name`` into ``dest`` (default: its cache folder).

    Each file is tried on every mirror in turn; files already present and
    verified are kept, so an interrupted fetch resumes file by file.
    """
    source = get_source(name)
    dest = cache_dir(name) if dest is None else Path(dest)
    mirrors = tuple(mirrors if mirrors is not None else source.mirrors)
    checksums = dict(source.sha256 if sha256 is None else sha256)
    for file_name in FILE_NAMES:
        target = dest / file_name
        if target.is_file() and file_sha256(target) == checksums[file_name]:
            continue
        failures = []
        for base in mirrors:
            url = base.rstrip("/") + "/" + file_name
            try:
                download_file(url, target, checksums[file_name])
                break
            except DataError:
                failures.append(f"{url} (checksum mismatch)")
            except (urllib.error.URLError, OSError, ValueError) as e:
                failures.append(f"{url} ({getattr(e, 'reason', None) or e})")
        else:
            raise DataError(f"could not download {file_name}: {'; '.join(failures)}; instead {where_to_put(name)}")
    return dest
