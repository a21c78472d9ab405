"""Suite-wide set-up."""

import dataclasses
import signal

import pytest
from generator_guard import install as install_generator_guard

from trainlab.data import cifar, sources
from trainlab.device import thread_limit

REFUSED = ("http://127.0.0.1:9/",)  # the discard port: a download fails at once, never reaches the internet


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Every test trains toy-size models: one torch/BLAS thread is fastest, and on a busy
    2-core machine a second one spin-waits (steps ~100x slower, see trainlab.device)."""
    with thread_limit(1):
        yield


@pytest.fixture(autouse=True)
def tasks_leave_the_global_generators_alone(monkeypatch):
    """Every task a test runs one after another through trainlab.workers keeps the workers' rule
    for global generators (see generator_guard)."""
    install_generator_guard(monkeypatch)


@pytest.fixture(autouse=True, scope="session")
def ctrl_c_reaches_child_processes():
    """pytest-xdist's workers run with SIGINT ignored, and an ignored signal stays ignored in every
    process they start: the command lines the tests interrupt with Ctrl-C would never see it. A
    handled signal is reset to its default in a new program, so handling it here gives the
    children the Ctrl-C a terminal gives them."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield


@pytest.fixture(autouse=True, scope="session")
def hermetic_data(tmp_path_factory):
    """The suite sees only the data it writes or names (digits, toy sets, ../shared, its own files).

    TRAINLAB_NO_SYSTEM_DATA hides installed copies (Debian's Fashion-MNIST) and ~/.cache/trainlab,
    TRAINLAB_DATA is an empty folder, and downloads are refused: a test that needs any other data
    fails here as it would on a fresh machine, instead of passing only where datasets are installed.
    Tests that exercise a system copy on purpose un-hide it and skip where it is absent.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(sources.HIDE_SYSTEM_DATA, "1")
        patch.setenv("TRAINLAB_DATA", str(tmp_path_factory.mktemp("trainlab-data")))
        for name, source in list(sources.SOURCES.items()):
            patch.setitem(sources.SOURCES, name, dataclasses.replace(source, mirrors=REFUSED))
        patch.setattr(cifar, "MIRRORS", REFUSED)
        yield
