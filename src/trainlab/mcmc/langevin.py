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
Nothing in the loop synchronises with the host (no ``.item()``). The acceptance ratio and
its statistics are computed in the chains' dtype (``x0``'s): float32 chains never put a
float64 tensor on the device (an Apple GPU has none), and the energies they compare are
float32 already, so a float64 ratio would only round float32 numbers more carefully.

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
from trainlab.train.snapshots import SnapshotSlot, resume_training, training_snapshot

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
    """``(chains,)`` in the chains' dtype: MALA's log Metropolis-Hastings ratio; for ULA 0 (kept) or -inf (refused);
    -inf wherever the proposal was refused as non-finite or out of bounds."""
    accepted: torch.Tensor
    """bool ``(chains,)``: the chain moved to its proposal."""

    @property
    def accept_prob(self) -> torch.Tensor:
        """min(1, acceptance ratio), ``(chains,)`` in the chains' dtype."""
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
    in the position's dtype) from ``generator``. ``tau`` may be a 0-d tensor (an adapted step
    stays on the device). Proposals outside ``bounds`` or with a non-finite state, energy or
    gradient are refused.
    """
    x = state.position
    tau = _as_step(tau, x)
    proposal, xi, ok = _propose(state, energy, tau, generator, bounds)
    u = torch.rand(state.energy.shape[0], generator=generator, dtype=x.dtype, device=x.device)
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
    tau = _as_step(tau, state.position)
    proposal, _, ok = _propose(state, energy, tau, generator, bounds)
    log_ratio = torch.zeros(ok.shape, dtype=state.position.dtype, device=ok.device).masked_fill_(~ok, -math.inf)
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
    snapshot: Optional[SnapshotSlot] = None,
    chunk: int = 100,
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
        snapshot: where this sampling keeps its state (:mod:`trainlab.train.snapshots`): it
            continues from the slot's last snapshot (a finished one returns its result at once)
            and saves at the end of a chunk of steps whenever the slot says it is due, and at the end.
        chunk: steps between the points where a due snapshot is taken (it copies the kept samples
            to the host: not worth checking every step).

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
    if chunk < 1:
        raise ConfigError(f"chunk must be >= 1 step (got {chunk})")
    kernel, device, steps = KERNELS[method], x0.device, burn_in + n_samples * thin
    generators = () if generator is None else (generator,)

    saved, finished = resume_training(snapshot, modules={}, generators=generators) or (None, False)
    chains = _Chains.start(x0, energy, steps, n_samples, tau, target_accept if adapt else None, saved)

    def save(finished: bool, phase_s: float) -> None:
        snapshot.save(training_snapshot(finished=finished, modules={}, generators=generators,
                                        **chains.state(burn_in, thin), phase_s=phase_s))

    # Timers count the current phase (burn-in, then sampling) from where a snapshot left it.
    _sync(device)
    start = clock() - chains.phase_s
    sampling_s = chains.phase_s
    if not finished:
        for i in tqdm(range(chains.done, steps), desc=method, disable=not progress, leave=False):
            if i == burn_in:  # burn-in ends: time it, count acceptances afresh, freeze the adapted step
                _sync(device)
                chains.burn_in_s = clock() - start
                start = clock()
                chains.end_burn_in()
            state, info = kernel(chains.state_now, energy, chains.tau_now, generator, bounds)
            chains.record(state, info, i, burn_in, thin)
            if snapshot is not None and chains.done % chunk == 0 and chains.done < steps and snapshot.due():
                _sync(device)
                save(False, clock() - start)
        _sync(device)
        sampling_s = clock() - start
        if snapshot is not None:
            save(True, sampling_s)
    burn_in_accept = chains.burn_in_accept if burn_in else torch.full_like(chains.accepted, math.nan)
    return SampleResult(
        samples=chains.samples,
        accept_rate=(chains.accepted / (n_samples * thin)).float(),
        burn_in_accept_rate=(burn_in_accept / max(burn_in, 1)).float(),
        energy=chains.trace,
        burn_in_s=chains.burn_in_s,
        sampling_s=sampling_s,
        tau=float(chains.step),
        burn_in=burn_in,
        thin=thin,
    )


@dataclass
class _Chains:
    """The loop of :func:`sample` between two steps: everything a snapshot keeps to continue it."""

    state_now: LangevinState
    samples: torch.Tensor
    """``(n_samples, chains, d)``, filled up to the samples kept so far."""
    trace: torch.Tensor
    """``(steps, chains)``, filled up to :attr:`done`."""
    accepted: torch.Tensor
    """Accepted proposals per chain in the current phase (burn-in, then sampling)."""
    burn_in_accept: torch.Tensor
    step: torch.Tensor
    """The frozen step (the given tau, or the adapted one once burn-in ended)."""
    adapter: Optional[DualAveraging]
    """Adapting the step during burn-in (MALA with ``adapt``), else None."""
    done: int = 0
    """Steps taken."""
    burn_in_s: float = 0.0
    phase_s: float = 0.0
    """Seconds spent in the current phase when the snapshot was taken (for the timers)."""

    @classmethod
    def start(cls, x0: torch.Tensor, energy: Energy, steps: int, n_samples: int, tau: float,
              target_accept: Optional[float], saved: Optional[dict] = None) -> "_Chains":
        """The loop before its first step, or as :meth:`state` left it (``saved``, unpacked)."""
        dev = x0.device
        if saved is not None and (saved["steps"] != steps or list(saved["position"].shape) != list(x0.shape)):
            raise ValueError(f"the snapshot holds {saved['steps']} steps of chains {list(saved['position'].shape)}, "
                             f"not {steps} steps of {list(x0.shape)}: it is another sampling's")
        state = init(x0, energy) if saved is None else LangevinState(
            *(saved[k].to(dev) for k in ("position", "energy", "gradient")))
        zeros = torch.zeros(x0.shape[0], dtype=x0.dtype, device=dev)  # counts: exact in float32 to 2**24 steps
        chains = cls(state, torch.empty((n_samples, *x0.shape), dtype=x0.dtype, device=dev),
                     torch.empty((steps, x0.shape[0]), dtype=state.energy.dtype, device=dev),
                     zeros, zeros.clone(), _as_step(tau, x0),
                     None if target_accept is None else DualAveraging(tau, target_accept, device=dev, dtype=x0.dtype))
        if saved is not None:
            chains.samples[: len(saved["samples"])] = saved["samples"].to(dev)
            chains.trace[: saved["done"]] = saved["trace"].to(dev)
            chains.accepted, chains.burn_in_accept, chains.step = (
                saved[k].to(dev, x0.dtype) for k in ("accepted", "burn_in_accept", "step"))
            chains.done, chains.burn_in_s, chains.phase_s = saved["done"], saved["burn_in_s"], saved["phase_s"]
            if saved["adapter"] is None:  # burn-in had ended: the step was frozen
                chains.adapter = None
            else:
                chains.adapter.load_state_dict(saved["adapter"])
        return chains

    def state(self, burn_in: int, thin: int) -> dict:
        """The loop's state for a snapshot: the kept samples and the trace so far, not the empty rest."""
        kept = max(self.done - burn_in, 0) // thin
        return {"steps": len(self.trace), "position": self.state_now.position, "energy": self.state_now.energy,
                "gradient": self.state_now.gradient, "samples": self.samples[:kept], "trace": self.trace[:self.done],
                "accepted": self.accepted, "burn_in_accept": self.burn_in_accept, "step": self.step,
                "adapter": None if self.adapter is None else self.adapter.state_dict(), "done": self.done,
                "burn_in_s": self.burn_in_s}

    @property
    def tau_now(self) -> torch.Tensor:
        return self.step if self.adapter is None else self.adapter.tau

    def end_burn_in(self) -> None:
        self.burn_in_accept, self.accepted = self.accepted, torch.zeros_like(self.accepted)
        if self.adapter is not None:
            self.step = torch.full_like(self.step, self.adapter.final_tau)
            self.adapter = None

    def record(self, state: LangevinState, info: LangevinInfo, i: int, burn_in: int, thin: int) -> None:
        """Step ``i`` took the chains to ``state``."""
        self.state_now = state
        if self.adapter is not None:
            self.adapter.update(info.accept_prob.mean())
        self.accepted += info.accepted
        self.trace[i] = state.energy
        if i >= burn_in and (i - burn_in + 1) % thin == 0:
            self.samples[(i - burn_in) // thin] = state.position
        self.done = i + 1


def _as_step(tau: float | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The step as a 0-d tensor of ``like``'s dtype and device (the chains'): the step itself when it
    already is one (the sampler's own, every step), so no copy is made."""
    if isinstance(tau, torch.Tensor) and tau.dtype == like.dtype and tau.device == like.device:
        return tau
    return torch.as_tensor(tau, dtype=like.dtype, device=like.device)


def _propose(state: LangevinState, energy: Energy, tau: torch.Tensor, generator: Optional[torch.Generator],
             bounds: Optional[tuple[float, float]]) -> tuple[LangevinState, torch.Tensor, torch.Tensor]:
    """The Langevin proposal of every chain, its noise ``xi`` and which proposals may be taken at all."""
    x = state.position
    xi = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    position = x - tau * state.gradient + torch.sqrt(2 * tau) * xi
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
    """log of exp(-E(x') + E(x)) q(x | x') / q(x' | x), in the chains' dtype.

    log q(b | a) = -|b - a + tau grad E(a)|^2 / (4 tau) + const; forwards, b - a + tau grad E(a)
    is sqrt(2 tau) xi, so log q(x' | x) = -|xi|^2 / 2 needs no gradient at x.
    """
    x = state.position
    back = x - proposal.position + tau * proposal.gradient
    log_q_back = -(back * back).sum(1) / (4 * tau)
    log_q_fwd = -0.5 * (xi**2).sum(1)
    return (state.energy - proposal.energy) + log_q_back - log_q_fwd


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
