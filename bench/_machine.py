"""What the bench scripts measure about the machine itself: its matrix-multiply rate.

Every FLOP limit in ``bench/`` divides a workload's FLOPs by this rate, so all of
them use the same measurement: the best of several n x n x n products in this
process (the first one warms up), timed by the wall clock and by process CPU time.
"""

from __future__ import annotations

import time

import torch


def matmul_rates(device: torch.device | str = "cpu", n: int = 2048, repeats: int = 5,
                 dtype: torch.dtype = torch.float32) -> tuple[float, float]:
    """Best FLOP/s of an n^3 matmul on ``device``: (by wall clock, by process CPU time).

    Uses the calling thread's torch thread count, so wrap it in ``use_threads(1)`` for
    one core's rate. On CUDA the device is synchronised around each product; the CPU
    time is then that of the host and means little.
    """
    device = torch.device(device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    wall = cpu = float("inf")
    for _ in range(repeats):
        sync()
        w, c = time.perf_counter(), time.process_time()
        a @ b
        sync()
        wall, cpu = min(wall, time.perf_counter() - w), min(cpu, time.process_time() - c)
    return 2.0 * n**3 / wall, 2.0 * n**3 / cpu
