"""Fixtures for the data tests: an isolated cache/home, small IDX datasets, a local HTTP mirror."""

from __future__ import annotations

import dataclasses
import functools
import http.server
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
    """No TRAINLAB_DATA, HOME in tmp, fake Debian dirs, no dpkg, mirrors that refuse at once."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("TRAINLAB_DATA", raising=False)
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
