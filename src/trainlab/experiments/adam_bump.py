"""Optimisation & CNN study, Questions 1.1-1.3: gradient descent and Adam in front of a bump.

The loss falls with slope -1 from the start O at x = 0. At distance L it has a
triangular bump of height h and width 2h: slope +1 up to the peak at L + h,
-1 after it. Gradient descent (lr 0.3, h 0.5) is stuck in front of the bump;
Adam (alpha 0.3, beta1 0.9, beta2 0.999, eps 0) carries momentum into it and
gets over bumps up to some height h_max, which the study asks for (to two
decimals). Here h_max is found by a bisection that first checks, on a grid,
that "gets over" switches from true to false only once, and it is checked
against an independent figure: the highest point Adam reaches on a bump that
never ends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from trainlab.config import BaseConfig, check, positive
from trainlab.runs import Run
from trainlab.scratch.landscapes import bump_landscape
from trainlab.report.figures import new_figure
from trainlab.scratch.optim import FIELDS, Trace, adam, bisect_largest, gradient_descent

NAME = "adam-bump"
STUDY = "optim-cnn"
QUESTION = "Q1.1-1.3"
SUMMARY = "GD stuck before a bump; the largest bump Adam gets over, by checked bisection"
RUNTIME = "~3 s"  # bench/runtimes.py, 2026-12-06 (3.4 s), one at a time on the 2-core machine
QUICK = {"grid": 21}


@dataclass
class Config(BaseConfig):
    L: float = 1.0
    """Distance from the start O (x = 0) to the foot of the bump."""
    h: float = 0.5
    """Bump height for the gradient-descent question (Q1.1); the bump is 2h wide."""
    gd_lr: float = 0.3
    """Gradient-descent learning rate (Q1.1)."""
    alpha: float = 0.3
    """Adam step size (Q1.2, Q1.3)."""
    beta1: float = 0.9
    """Adam first-moment decay."""
    beta2: float = 0.999
    """Adam second-moment decay."""
    eps: float = 0.0
    """Adam epsilon (the study sets 0; a step with 0/0 is taken as 0)."""
    steps: int = 300
    """Step budget: Adam gets over the bump if some x_t > L + 2h (its far foot) within this many steps."""
    h_lo: float = 0.01
    """Lower end of the search for h_max (Adam must get over this bump)."""
    h_hi: float = 1.0
    """Upper end of the search for h_max (Adam must not get over this bump)."""
    grid: int = 41
    """Points on which the search first checks that 'gets over' switches once, from true to false."""
    tol: float = 1e-6
    """Bisection stops when the bracket around h_max is this narrow."""
    delta: float = 0.01
    """Traces are plotted for h = h_max - delta and h_max + delta."""
    plot_steps: int = 40
    """Steps shown in the trace figures and tables."""

    def __post_init__(self) -> None:
        super().__post_init__()
        positive("L", self.L)
        positive("h", self.h)
        positive("gd_lr", self.gd_lr)
        positive("alpha", self.alpha)
        check(0 <= self.beta1 < 1 and 0 <= self.beta2 < 1, "beta1 and beta2 must be in [0, 1)")
        check(self.eps >= 0, "eps must be >= 0")
        positive("steps", self.steps)
        check(0 < self.h_lo < self.h_hi, "need 0 < h_lo < h_hi")
        check(self.grid >= 3, "grid must be >= 3")
        positive("tol", self.tol)
        positive("delta", self.delta)
        positive("plot_steps", self.plot_steps)


def run(cfg: Config, out: Run) -> None:
    # Q1.1: gradient descent on the h = 0.5 bump.
    land = bump_landscape(cfg.L, cfg.h)
    gd = gradient_descent(land.grad, 0.0, cfg.plot_steps, cfg.gd_lr)
    for row in gd.rows():
        out.log(optimizer="gd", h=cfg.h, **row)
    tail = np.unique(np.round(gd.x[-10:], 12))
    crossed = bool(gd.x.max() > cfg.L + 2 * cfg.h)
    path = gd.path()
    out.table("gd_trace", [{"t": t, "x_prev": path[t - 1], "g": gd.g[t - 1], "x": path[t]} for t in range(1, 13)],
              columns=["t", "x_prev", "g", "x"], title=f"Gradient descent, lr {cfg.gd_lr}, h {cfg.h}",
              floatfmt=".6g", caption="g = f'(x_prev); x = x_prev - lr g.")
    out.text("gd", _gd_note(cfg, gd, tail, crossed), title="Q1.1 Gradient descent")

    # Q1.2: the largest bump Adam gets over, by a bisection that checks its own assumption.
    def run_adam(h: float, steps: int = cfg.steps, stop: bool = True) -> Trace:
        far_foot = cfg.L + 2 * h
        return adam(bump_landscape(cfg.L, h).grad, 0.0, steps, cfg.alpha, cfg.beta1, cfg.beta2, cfg.eps,
                    stop=(lambda x: x > far_foot) if stop else None)

    def gets_over(h: float) -> bool:
        return bool(run_adam(h).x.max() > cfg.L + 2 * h)

    found = bisect_largest(gets_over, cfg.h_lo, cfg.h_hi, cfg.tol, cfg.grid)
    h_max = found.value
    out.table("h_search", [{"h": float(h), "gets_over": bool(ok)} for h, ok in zip(found.grid, found.grid_passes)],
              title="Grid check before the bisection", floatfmt=".4f",
              caption="'gets over' switches exactly once on the grid, so bisection in that cell is sound.")

    # Independent check: before it passes the peak, Adam's path does not depend on h, so on a bump
    # that never ends the highest x it reaches, minus L, is the largest bump it gets over.
    endless = run_adam(1e6, steps=10 * cfg.steps, stop=False)
    peak_x, peak_t = float(endless.x.max()), int(endless.t[endless.x.argmax()])
    out.text("h_max", _h_max_note(cfg, found, peak_x, peak_t, endless), title="Q1.2 The largest bump Adam gets over")

    # Q1.3: the six traces just below and just above h_max.
    cases = {"below": h_max - cfg.delta, "above": h_max + cfg.delta}
    traces = {name: run_adam(h, steps=cfg.plot_steps, stop=False) for name, h in cases.items()}
    for name, tr in traces.items():
        for row in tr.rows():
            out.log(optimizer="adam", h=cases[name], **row)
    out.figure("adam_traces", _plot_traces(traces, cases, cfg), title="Q1.3 Adam's traces against t",
               caption=f"h = h_max - {cfg.delta} (left, gets over) and h_max + {cfg.delta} (right, turns back); "
               f"dotted lines mark the bump's foot L, peak L + h and far foot L + 2h.")
    out.text("observations", _observations(cfg, traces, cases), title="Q1.3 Observations")
    out.table("adam_trace_below", [r for r in traces["below"].rows()[:12]], columns=list(FIELDS),
              title=f"Adam's first steps, h = {cases['below']:.4f}", floatfmt=".5g",
              caption="g_t is the slope at x_{t-1}; x is x_t, after the step.")
    out.figure("landscape", _plot_landscape(cfg, gd, traces, cases), title="Loss and iterates",
               caption="The loss with the iterates x_0, x_1, ... on it, up to where they leave the frame.")

    out.summary(
        headline="h_max",
        h_max=h_max,
        h_max_upper=found.upper,
        h_max_2dp=round(h_max, 2),
        h_max_from_peak=peak_x - cfg.L,
        adam_peak_x=peak_x,
        adam_peak_t=peak_t,
        gd_x_low=float(tail.min()),
        gd_x_high=float(tail.max()),
        gd_crossed=crossed,
        bisection_evaluations=found.evaluations,
    )


def _gd_note(cfg: Config, gd: Trace, tail: np.ndarray, crossed: bool) -> str:
    if crossed or len(tail) != 2:
        return (f"With lr {cfg.gd_lr} and h {cfg.h}, gradient descent ends at x = {gd.x[-1]:.6g} "
                f"({'over' if crossed else 'not over'} the bump; last values {tail.tolist()}).")
    lo, hi = tail
    # In exact arithmetic every iterate is a multiple of lr: the first one at or past the foot L
    # (k lr with k = ceil(L / lr)) is sent back by g = +1, and the one before it forward again.
    k = math.ceil(Fraction(str(cfg.L)) / Fraction(str(cfg.gd_lr)))
    exact_hi, exact_lo = float(k * Fraction(str(cfg.gd_lr))), float((k - 1) * Fraction(str(cfg.gd_lr)))
    off = max(abs(hi - exact_hi), abs(lo - exact_lo))
    rounding = (f"the exact values are {k - 1} x lr = {exact_lo:.6g} and {k} x lr = {exact_hi:.6g}; the computed "
                f"ones differ from them by at most {off:.1e}, " + ("floating-point rounding only" if off < 1e-9 else
                                                          "more than rounding: the oscillation is not exact"))
    return (
        f"Every step moves x by exactly lr |g| = {cfg.gd_lr}, since the slope is +-1 everywhere. Its first iterates are "
        f"{', '.join(f'{v:.6g}' for v in gd.x[:4])}; at x = {hi:.6g} it is on the bump's rising side "
        f"(g = +1) and is sent back to {lo:.6g}, where g = -1 sends it forward again. It oscillates between "
        f"{lo:.6g} and {hi:.6g} for ever ({rounding}) and never gets further than {hi - cfg.L:.3g} into the "
        f"bump, whose peak is at {cfg.L + cfg.h:g}: the fixed step size gives it no way to accumulate speed."
    )


def _observations(cfg: Config, traces: dict, cases: dict) -> str:
    """What the two traces show, stated only as far as this run's numbers bear it out."""
    below, above = traces["below"], traces["above"]
    v_hat = np.concatenate([tr.v_hat for tr in traces.values()])
    g2 = np.concatenate([tr.g for tr in traces.values()]) ** 2
    def span(name: str, values: np.ndarray) -> str:
        lo, hi = f"{values.min():.6g}", f"{values.max():.6g}"
        return f"{name} is {lo} at every step" if lo == hi else f"{name} lies between {lo} and {hi}"

    parts = [f"On these traces {span('g_t^2', g2)} and {span('v_hat_t', v_hat)}"]
    if np.allclose(v_hat, 1.0, atol=1e-9):
        parts.append(", so Adam's step is alpha * m_hat_t: a momentum method whose bias correction makes the "
                     "first steps full-sized")
    parts.append(". ")
    peak_below, peak_above = cfg.L + cases["below"], cfg.L + cases["above"]
    # m_hat > 0 means the averaged gradient points uphill: the momentum is used up.
    turned = above.m_hat > 0
    if turned.any():
        t_turn = int(above.t[np.argmax(turned)])
        x_before = float(above.path()[:t_turn].max())
        parts.append(f"Above h_max (h = {cases['above']:.4f}) m_hat turns positive at t = {t_turn}, when x has "
                     f"reached at most {x_before:.4f}, short of the peak at {peak_above:.4f}: the momentum is used "
                     "up on the rising side. ")
        after = above.x[t_turn - 1:] - cfg.L
        half = len(after) // 2
        if half >= 2:
            first, second = np.abs(after[:half]).max(), np.abs(after[half:]).max()
            trend = "shrinks" if second < first else "does not shrink"
            parts.append(f"Afterwards x swings around the bump's foot L = {cfg.L:g}: its largest distance from L is "
                         f"{first:.4f} in the first half of the remaining steps and {second:.4f} in the second "
                         f"(the swing {trend}; x_{len(above)} = {above.x[-1]:.4f}). ")
    crossed_peak = below.x > peak_below
    if crossed_peak.any():
        t_peak = int(below.t[np.argmax(crossed_peak)])
        m_min = float(below.m_hat[:t_peak].max())
        parts.append(f"Below h_max (h = {cases['below']:.4f}) x passes the peak at t = {t_peak} with m_hat still "
                     f"{'negative' if m_min < 0 else 'non-negative'} (at most {m_min:.4f} until then), and past it "
                     "the slope is downhill again.")
    return "".join(parts)


def _h_max_note(cfg: Config, found, peak_x: float, peak_t: int, endless: Trace) -> str:
    entry = int(np.argmax(endless.x >= cfg.L))
    return (
        f"**Gets over** means: some iterate x_t > L + 2h (beyond the bump's far foot) within {cfg.steps} steps. "
        "Past the peak the slope is -1 everywhere, so an Adam run that passes the peak keeps going.\n\n"
        f"On a grid of {cfg.grid} heights in [{cfg.h_lo}, {cfg.h_hi}] Adam gets over every bump up to "
        f"{found.grid[found.grid_passes].max():.4f} and none from {found.grid[~found.grid_passes].min():.4f} on; "
        f"bisection in that cell ({found.evaluations} Adam runs in all) gives "
        f"**h_max = {found.value:.7f}** (the bump of height {found.upper:.7f} is not crossed), "
        f"**{found.value:.2f}** to two decimals.\n\n"
        f"Check: Adam's first steps are exactly alpha = {cfg.alpha} long (while the gradient is constant, "
        f"m_hat / sqrt(v_hat) = +-1). It enters the bump at x = {endless.x[entry]:.4f} (t = {entry + 1}); "
        f"momentum carries it on to x = {peak_x:.6f} at t = {peak_t} before m turns positive and it "
        f"comes back. Until it passes the peak its path is the same for every h, so any bump with "
        f"L + h < {peak_x:.6f} is crossed: h_max = {peak_x - cfg.L:.6f}, agreeing with the bisection.\n\n"
        "The study asks for this number to two decimals; its report as we have it gives no value to "
        "compare with."
    )


def _plot_traces(traces: dict, cases: dict, cfg: Config):
    fig, axes = new_figure(ncols=2, nrows=2, size=(5.5, 2.8), sharex=True)
    for col, (name, tr) in enumerate(traces.items()):
        top, bottom = axes[0, col], axes[1, col]
        for f in FIELDS[2:]:
            top.plot(tr.t, getattr(tr, f), label=f, lw=1.2)
        top.axhline(0, color="grey", lw=0.5)
        h = cases[name]
        top.set(title=f"h = {h:.4f} ({name} h_max)")
        bottom.plot(tr.t, tr.x, "k.-", lw=1.2, ms=3, label="x")
        for level, what in ((cfg.L, "L"), (cfg.L + h, "peak"), (cfg.L + 2 * h, "L + 2h")):
            bottom.axhline(level, color="grey", ls=":", lw=0.8)
            bottom.annotate(what, (tr.t[-1], level), fontsize=7, color="grey", ha="right", va="bottom")
        bottom.set(xlabel="t", ylabel="x", ylim=(0, 2 * (cfg.L + 2 * h)))
    axes[0, 0].legend(ncol=3, fontsize=8)
    return fig


def _plot_landscape(cfg: Config, gd: Trace, traces: dict, cases: dict):
    fig, axes = new_figure(ncols=3, size=(4.0, 3.0))
    panels = [(f"GD, h = {cfg.h}", cfg.h, gd)]
    panels += [(f"Adam, h = {cases[n]:.4f}", cases[n], traces[n]) for n in traces]
    for ax, (title, h, tr) in zip(axes[0], panels):
        landscape = bump_landscape(cfg.L, h)
        right = cfg.L + 2 * h + 0.5
        xs = np.linspace(-0.1, right, 400)
        ax.plot(xs, landscape(xs), color="grey")
        path = tr.path()
        path = path[: int(np.argmax(path > right)) or len(path)]  # up to where it leaves the frame
        ax.plot(path, landscape(path), "o-", ms=3, lw=0.6, color="C3")
        ax.set(title=title, xlabel="x", ylabel="loss")
    return fig
