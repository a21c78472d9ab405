"""Suite-wide set-up."""

import pytest

from trainlab.device import thread_limit


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Every test trains toy-size models: one torch/BLAS thread is fastest, and on a busy
    2-core machine a second one spin-waits (steps ~100x slower, see trainlab.device)."""
    with thread_limit(1):
        yield
