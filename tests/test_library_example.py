"""The README's library example runs as written, and its numbers are checked against oracles."""

import math
import re
from pathlib import Path

import numpy as np
import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def library_example() -> str:
    text = README.read_text()
    block = re.search(r"<!-- library-example:start -->\n```python\n(.*?)```\n<!-- library-example:end -->", text, re.S)
    assert block, "README lost its library example"
    return block.group(1)


def test_readme_library_example_runs_and_its_results_hold(capsys):
    scope: dict = {}
    exec(compile(library_example(), "README.md", "exec"), scope)  # noqa: S102 - our own README
    assert scope["result"].status == "done"
    test_x = scope["to_tensor"](scope["digits"].test_images, "cpu")
    accuracy = scope["evaluate"](scope["model"], test_x, torch.as_tensor(scope["digits"].test_labels))["acc"]
    assert accuracy > 80  # five Adam epochs on digits: a broken loop stays near 10 %
    assert scope["net"].history["train_loss"][-1] < scope["net"].history["train_loss"][0]
    # The cosine schedule's closed form (Nichol & Dhariwal): abar_t = f(t)/f(0), f(t) = cos^2(((t/T + s)/(1 + s)) pi/2).
    f = [math.cos(((t / 100 + 0.008) / 1.008) * math.pi / 2) ** 2 for t in range(101)]
    expected = np.clip(np.array(f[1:]) / f[0], 0, 1)
    assert np.allclose(scope["sched"].alphas_cumprod.numpy(), expected, atol=1e-3)
    # MALA on a standard normal: 4000 draws give mean 0 and variance 1 within a few standard errors.
    draws = scope["chains"].samples.reshape(-1, 2)
    assert draws.mean(0).abs().max() < 0.15 and (draws.var(0) - 1).abs().max() < 0.2
    assert len(capsys.readouterr().out.splitlines()) == 4
