"""One rank of the 2-process data-parallel test (started by torch.multiprocessing.spawn)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch


def stripes(n: int, seed: int, size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Horizontal (class 1) against vertical (class 0) stripes in noise: a task for a pooled CNN."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    phase = torch.randint(0, 2, (n, 1, 1), generator=g)
    lines = ((torch.arange(size)[None, :, None] + phase) % 2).expand(n, size, size)
    pattern = torch.where(y[:, None, None] == 1, lines, lines.transpose(1, 2))
    x = torch.randint(0, 100, (n, size, size), generator=g) + 120 * pattern
    return x[:, None].to(torch.uint8), y


def train_rank(rank: int, world: int, port: int, out: str) -> None:
    from trainlab.nn.cnn import FastCNN
    from trainlab.train import cnn, distributed
    from trainlab.train.cnn import CNNTraining, evaluate_cnn, train_cnn

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    ctx = distributed.setup(distributed.from_env(), torch.device("cpu"))
    try:
        bars = []  # whether each progress bar train_cnn makes is drawn (tqdm: disable=None draws on a terminal)
        real_tqdm = cnn.tqdm
        cnn.tqdm = lambda *args, **kw: bars.append(kw["disable"] is not True) or real_tqdm(*args, **kw)
        torch.manual_seed(0)
        model = FastCNN(1, 2, (8, 16, 16), image_size=8)
        settings = CNNTraining(epochs=6, batch_size=32, lr=4.0, whiten_bias_epochs=1, translate=1)
        test = stripes(128, 1)
        result = train_cnn(model, stripes(256, 0), settings, generator=torch.Generator().manual_seed(3),
                           test=test, dist_ctx=ctx, progress=True)
        acc = evaluate_cnn(model, *test, tta_level=2).acc
        torch.save({"params": {k: v for k, v in model.named_parameters()}, "history": result.history, "acc": acc,
                    "backend": ctx.backend, "bars": bars, "batchnorm": batchnorm_after_a_forward(ctx),
                    **data_loading(ctx, Path(out))}, Path(out) / f"rank{rank}.pt")
    finally:
        distributed.teardown()


def stop_and_resume_rank(rank: int, world: int, ports: tuple[int, int, int], out: str, stop_after: int,
                         overrides: list[str]) -> None:
    """cifar-cnn's quick run on ``world`` gloo ranks three times: uninterrupted into ``out/whole``,
    stopped after its ``stop_after``-th snapshot into ``out/stopped`` (every rank stops there),
    then resumed in that folder (rank 0 saved the snapshots, every rank loads them)."""
    from trainlab.execute import build_config, resume_config, run_experiment
    from trainlab.experiments.registry import get_experiment
    from trainlab.processes import Interrupted
    from trainlab.resume import STOP_AFTER

    torch.set_num_threads(1)
    exp = get_experiment("cifar-cnn")
    cfg = build_config(exp, [*overrides, "device=cpu", "checkpoint_every=0"], quick=True)

    def join(port: int) -> None:  # a fresh rendezvous for each run (each run tears its group down)
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                          WORLD_SIZE=str(world))

    join(ports[0])
    run_experiment(exp, cfg, out=Path(out) / "whole")
    join(ports[1])
    os.environ[STOP_AFTER] = str(stop_after)
    try:
        run_experiment(exp, cfg, out=Path(out) / "stopped")
        raise AssertionError(f"rank {rank} did not stop after snapshot {stop_after}")
    except Interrupted:
        pass
    del os.environ[STOP_AFTER]
    # Rank 0 made the folder before the first step, which no rank takes alone.
    (folder,) = (Path(out) / "stopped" / exp.name).iterdir()
    join(ports[2])
    # Every rank reads the recorded config before any joins the group (run_experiment's first
    # step), so none sees the run.json that rank 0's resume rewrites.
    exp, recorded = resume_config(folder)
    run_experiment(exp, recorded, resume=folder)


def batchnorm_after_a_forward(ctx) -> float:
    """A BatchNorm whose running mean is the rank, after one training forward through ``distributed.wrap``.

    Momentum 0 keeps the running mean as it was, so what is left is whether DDP copied rank 0's
    (broadcast_buffers) over it: 0.0 on every rank, or each rank's own."""
    from trainlab.train import distributed

    norm = torch.nn.BatchNorm1d(1, momentum=0.0)
    norm.running_mean.fill_(float(ctx.rank))
    net = distributed.wrap(torch.nn.Sequential(torch.nn.Linear(1, 1), norm), ctx, torch.device("cpu"))
    net(torch.randn(4, 1)).sum().backward()
    return float(norm.running_mean)


def data_loading(ctx, out: Path) -> dict:
    """local_main_first: local rank 0 loads first, and its failure stops every rank with its message."""
    from trainlab.errors import DataError
    from trainlab.train import distributed

    filled = out / "filled"

    def load() -> bool:  # rank 0 fills a "cache" slowly; the others only look
        if ctx.local_rank == 0:
            time.sleep(0.3)
            filled.touch()
        return filled.exists()

    def broken() -> None:
        if ctx.local_rank == 0:
            raise DataError("cifar10 not found: put it somewhere")

    try:
        distributed.local_main_first(broken, ctx)
        error = ""
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    return {"found_filled": distributed.local_main_first(load, ctx), "load_error": error}
