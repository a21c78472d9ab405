"""What it takes to reproduce a run, for its ``env.json``: versions, device, git commit, seed."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment(device: Any, seed: int) -> dict[str, Any]:
    """Versions, device, git commit and seed: what it takes to reproduce a run (on CUDA also the GPUs,
    CUDA and cuDNN versions, TF32 and the algorithm choice: :func:`trainlab.device.accelerator_record`)."""
    import numpy
    import torch

    from trainlab.device import accelerator_record
    from trainlab.version import __version__

    return {
        "trainlab": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "git_commit": git_commit(),
        "seed": seed,
        "argv": sys.argv,
        **accelerator_record(device),
    }
