"""bench/gpu_check.sh: on a machine without CUDA it says so in one line and exits 2."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "gpu_check.sh"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the script would run its checks")
def test_without_cuda_one_line_and_exit_2(tmp_path):
    done = subprocess.run(["bash", str(SCRIPT)], env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable,
                                                     "TMPDIR": str(tmp_path)},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu_check: no CUDA device here (torch ")
    assert torch.__version__ in lines[0]
    assert list(tmp_path.iterdir()) == []  # nothing was started, nothing left behind
