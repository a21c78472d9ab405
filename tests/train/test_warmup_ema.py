"""The DDPM trainers' learning-rate schedule and weight EMA against their closed forms and torch's own."""

from __future__ import annotations

import math

import pytest
import torch

from trainlab.train.warmup_ema import WeightEMA, warmup_cosine


def lrs(make_schedule, steps: int) -> list[float]:
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.5)
    schedule = make_schedule(opt)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        schedule.step()
    return out


def test_without_warmup_the_schedule_is_torchs_cosine_annealing():
    ours = lrs(lambda opt: warmup_cosine(opt, 40), 40)
    torch_s = lrs(lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=40), 40)
    assert ours == pytest.approx(torch_s, rel=1e-9, abs=1e-12)


def test_warmup_rises_linearly_then_decays_to_zero_along_a_cosine():
    ours = lrs(lambda opt: warmup_cosine(opt, 30, warmup_steps=10), 30)
    assert ours[:10] == pytest.approx([0.5 * (s + 1) / 10 for s in range(10)])
    assert ours[10:] == pytest.approx([0.25 * (1 + math.cos(math.pi * s / 20)) for s in range(20)])
    constant = lrs(lambda opt: warmup_cosine(opt, 30, warmup_steps=10, decay=False), 30)
    assert constant[9:] == pytest.approx([0.5] * 21)


def test_ema_follows_its_recursion_with_the_ramped_decay_and_resumes_exactly():
    g = torch.Generator().manual_seed(0)
    values = [torch.randn(3, generator=g) for _ in range(30)]
    live = {"w": values[0].clone()}
    ema = WeightEMA(live, decay=0.9)
    expected = values[0].double()
    for n, v in enumerate(values[1:], 1):
        live["w"].copy_(v)
        ema.update(live)
        d = min(0.9, (1 + n) / (10 + n))
        expected = d * expected + (1 - d) * v.double()
        if n == 12:  # a fresh EMA loaded from this one's state goes on identically
            again = WeightEMA({"w": torch.zeros(3)}, decay=0.9)
            again.load_state_dict(ema.state_dict())
        elif n > 12:
            again.update(live)
    torch.testing.assert_close(ema.shadow["w"].double(), expected, rtol=1e-6, atol=1e-6)
    assert torch.equal(again.shadow["w"], ema.shadow["w"]) and again.updates == ema.updates == 29
    ema.copy_to(live)
    assert torch.equal(live["w"], ema.shadow["w"])
