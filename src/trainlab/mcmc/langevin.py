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

The shape is BlackJAX's: a :class:`LangevinState` (position, energy, gradient of every
chain), :func:`init`, and one-step kernels :func:`mala_step` and :func:`ula_step` that
return ``(state, info)``; the loop is the caller's. :func:`sample` is that loop with
burn-in, thinning, optional step-size adaptation and timings.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Optional

import torch
from tqdm.auto import tqdm

from trainlab.errors import ConfigError
from trainlab.mcmc.adaptation import TARGET_ACCEPT, DualAveraging

Energy = Callable[[torch.Tensor], torch.Tensor]


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
            raise ConfigError(f"energy must map (chains, d) to (chains,); got {tuple(e.shape)} "
                             f"for input {tuple(x.shape)}")
        if not e.requires_grad:  # an energy that ignores x (a flat target) has a zero gradient
            return e.detach(), torch.zeros_like(x)
        (g,) = torch.autograd.grad(e.sum(), x, materialize_grads=True)
    return e.detach(), g


@dataclass(frozen=True)
class LangevinState:
    """Every chain's current point with its energy and gradient: what one step needs and returns.

    Keeping E(x) and grad E(x) beside x is what lets a step evaluate the energy once, at the proposal.
    """

    position: torch.Tensor
    """Current states, ``(chains, d)``."""
    energy: torch.Tensor
    """E(position), ``(chains,)``."""
    gradient: torch.Tensor
    """grad E(position), ``(chains, d)``."""


@dataclass(frozen=True)
class LangevinInfo:
    """What one step did, per chain (nothing here synchronises with the host)."""

    proposal: LangevinState
    """The proposed states with their energies and gradients (possibly NaN or infinite)."""
    log_accept_ratio: torch.Tensor
    """float64 ``(chains,)``: MALA's log Metropolis-Hastings ratio; for ULA 0 (kept) or -inf (refused);
    -inf wherever the proposal was refused as non-finite or out of bounds."""
    accepted: torch.Tensor
    """bool ``(chains,)``: the chain moved to its proposal."""

    @property
    def accept_prob(self) -> torch.Tensor:
        """min(1, acceptance ratio), float64 ``(chains,)``."""
        return self.log_accept_ratio.clamp(max=0.0).exp()


Kernel = Callable[..., tuple[LangevinState, LangevinInfo]]


def init(position: torch.Tensor, energy: Energy) -> LangevinState:
    """The starting state of ``position.shape[0]`` chains: one energy and gradient evaluation."""
    x = position.detach().clone()
    e, g = energy_and_grad(energy, x)
    return LangevinState(x, e, g)


def mala_step(state: LangevinState, energy: Energy, tau: float | torch.Tensor,
              generator: Optional[torch.Generator] = None,
              bounds: Optional[tuple[float, float]] = None) -> tuple[LangevinState, LangevinInfo]:
    """One Metropolis-adjusted Langevin step of every chain; returns ``(new state, info)``.

    Draws ``xi`` (``randn`` of the position's shape) and then ``u`` (``rand`` of ``(chains,)``,
    float64) from ``generator``. ``tau`` may be a 0-d float64 tensor (an adapted step stays on the
    device). Proposals outside ``bounds`` or with a non-finite state, energy or gradient are refused.
    """
    tau = _as_step(tau, state.position.device)
    proposal, xi, ok = _propose(state, energy, tau, generator, bounds)
    u = torch.rand(state.energy.shape[0], generator=generator, dtype=torch.float64, device=state.position.device)
    log_alpha = _log_accept(state, proposal, xi, tau)
    log_alpha = torch.where(ok, log_alpha, torch.full_like(log_alpha, -math.inf))
    take = torch.log(u) < log_alpha
    return _move(state, proposal, take), LangevinInfo(proposal, log_alpha, take)


def ula_step(state: LangevinState, energy: Energy, tau: float | torch.Tensor,
             generator: Optional[torch.Generator] = None,
             bounds: Optional[tuple[float, float]] = None) -> tuple[LangevinState, LangevinInfo]:
    """One unadjusted Langevin step of every chain: every finite, in-bounds proposal is taken.

    Draws ``xi`` (``randn`` of the position's shape) from ``generator``, nothing else.
    """
    tau = _as_step(tau, state.position.device)
    proposal, _, ok = _propose(state, energy, tau, generator, bounds)
    log_ratio = torch.zeros(ok.shape, dtype=torch.float64, device=ok.device).masked_fill_(~ok, -math.inf)
    return _move(state, proposal, ok), LangevinInfo(proposal, log_ratio, ok)


KERNELS: dict[str, Kernel] = {"mala": mala_step, "ula": ula_step}
"""The one-step kernels by the name :func:`sample` accepts as ``method``."""


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
    """Run ``x0.shape[0]`` Langevin chains side by side: :func:`init`, then the method's kernel in a loop.

    Args:
        energy: maps a batch ``(chains, d)`` to energies ``(chains,)``; differentiated with autograd.
        x0: starting states ``(chains, d)``; their dtype and device are the chains'.
        method: ``"mala"`` (accept/reject) or ``"ula"`` (always accept): a key of :data:`KERNELS`.
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
    if method not in KERNELS:
        raise ConfigError(f"method must be 'mala' or 'ula' (got {method!r})")
    if x0.dim() != 2:
        raise ConfigError(f"x0 must be (chains, d) (got shape {tuple(x0.shape)})")
    if tau <= 0 or burn_in < 0 or n_samples < 1 or thin < 1:
        raise ConfigError(f"need tau > 0, burn_in >= 0, n_samples >= 1, thin >= 1 "
                          f"(got {tau}, {burn_in}, {n_samples}, {thin})")
    if adapt and method != "mala":
        raise ConfigError("step-size adaptation targets an acceptance rate: use it with method='mala'")
    if bounds is not None and not bounds[0] < bounds[1]:
        raise ConfigError(f"bounds must be (lo, hi) with lo < hi (got {bounds})")
    kernel = KERNELS[method]
    chains = x0.shape[0]
    device = x0.device
    steps = burn_in + n_samples * thin

    state = init(x0, energy)
    samples = torch.empty((n_samples, *x0.shape), dtype=x0.dtype, device=device)
    trace = torch.empty((steps, chains), dtype=state.energy.dtype, device=device)
    accepted = torch.zeros(chains, dtype=torch.float64, device=device)
    adapter = DualAveraging(tau, target_accept, device=device) if adapt else None
    step = torch.full((), tau, dtype=torch.float64, device=device)
    burn_in_accept = torch.zeros(chains, dtype=torch.float64, device=device)

    _sync(device)
    start = clock()
    burn_in_s = 0.0
    for i in tqdm(range(steps), desc=method, disable=not progress, leave=False):
        if i == burn_in:  # burn-in ends: time it, count acceptances afresh, freeze the adapted step
            _sync(device)
            burn_in_s = clock() - start
            start = clock()
            burn_in_accept, accepted = accepted, torch.zeros_like(accepted)
            if adapter is not None:
                step = torch.full((), adapter.final_tau, dtype=torch.float64, device=device)
                adapter = None
        state, info = kernel(state, energy, step if adapter is None else adapter.tau, generator, bounds)
        if adapter is not None:
            adapter.update(info.accept_prob.mean())
        accepted += info.accepted
        trace[i] = state.energy
        if i >= burn_in and (i - burn_in + 1) % thin == 0:
            samples[(i - burn_in) // thin] = state.position
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


def _as_step(tau: float | torch.Tensor, device: torch.device) -> torch.Tensor:
    """The step as a 0-d float64 tensor: the acceptance ratio is computed in float64."""
    return torch.as_tensor(tau, dtype=torch.float64, device=device)


def _propose(state: LangevinState, energy: Energy, tau: torch.Tensor, generator: Optional[torch.Generator],
             bounds: Optional[tuple[float, float]]) -> tuple[LangevinState, torch.Tensor, torch.Tensor]:
    """The Langevin proposal of every chain, its noise ``xi`` and which proposals may be taken at all."""
    x = state.position
    tau_x = tau.to(x.dtype)
    xi = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    position = x - tau_x * state.gradient + torch.sqrt(2 * tau_x) * xi
    e, g = energy_and_grad(energy, position)
    ok = torch.isfinite(e) & torch.isfinite(g).all(1) & torch.isfinite(position).all(1)
    if bounds is not None:
        ok &= ((position >= bounds[0]) & (position <= bounds[1])).all(1)
    return LangevinState(position, e, g), xi, ok


def _move(state: LangevinState, proposal: LangevinState, take: torch.Tensor) -> LangevinState:
    """Each chain's proposal where ``take``, else its current state (energy and gradient along)."""
    return LangevinState(torch.where(take[:, None], proposal.position, state.position),
                         torch.where(take, proposal.energy, state.energy),
                         torch.where(take[:, None], proposal.gradient, state.gradient))


def _log_accept(state: LangevinState, proposal: LangevinState, xi: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    """log of exp(-E(x') + E(x)) q(x | x') / q(x' | x), in float64.

    log q(b | a) = -|b - a + tau grad E(a)|^2 / (4 tau) + const; forwards, b - a + tau grad E(a)
    is sqrt(2 tau) xi, so log q(x' | x) = -|xi|^2 / 2 needs no gradient at x.
    """
    x = state.position
    back = (x - proposal.position + tau.to(x.dtype) * proposal.gradient).double()
    log_q_back = -(back * back).sum(1) / (4 * tau)
    log_q_fwd = -0.5 * (xi.double() ** 2).sum(1)
    return (state.energy.double() - proposal.energy.double()) + log_q_back - log_q_fwd


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
