"""Which process owns a run or sweep folder, whether it still lives, and how it is stopped.

A run folder records its process (pid, host, and the process's start time, so that a
pid the kernel later gives to another program is not mistaken for the run); ``trainlab
runs`` asks :func:`liveness` to show a run whose process died as ``killed``. A sweep
folder is held by one process at a time (:func:`hold`). SIGTERM (``kill``, ``timeout``,
Slurm) and SIGHUP (a closed terminal or a dropped ssh session) stop a run as Ctrl-C
does (:func:`stop_like_ctrl_c`, :class:`Interrupted`).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Mapping

from trainlab.errors import ConfigError
from trainlab.files import atomic_write, read_json

ALIVE, DEAD, ELSEWHERE, UNKNOWN = "alive", "dead", "elsewhere", "unknown"


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM; ``folder`` is the run or sweep folder it left behind, once there is one.

    A KeyboardInterrupt, so that every clean-up path written for Ctrl-C handles SIGTERM too.
    """

    def __init__(self, signum: int = signal.SIGINT, folder: Path | None = None):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)
        self.folder = folder

    @property
    def exit_code(self) -> int:
        """What a shell reports for a process ended by this signal: 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP."""
        return 128 + self.signum


def interrupted(exc: KeyboardInterrupt, folder: Path | None = None) -> Interrupted:
    """``exc`` as an :class:`Interrupted` naming ``folder`` (keeping which signal it was, and
    the folder it named, if any, when ``folder`` is None)."""
    return Interrupted(getattr(exc, "signum", signal.SIGINT), folder or getattr(exc, "folder", None))


STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))
"""Signals that end a run as Ctrl-C does: SIGTERM (kill, timeout, Slurm's preemption) and, where the
system has it, SIGHUP (the terminal or ssh session closed; without a handler the run would die
unmarked and only later be listed ``killed``)."""


def stop_like_ctrl_c() -> None:
    """Make every :data:`STOP_SIGNALS` raise :class:`Interrupted` in the main thread, as SIGINT raises
    KeyboardInterrupt (signal handlers can only be set there)."""
    if threading.current_thread() is threading.main_thread():
        for signum in STOP_SIGNALS:
            signal.signal(signum, _raise_interrupted)


def _raise_interrupted(signum: int, frame: Any) -> None:
    raise Interrupted(signum)


# -- which process ---------------------------------------------------------------


def identity() -> dict[str, Any]:
    """This process: pid, host, and its start time (None where the system does not tell)."""
    return {"pid": os.getpid(), "host": socket.gethostname(), "pid_started": _start_time(os.getpid())}


def liveness(owner: Mapping[str, Any]) -> str:
    """ALIVE, DEAD, ELSEWHERE (another host: cannot tell) or UNKNOWN (no pid recorded)."""
    pid = owner.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return UNKNOWN
    if owner.get("host") != socket.gethostname():
        return ELSEWHERE
    if not _exists(pid):
        return DEAD
    started = _start_time(pid)
    recorded = owner.get("pid_started")
    # A zombie (killed, not yet reaped) has no start time left to match; a reused pid has another.
    if recorded and started != recorded:
        return DEAD
    return ALIVE


def describe(owner: Mapping[str, Any]) -> str:
    """``pid 123 on host-a`` for messages."""
    return f"pid {owner.get('pid', '?')} on {owner.get('host', '?')}"


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except OSError:
        return False
    return True


def _start_time(pid: int) -> str | None:
    """``<boot id>:<start tick>`` from /proc (Linux); None elsewhere or for a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None
    # Fields after the command name (which may hold spaces and parentheses): state is the
    # first, the start time (clock ticks since boot) the 20th.
    fields = stat[stat.rfind(")") + 2:].split()
    if len(fields) < 20 or fields[0] == "Z":
        return None
    return f"{boot}:{fields[19]}"


# -- one process per folder ------------------------------------------------------------

LOCK_FILE = ".lock"
HOLDER_FILE = "lock.json"


@contextmanager
def hold(folder: Path, what: str) -> Iterator[None]:
    """Hold ``folder`` while the block runs; a second process is refused in one line naming the holder.

    The lock is the kernel's (flock through ``filelock``): it goes with its process, so a
    holder killed with SIGKILL leaves a lock that the next one simply takes over.
    ``lock.json`` names the holder for the message.
    """
    from filelock import FileLock, Timeout

    lock = FileLock(str(Path(folder) / LOCK_FILE), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        holder = read_json(Path(folder) / HOLDER_FILE, {})
        holder = holder if isinstance(holder, dict) else {}
        raise ConfigError(
            f"{what} {folder} is in use by {describe(holder)} (since {holder.get('since', '?')}); "
            "wait for it to finish or stop it, then resume"
        ) from None
    try:
        atomic_write(Path(folder) / HOLDER_FILE, json.dumps({**identity(), "since": timestamp()}, indent=2))
        yield
    finally:
        Path(folder, HOLDER_FILE).unlink(missing_ok=True)
        lock.release()


def timestamp() -> str:
    """Now, in local time with its offset, to the second (run.json's ``started`` and ``finished``)."""
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")
