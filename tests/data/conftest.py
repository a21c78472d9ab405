"""Fixtures for the data tests: an isolated cache/home, small IDX datasets, a local HTTP mirror."""

from __future__ import annotations

import dataclasses
import functools
import http.server
import os
import stat
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from trainlab.data import sources
from trainlab.data.idx import write_idx
from trainlab.data.sources import IDX_FILES


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No TRAINLAB_DATA, HOME in tmp, fake Debian dirs, no dpkg, mirrors that refuse at once.

    Hermetic by itself, so the suite's TRAINLAB_NO_SYSTEM_DATA is lifted: the tests see the
    whole lookup order (home cache, system copy) on the fakes.
    """
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("TRAINLAB_DATA", raising=False)
    monkeypatch.delenv(sources.HIDE_SYSTEM_DATA, raising=False)
    debian = tmp_path / "debian"
    for name, src in list(sources.SOURCES.items()):
        monkeypatch.setitem(
            sources.SOURCES,
            name,
            dataclasses.replace(
                src,
                system_dirs=(debian / name,),
                system_package=None,
                mirrors=("http://127.0.0.1:9/",),  # discard port: connection refused, never the internet
            ),
        )
    return SimpleNamespace(home=home, cache=home / ".cache" / "trainlab", debian=debian, tmp=tmp_path)


def write_dataset(folder: Path, *, n_train: int = 12, n_test: int = 6, seed: int = 0, gz: bool = True,
                  shape: tuple[int, int] = (4, 3)) -> dict[str, np.ndarray]:
    """Write the four IDX files of a tiny 10-class dataset into ``folder``; returns the arrays by role."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, size=(n_train, *shape), dtype=np.uint8),
        "train_labels": (np.arange(n_train) % 10).astype(np.uint8),
        "test_images": rng.integers(0, 256, size=(n_test, *shape), dtype=np.uint8),
        "test_labels": (np.arange(n_test) % 10).astype(np.uint8),
    }
    for role, stem in IDX_FILES.items():
        write_idx(folder / (stem + (".gz" if gz else "")), arrays[role], gzip=gz)
    return arrays


@pytest.fixture
def make_dataset():
    return write_dataset


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture
def http_mirror(tmp_path):
    """A folder served over HTTP on 127.0.0.1 (ephemeral port); yields (folder, base_url)."""
    root = tmp_path / "mirror"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(params=[0o022, 0o077], ids=["umask022", "umask077"])
def umask(request):
    """Run the test under umask 022 and then 077; yields a check that a folder's tree follows it.

    The oracle is what plain ``open``/``mkdir`` give under that umask (0644/0755, 0600/0700).
    """
    previous = os.umask(request.param)

    def follows_umask(folder: Path) -> None:
        found = {p: stat.S_IMODE(p.stat().st_mode) for p in folder.rglob("*")}
        assert found, f"nothing under {folder}"
        expected = {p: (0o777 if p.is_dir() else 0o666) & ~request.param for p in found}
        assert {str(p): oct(m) for p, m in found.items()} == {str(p): oct(m) for p, m in expected.items()}

    try:
        yield follows_umask
    finally:
        os.umask(previous)
