"""The workers' rule for global generators, checked on every task a test runs through trainlab.workers.

A task must leave torch's, NumPy's and Python's global generators as it found them: on a worker
thread, a task that draws from one (a module initialiser outside ``device.global_seed``) changes
the initial weights another thread is drawing there, and a parallel run stops reproducing the
sequential one. A task that resumes a snapshot sets them (``snapshots.restore_rng``) and must then
leave them as it set them. Tasks running side by side are not checked: the other thread may
legitimately be seeding.
"""

from __future__ import annotations

import random
import threading
from typing import Any, Callable

import numpy as np
import pytest
import torch

from trainlab import workers

# name: (module, getter, setter) of each global generator
_GENERATORS = {"torch": (torch, "get_rng_state", "set_rng_state"), "numpy": (np.random, "get_state", "set_state"),
               "python": (random, "getstate", "setstate")}


def _state(name: str) -> Any:
    module, getter, _ = _GENERATORS[name]
    return getattr(module, getter)()


def _equal(name: str, a: Any, b: Any) -> bool:
    if name == "torch":
        return torch.equal(a, b)
    if name == "numpy":  # the legacy state: (name, key array, position, has_gauss, cached_gaussian)
        return a[0] == b[0] and np.array_equal(a[1], b[1]) and a[2:] == b[2:]
    return a == b


def install(monkeypatch: pytest.MonkeyPatch) -> None:
    """Check every task run one after another on the main thread through :mod:`trainlab.workers` from
    now on. On a worker thread the other one may be inside ``global_seed``, so nothing is checked there."""
    expected: dict[str, Any] = {}  # what each generator must hold when the running task ends
    checking = False

    def on_main_thread() -> bool:
        return threading.current_thread() is threading.main_thread()

    for name, (module, _, setter) in _GENERATORS.items():
        def setting(*args: Any, _set: Callable = getattr(module, setter), _name: str = name) -> Any:
            result = _set(*args)
            if checking and on_main_thread():
                expected[_name] = _state(_name)
            return result

        monkeypatch.setattr(module, setter, setting)

    run_planned = workers._run_planned

    def check() -> None:
        moved = [name for name in _GENERATORS if not _equal(name, expected[name], _state(name))]
        assert not moved, f"a worker task drew from the global generator of {', '.join(moved)}"

    def checked(fn: Callable, tasks: Any, plan: Any) -> Any:
        if plan.workers > 1 or not on_main_thread():
            return run_planned(fn, tasks, plan)

        def task(t: Any) -> Any:
            nonlocal checking
            nested = checking  # tasks of a task run here, one after another
            if nested:
                check()  # the task around this one, so far
            else:
                expected.update({name: _state(name) for name in _GENERATORS})
                checking = True
            try:
                result = fn(t)
                check()
                return result
            finally:
                checking = nested

        return run_planned(task, tasks, plan)

    monkeypatch.setattr(workers, "_run_planned", checked)
