"""Langevin MCMC over many chains at once: MALA (Metropolis-adjusted) and ULA (unadjusted).

Target: p(x) ∝ exp(-E(x)). Both methods propose

    x' = x - tau * grad E(x) + sqrt(2 * tau) * xi,    xi ~ N(0, I),

that is x' ~ q(. | x) = N(x - tau * grad E(x), 2 * tau * I) (the discretised overdamped
Langevin diffusion with time step tau). ULA always moves to x'. MALA accepts x' with
probability min(1, exp(-E(x') + E(x)) * q(x | x') / q(x' | x)), the exact transition
densities both ways, so p is its stationary law for any tau; ULA's stationary law is
biased by O(tau) (for a 1-D Gaussian of variance s2 it is a Gaussian of variance
s2 / (1 - tau / (2 s2))).

Cost: MALA keeps (x, E(x), grad E(x)) for every chain, so each step evaluates the
energy and its gradient once, at the proposal: the same one forward and one backward
pass per step as ULA. All chains are one batch: ``energy`` maps ``(chains, d)`` to
``(chains,)`` and the gradient of ``energy(x).sum()`` is every chain's gradient.
Nothing in the loop synchronises with the host (no ``.item()``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Optional

import torch
from tqdm.auto import tqdm

Energy = Callable[[torch.Tensor], torch.Tensor]

TARGET_ACCEPT = 0.574  # the asymptotically optimal MALA acceptance rate (Roberts & Rosenthal 1998)


@dataclass
class SampleResult:
    """What :func:`sample` returns; tensors stay on the device of ``x0``."""

    samples: torch.Tensor
    """Kept states, shape ``(n_samples, chains, d)``: every ``thin``-th state after burn-in."""
    accept_rate: torch.Tensor
    """Per-chain share of accepted proposals during sampling (after burn-in), shape ``(chains,)``."""
    burn_in_accept_rate: torch.Tensor
    """Per-chain share of accepted proposals during burn-in, shape ``(chains,)``."""
    energy: torch.Tensor
    """Energy of every chain's current state after every step, burn-in included:
    shape ``(burn_in + n_samples * thin, chains)``."""
    burn_in_s: float
    """Seconds of the burn-in steps, device work finished (wall-clock unless another ``clock`` was given)."""
    sampling_s: float
    """Seconds of the sampling steps after burn-in (same clock)."""
    tau: float
    """Step size used after burn-in (the given one, or the adapted one)."""
    burn_in: int
    """Number of burn-in steps."""
    thin: int
    """Steps between kept samples."""

    @property
    def total_s(self) -> float:
        """Burn-in plus sampling seconds."""
        return self.burn_in_s + self.sampling_s

    @property
    def sample_energy(self) -> torch.Tensor:
        """Energies of the kept samples, shape ``(n_samples, chains)``."""
        return self.energy[self.burn_in + self.thin - 1 :: self.thin]


def energy_and_grad(energy: Energy, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """E(x) of shape ``(chains,)`` and grad E(x) of shape ``(chains, d)``, one forward and one backward.

    Only the input gradient is taken, so no weight gradients are computed or stored.
    """
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        e = energy(x)
        if e.shape != x.shape[:1]:
            raise ValueError(f"energy must map (chains, d) to (chains,); got {tuple(e.shape)} "
                             f"for input {tuple(x.shape)}")
        if not e.requires_grad:  # an energy that ignores x (a flat target) has a zero gradient
            return e.detach(), torch.zeros_like(x)
        (g,) = torch.autograd.grad(e.sum(), x, materialize_grads=True)
    return e.detach(), g


class DualAveraging:
    """Nesterov dual averaging of log(tau) towards a target acceptance (Hoffman & Gelman 2014, §3.2).

    One :meth:`update` per step with the step's acceptance probability (a 0-d tensor, the mean
    over chains); :attr:`tau` is the step for the next proposal, :attr:`final_tau` the averaged
    iterate that is frozen after burn-in. State stays on the device: no host sync per step.
    """

    def __init__(self, tau0: float, target: float = TARGET_ACCEPT, gamma: float = 0.05, t0: float = 10.0,
                 kappa: float = 0.75, device: torch.device | str = "cpu"):
        self.mu = math.log(10.0 * tau0)
        self.target, self.gamma, self.t0, self.kappa = target, gamma, t0, kappa
        self.t = 0
        self.h_bar = torch.zeros((), dtype=torch.float64, device=device)
        self.log_tau = torch.full((), math.log(tau0), dtype=torch.float64, device=device)
        self.log_tau_bar = torch.zeros((), dtype=torch.float64, device=device)

    @property
    def tau(self) -> torch.Tensor:
        return self.log_tau.exp()

    @property
    def final_tau(self) -> float:
        return float(self.log_tau_bar.exp()) if self.t else float(self.tau)

    def update(self, accept_prob: torch.Tensor) -> None:
        self.t += 1
        t = self.t
        w = 1.0 / (t + self.t0)
        self.h_bar = (1 - w) * self.h_bar + w * (self.target - accept_prob.double())
        self.log_tau = self.mu - math.sqrt(t) / self.gamma * self.h_bar
        eta = t ** (-self.kappa)
        self.log_tau_bar = eta * self.log_tau + (1 - eta) * self.log_tau_bar


def sample(
    energy: Energy,
    x0: torch.Tensor,
    method: str = "mala",
    tau: float = 0.01,
    burn_in: int = 1000,
    n_samples: int = 1000,
    thin: int = 1,
    bounds: Optional[tuple[float, float]] = None,
    generator: Optional[torch.Generator] = None,
    adapt: bool = False,
    target_accept: float = TARGET_ACCEPT,
    progress: bool = False,
    clock: Callable[[], float] = time.perf_counter,
) -> SampleResult:
    """Run ``x0.shape[0]`` Langevin chains side by side; see the module docstring for the scheme.

    Args:
        energy: maps a batch ``(chains, d)`` to energies ``(chains,)``; differentiated with autograd.
        x0: starting states ``(chains, d)``; their dtype and device are the chains'.
        method: ``"mala"`` (accept/reject) or ``"ula"`` (always accept).
        tau: step size; the proposal is ``x - tau * grad E(x) + sqrt(2 tau) xi``.
        burn_in: steps run and discarded before the first kept sample.
        n_samples: kept samples per chain.
        thin: steps per kept sample after burn-in.
        bounds: ``(lo, hi)``: proposals with any coordinate outside the box are rejected (both
            methods). For MALA this is exact Metropolis-Hastings for the target truncated to the box.
        generator: source of all randomness (normal increments, then uniforms, per step).
        adapt: tune tau by dual averaging during burn-in (MALA only) towards ``target_accept``
            (the mean acceptance probability over chains, one update per step); frozen afterwards.
        target_accept: acceptance aimed at when ``adapt`` is on.
        progress: show a tqdm bar.
        clock: the timer behind ``burn_in_s`` and ``sampling_s``: wall-clock by default;
            ``time.process_time`` counts this process's CPU time only (on a shared machine,
            with one thread, that leaves out the time spent waiting for a core).

    Proposals whose state, energy or gradient is NaN or infinite are rejected (ULA too): such
    values never enter a chain. Each step draws ``xi`` (``randn`` of ``x0``'s shape) and then,
    for MALA, ``u`` (``rand`` of shape ``(chains,)``) from ``generator``, in that order.
    """
    if method not in ("mala", "ula"):
        raise ValueError(f"method must be 'mala' or 'ula' (got {method!r})")
    if x0.dim() != 2:
        raise ValueError(f"x0 must be (chains, d) (got shape {tuple(x0.shape)})")
    if tau <= 0 or burn_in < 0 or n_samples < 1 or thin < 1:
        raise ValueError(f"need tau > 0, burn_in >= 0, n_samples >= 1, thin >= 1 "
                         f"(got {tau}, {burn_in}, {n_samples}, {thin})")
    if adapt and method != "mala":
        raise ValueError("step-size adaptation targets an acceptance rate: use it with method='mala'")
    if bounds is not None and not bounds[0] < bounds[1]:
        raise ValueError(f"bounds must be (lo, hi) with lo < hi (got {bounds})")
    mala = method == "mala"
    chains = x0.shape[0]
    device = x0.device
    steps = burn_in + n_samples * thin

    x = x0.detach().clone()
    e, g = energy_and_grad(energy, x)
    samples = torch.empty((n_samples, *x.shape), dtype=x.dtype, device=device)
    trace = torch.empty((steps, chains), dtype=e.dtype, device=device)
    accepted = torch.zeros(chains, dtype=torch.float64, device=device)
    adapter = DualAveraging(tau, target_accept, device=device) if adapt else None
    step = torch.full((), tau, dtype=torch.float64, device=device)
    burn_in_accept = torch.zeros(chains, dtype=torch.float64, device=device)

    _sync(device)
    start = clock()
    burn_in_s = 0.0
    for i in tqdm(range(steps), desc=method, disable=not progress, leave=False):
        if i == burn_in:
            _sync(device)
            burn_in_s = clock() - start
            start = clock()
            burn_in_accept, accepted = accepted, torch.zeros_like(accepted)
            if adapter is not None:
                step = torch.full((), adapter.final_tau, dtype=torch.float64, device=device)
                adapter = None
        t = step if adapter is None else adapter.tau
        t_x = t.to(x.dtype)
        xi = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=device)
        proposal = x - t_x * g + torch.sqrt(2 * t_x) * xi
        e_new, g_new = energy_and_grad(energy, proposal)
        ok = torch.isfinite(e_new) & torch.isfinite(g_new).all(1) & torch.isfinite(proposal).all(1)
        if bounds is not None:
            ok &= ((proposal >= bounds[0]) & (proposal <= bounds[1])).all(1)
        if mala:
            u = torch.rand(chains, generator=generator, dtype=torch.float64, device=device)
            log_alpha = _log_accept(x, e, proposal, e_new, g_new, xi, t)
            log_alpha = torch.where(ok, log_alpha, torch.full_like(log_alpha, -math.inf))
            take = torch.log(u) < log_alpha
            if adapter is not None:
                adapter.update(log_alpha.clamp(max=0.0).exp().mean())
        else:
            take = ok
        x = torch.where(take[:, None], proposal, x)
        e = torch.where(take, e_new, e)
        g = torch.where(take[:, None], g_new, g)
        accepted += take
        trace[i] = e
        if i >= burn_in and (i - burn_in + 1) % thin == 0:
            samples[(i - burn_in) // thin] = x
    _sync(device)
    sampling_s = clock() - start
    if burn_in == 0:
        burn_in_accept = torch.full_like(accepted, math.nan)
    return SampleResult(
        samples=samples,
        accept_rate=(accepted / (n_samples * thin)).float(),
        burn_in_accept_rate=(burn_in_accept / max(burn_in, 1)).float(),
        energy=trace,
        burn_in_s=burn_in_s,
        sampling_s=sampling_s,
        tau=float(step),
        burn_in=burn_in,
        thin=thin,
    )


def _log_accept(x, e, proposal, e_new, g_new, xi, tau) -> torch.Tensor:
    """log of exp(-E(x') + E(x)) q(x | x') / q(x' | x), in float64.

    log q(b | a) = -|b - a + tau grad E(a)|^2 / (4 tau) + const; forwards, b - a + tau grad E(a)
    is sqrt(2 tau) xi, so log q(x' | x) = -|xi|^2 / 2 needs no gradient at x.
    """
    back = (x - proposal + tau.to(x.dtype) * g_new).double()
    log_q_back = -(back * back).sum(1) / (4 * tau)
    log_q_fwd = -0.5 * (xi.double() ** 2).sum(1)
    return (e.double() - e_new.double()) + log_q_back - log_q_fwd


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
