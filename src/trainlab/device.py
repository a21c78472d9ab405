"""Device choice, seeding, and the one rule for CPU threads and worker threads (:func:`cpu_plan`)."""

from __future__ import annotations

import math
import os
import random
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from trainlab.errors import ConfigError, TrainlabError


DEVICE_NAMES = "auto, cpu, cuda, cuda:N or mps"
"""What ``device=`` accepts (``cuda:N``: the N-th visible GPU, counting from 0)."""


def valid_device_name(name: str) -> bool:
    """Whether ``name`` is one of :data:`DEVICE_NAMES` (the format only: availability is :func:`resolve_device`'s)."""
    return re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", name) is not None


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; an explicit choice must be available.

    Checked here, in one line each: the name (``cuda:x`` is not a device), CUDA or MPS
    being there at all, and a ``cuda:N`` index against the GPUs this process sees
    (``cuda:7`` on a two-GPU machine would otherwise fail at its first tensor).
    """
    if not valid_device_name(name):
        raise ConfigError(f"device={name!r} is not one of {DEVICE_NAMES}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device={name} asked for but CUDA is not available; use device=cpu or auto")
        count = torch.cuda.device_count()
        if ":" in name and int(name.split(":")[1]) >= count:
            raise ConfigError(f"device={name} asked for but this process sees {count} GPU(s) "
                              f"(cuda:0 to cuda:{count - 1}); use one of those or device=cuda")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("device=mps asked for but MPS is not available; use device=cpu or auto")
    return torch.device(name)


CUBLAS_WORKSPACE = ":4096:8"
"""``CUBLAS_WORKSPACE_CONFIG`` for deterministic cuBLAS (NVIDIA's documented setting; costs ~24 MiB)."""


@contextmanager
def algorithm_choice(device: torch.device | str, deterministic: bool = True) -> Iterator[None]:
    """The one place where runs and benches choose CUDA's algorithms; restored afterwards.

    On CUDA, ``deterministic`` (the default) turns ``cudnn.benchmark`` off and asks for
    deterministic algorithms (``torch.use_deterministic_algorithms(True, warn_only=True)``:
    an op with no deterministic kernel, such as ``index_add_`` on CUDA, warns once instead
    of failing) with ``CUBLAS_WORKSPACE_CONFIG`` set for cuBLAS, so the same seed on the same
    machine gives the same tables. ``deterministic=False`` is the fast mode: cuDNN times
    its algorithms for each new shape (``cudnn.benchmark``) and non-deterministic kernels
    are allowed; results then differ from run to run in the last bits (and more after
    training amplifies them). TF32 is left at torch's defaults either way (recorded in
    env.json by :func:`accelerator_record`). The CPU and MPS have nothing to choose here.

    ``CUBLAS_WORKSPACE_CONFIG`` is read when cuBLAS starts, so it is set for the rest of the
    process (and only if unset); the torch flags are process-wide, hence the restore.
    """
    if torch.device(device).type != "cuda":
        yield
        return
    cudnn = torch.backends.cudnn
    previous = (cudnn.benchmark, cudnn.deterministic, torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled())
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    cudnn.benchmark, cudnn.deterministic = not deterministic, deterministic
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    try:
        yield
    finally:
        cudnn.benchmark, cudnn.deterministic = previous[:2]
        torch.use_deterministic_algorithms(previous[2], warn_only=previous[3])


def accelerator_record(device: torch.device | str | None) -> dict:
    """What decides a GPU run's numbers and speed, for env.json: the GPUs, the CUDA and cuDNN
    versions, TF32 and the algorithm choice (:func:`algorithm_choice`). Empty off CUDA and for a
    folder that trains nothing itself (``None``: a sweep's)."""
    if device is None or torch.device(device).type != "cuda":
        return {}
    device = torch.device(device)
    index = device.index if device.index is not None else torch.cuda.current_device()
    cudnn = torch.backends.cudnn
    return {
        "gpu_name": torch.cuda.get_device_name(index),
        "gpu_count": torch.cuda.device_count(),
        "cuda_version": torch.version.cuda,
        "cudnn_version": cudnn.version(),
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "tf32_cudnn": cudnn.allow_tf32,
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn_benchmark": cudnn.benchmark,
        "cudnn_deterministic": cudnn.deterministic,
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    }


def available_memory(device: torch.device | str = "cpu") -> int:
    """Bytes that can still be allocated on ``device``: free CUDA memory, or the host's
    MemAvailable (free pages where /proc/meminfo is missing), lowered by a cgroup's limit."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            free = next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return min(free, _cgroup_headroom())


def _cgroup_headroom() -> int:
    """What a container's memory limit leaves (cgroup v2); unlimited outside one."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
        return int(limit) - used if limit != "max" else 2**63
    except (OSError, ValueError):
        return 2**63


def check_allocation(nbytes: int, what: str, *, device: torch.device | str = "cpu",
                     error: type[TrainlabError] = ConfigError, fix: str = "") -> None:
    """Refuse in one line, before allocating, ``nbytes`` that ``device`` cannot hold.

    The one size check for every file header, state dict and model description:
    refusing here costs nothing, while a 3 TB ``torch.empty`` or an overcommitted
    array that is touched later ends in a traceback or the OOM killer.
    """
    free = available_memory(device)
    if nbytes > free:
        raise error(f"{what} needs {_gigabytes(nbytes)} but {torch.device(device).type} has {_gigabytes(free)} free"
                    + (f"; {fix}" if fix else ""))


def _gigabytes(nbytes: float) -> str:
    return f"{nbytes / 2**30:.3g} GiB" if nbytes < 2**70 else f"{nbytes:.3g} bytes"


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA) from one seed.

    torch's module initialisers draw from its global generator, so it has to be
    seeded; everything trainlab writes itself takes explicit generators, and the
    returned NumPy generator is the one recipes should use.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


GLOBAL_RNG_LOCK = threading.RLock()
"""Held while a thread seeds, draws from, reads or sets the process's global generators
(:func:`global_seed`, and snapshots' ``rng_states``/``restore_rng`` in worker threads)."""


@contextmanager
def global_seed(seed: int) -> Iterator[None]:
    """Draw from torch's global generator seeded with ``seed`` (module initialisers use it),
    then restore it. One thread at a time: the global generator is one per process, and
    worker threads (:mod:`trainlab.workers`) building models at once would interleave draws."""
    with GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def torch_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch generator on ``device`` seeded with ``seed``."""
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    return gen


# Below this many FLOPs per step (about 6 ms on one core of the 2-core machine) a step runs on one thread.
# A second intra-op thread synchronises with the first at every operation, and when
# another process holds the other core OpenMP's spin-waiting makes each small operation
# wait for a time slice: measured 0.6 ms with one thread against 56 ms with two for a
# 64-5-2 MLP at batch size 2; ddpm-steps' quick run (a stack of two width-32 noise
# models, 6e7 FLOPs per step) took 103 s with two threads and 18 s with one on a machine
# with load 16. Independent work uses the other core through single-threaded workers
# instead (cpu_plan), which never wait on each other. The Langevin step of 16 chains
# through the study's 14.4M-parameter regressor (9.2e8 FLOPs: a forward and an
# input-gradient pass) is a handful of large GEMMs, so it is over the line (it was 1e9).
SMALL_STEP_FLOPS = 5e8
# Below this much work in all, workers are not started. The threshold was set when
# workers were processes (1-2 s each to import torch); threads start in microseconds,
# but it is kept so that the same workloads go side by side as before.
MIN_PARALLEL_FLOPS = 2e11


_cores_limit: int | None = None  # set by claim_cores, and while worker threads run (one core each)


def available_cores() -> int:
    """CPU cores this process may use: its affinity mask (not the machine's count), or 1 while workers run."""
    if _cores_limit is not None:
        return _cores_limit
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def claim_cores(n: int) -> None:
    """Use ``n`` cores from now on in this process (a bench's ``--threads``): torch and BLAS
    threads are set to ``n`` and :func:`cpu_plan` never plans more."""
    from threadpoolctl import threadpool_limits

    global _cores_limit
    _cores_limit = n
    torch.set_num_threads(n)
    threadpool_limits(limits=n)  # for the rest of the process's life


@contextmanager
def core_limit(n: int) -> Iterator[None]:
    """Use at most ``n`` cores in the block: torch and BLAS threads are set to ``n`` and
    :func:`cpu_plan` never plans more (what every worker thread of :mod:`trainlab.workers` sees)."""
    global _cores_limit
    previous = _cores_limit
    _cores_limit = n if previous is None else min(n, previous)
    try:
        with use_threads(_cores_limit):
            yield
    finally:
        _cores_limit = previous


@dataclass(frozen=True)
class CpuPlan:
    """How to run a workload on the CPU: ``workers`` worker threads, or here on ``threads`` threads."""

    workers: int
    """Worker threads of one torch/BLAS thread each (1: run here, one task after another)."""
    threads: int | None
    """torch/BLAS threads when the tasks run here; None leaves them alone (not a CPU workload)."""


def cpu_plan(device: torch.device | str, step_flops: float, tasks: int = 1, total_flops: float = 0.0,
             threads_change_numbers: bool = True) -> CpuPlan:
    """The one rule for thread settings, for quick and full runs alike.

    - Not on the CPU: nothing to decide.
    - Independent tasks (stacks of models, datasets, seeds) worth starting workers for
      (``total_flops`` >= ``MIN_PARALLEL_FLOPS``): one single-threaded worker per core,
      up to one per task. Two workers never wait on each other, where two threads
      of one step synchronise every operation (and spin when another process holds a core).
    - Otherwise here, one task after another: one thread for steps under ``SMALL_STEP_FLOPS``,
      every core for larger ones; but a step whose numbers are the same at any thread count
      (``threads_change_numbers=False``: checked by its caller's tests) gets only the cores that
      are idle now (:func:`idle_cores`), one thread while other processes hold them. A step of
      16 Langevin chains through the 14.4M-parameter regressor took 4-12x longer on two threads
      than on one with the 2-core machine at load 6. Steps whose numbers depend on the thread
      count (a GEMM that splits a sum) keep every core, so the same seed gives the same numbers
      at any load.
    """
    if torch.device(device).type != "cpu":
        return CpuPlan(workers=1, threads=None)
    cores = available_cores()
    if tasks > 1 and cores > 1 and total_flops >= MIN_PARALLEL_FLOPS:
        return CpuPlan(workers=min(cores, tasks), threads=1)
    if step_flops < SMALL_STEP_FLOPS or cores == 1:
        return CpuPlan(workers=1, threads=1)
    if threads_change_numbers:
        return CpuPlan(workers=1, threads=cores)
    return CpuPlan(workers=1, threads=idle_threads())


def idle_threads() -> int:
    """Threads for work whose numbers are the same at any thread count: the cores idle now (at least one).
    What :func:`cpu_plan` gives such a step, and what a library's own thread pool (openTSNE's ``n_jobs``) gets."""
    return max(1, min(available_cores(), math.floor(idle_cores() + 0.25)))


def idle_cores(window_s: float = 0.05) -> float:
    """How many of this process's cores no process used over the next ``window_s`` seconds (this
    thread sleeps meanwhile): the idle share of each core in the affinity mask, from /proc/stat,
    summed. Where /proc/stat is missing (macOS, Windows), every available core counts as idle."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
        before = _cpu_ticks(cpus)
        time.sleep(window_s)
        after = _cpu_ticks(cpus)
    except (AttributeError, OSError, ValueError, KeyError):
        return float(available_cores())
    idle = 0.0
    for cpu in cpus:
        spent = after[cpu][1] - before[cpu][1]
        idle += (after[cpu][0] - before[cpu][0]) / spent if spent > 0 else 1.0  # no tick counted: nobody ran
    return min(idle, float(available_cores()))


def _cpu_ticks(cpus: list[int]) -> dict[int, tuple[int, int]]:
    """(idle + iowait ticks, all ticks) per CPU number, from /proc/stat."""
    ticks = {}
    with open("/proc/stat") as f:
        for line in f:
            name, *values = line.split()
            if name.startswith("cpu") and name != "cpu":
                counts = [int(v) for v in values[:8]]  # user nice system idle iowait irq softirq steal
                ticks[int(name[3:])] = (counts[3] + counts[4], sum(counts))
    return {cpu: ticks[cpu] for cpu in cpus}


@contextmanager
def use_threads(n: int | None, device: torch.device | str = "cpu") -> Iterator[None]:
    """Run the block with exactly ``n`` torch intra-op and BLAS/OpenMP threads (at most the
    available cores), then restore. For another ``device``, or ``n=None``, nothing changes."""
    if n is None or torch.device(device).type != "cpu":
        yield
        return
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    n = max(1, min(n, available_cores()))
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        torch.set_num_threads(previous)


@contextmanager
def thread_limit(n: int | None, device: torch.device | str = "cpu") -> Iterator[None]:
    """Run the block with at most ``n`` torch intra-op and BLAS/OpenMP threads, then restore.

    Only CPU work is limited: for another ``device``, or ``n=None``, nothing changes.
    Toy-size models gain nothing from intra-op threads, and on a shared machine a
    busy core makes every parallel op wait for its slowest thread (measured on 2
    shared cores: ddpm-cfg's quick profile 17-19 s with 2 threads, 1-1.7 s with 1).
    """
    with use_threads(None if n is None else min(n, torch.get_num_threads()), device):
        yield


def threads_for_step(flops_per_step: float, device: torch.device, threads_change_numbers: bool = True) -> int | None:
    """Threads for one workload stepping ``flops_per_step`` at a time (see :func:`cpu_plan`)."""
    return cpu_plan(device, flops_per_step, threads_change_numbers=threads_change_numbers).threads
