"""Processes that find a dataset missing at once (data-parallel ranks, Ray trials, runs side by
side) all end with the same data, downloaded once, from a fresh cache.

Before the cache lock, 4 processes on a fresh CIFAR-10 cache failed in 4 of 4 trials: each
downloaded and extracted, and one deleted the folder or tarball another was reading. The
mirror here answers slowly, so without the lock every process would be downloading at once.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from helpers import write_cifar
from trainlab.data import cifar, load_images
from trainlab.data.sources import FILE_NAMES

SRC = str(Path(__file__).resolve().parents[2] / "src")
PROCESSES = 4
DATASETS = ("cifar10", "mnist")

# One process: wait for the others to finish importing, load every dataset, print a digest of each.
CHILD = """
import hashlib, json, sys, time
from pathlib import Path
from trainlab.data import load_images
url, checksums, go = sys.argv[1], json.loads(sys.argv[2]), Path(sys.argv[3])
Path(sys.argv[4]).touch()
while not go.exists():
    time.sleep(0.005)
for name in sys.argv[5:]:
    ds = load_images(name, mirrors=[url], sha256=checksums)
    arrays = (ds.train_images, ds.train_labels, ds.test_images, ds.test_labels)
    print(name, hashlib.sha256(b"".join(a.tobytes() for a in arrays)).hexdigest(), ds.source, flush=True)
"""


class _SlowCountingHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files after a pause, counting the requests per file."""

    def __init__(self, *args, requests: list[str], **kw):
        self.requests = requests
        super().__init__(*args, **kw)

    def do_GET(self):
        self.requests.append(self.path.lstrip("/"))
        time.sleep(0.3)
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def slow_mirror(tmp_path):
    """A folder served over HTTP on 127.0.0.1; yields (folder, base_url, requested file names)."""
    root, requests = tmp_path / "mirror", []
    root.mkdir()
    handler = functools.partial(_SlowCountingHandler, directory=str(root), requests=requests)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}/", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _digest(name: str, mirror: Path, checksums: dict[str, str]) -> str:
    """What a child should print for ``name``: the arrays read in this process from the mirror's files."""
    ds = load_images(name, mirror, download=False)
    arrays = (ds.train_images, ds.train_labels, ds.test_images, ds.test_labels)
    return hashlib.sha256(b"".join(a.tobytes() for a in arrays)).hexdigest()


def test_processes_on_a_fresh_cache_download_once_and_read_the_same_data(tmp_path, slow_mirror, make_dataset):
    root, url, requests = slow_mirror
    write_cifar(root, per_batch=10, n_test=10)
    make_dataset(root, seed=3)
    checksums = {name: hashlib.sha256((root / name).read_bytes()).hexdigest() for name in (cifar.ARCHIVE, *FILE_NAMES)}
    expected = {name: _digest(name, root, checksums) for name in DATASETS}
    cache = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": SRC, "TRAINLAB_DATA": str(cache), "OMP_NUM_THREADS": "1"}
    go = tmp_path / "go"
    children = [subprocess.Popen([sys.executable, "-c", CHILD, url, json.dumps(checksums), str(go),
                                  str(tmp_path / f"ready{i}"), *DATASETS],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
                for i in range(PROCESSES)]
    try:
        deadline = time.monotonic() + 120
        while not all((tmp_path / f"ready{i}").exists() for i in range(PROCESSES)):
            assert time.monotonic() < deadline and all(c.poll() is None for c in children), "a child died importing"
            time.sleep(0.01)
        go.touch()  # all start together
        outputs = [c.communicate(timeout=120) for c in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
    for child, (out, err) in zip(children, outputs):
        assert child.returncode == 0, err[-2000:]
    lines = [line.split(maxsplit=2) for out, _ in outputs for line in out.splitlines()]
    assert len(lines) == PROCESSES * len(DATASETS)
    for name in DATASETS:
        mine = [(digest, source) for dataset, digest, source in lines if dataset == name]
        assert {digest for digest, _ in mine} == {expected[name]}
        # one process downloaded; the others waited for it and read its cache
        assert sorted(source.rsplit(" ", 1)[-1] for _, source in mine) == ["(cache)"] * (PROCESSES - 1) + ["(downloaded)"]
    assert sorted(requests) == sorted([cifar.ARCHIVE, *FILE_NAMES])  # every file fetched once
    # the cache holds the extracted folder, the IDX files and the locks, nothing half-done
    assert sorted(os.listdir(cache / "cifar10")) == [cifar.FOLDER]
    assert sorted(os.listdir(cache / "mnist")) == sorted(FILE_NAMES)
    assert sorted(p.name for p in cache.iterdir() if p.is_file()) == [".cifar10.lock", ".mnist.lock"]
