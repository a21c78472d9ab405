"""Step-size adaptation for MALA: dual averaging of log(tau) towards a target acceptance."""

from __future__ import annotations

import math

import torch

TARGET_ACCEPT = 0.574  # the asymptotically optimal MALA acceptance rate (Roberts & Rosenthal 1998)


class DualAveraging:
    """Nesterov dual averaging of log(tau) towards a target acceptance (Hoffman & Gelman 2014, §3.2).

    One :meth:`update` per step with the step's acceptance probability (a 0-d tensor, the mean
    over chains); :attr:`tau` is the step for the next proposal, :attr:`final_tau` the averaged
    iterate that is frozen after burn-in. State stays on the device: no host sync per step.
    ``dtype`` is the chains' (:mod:`trainlab.mcmc.langevin`): float32 chains keep float64 off
    the device (an Apple GPU has none).
    """

    def __init__(self, tau0: float, target: float = TARGET_ACCEPT, gamma: float = 0.05, t0: float = 10.0,
                 kappa: float = 0.75, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float64):
        self.mu = math.log(10.0 * tau0)
        self.target, self.gamma, self.t0, self.kappa = target, gamma, t0, kappa
        self.t = 0
        self.h_bar = torch.zeros((), dtype=dtype, device=device)
        self.log_tau = torch.full((), math.log(tau0), dtype=dtype, device=device)
        self.log_tau_bar = torch.zeros((), dtype=dtype, device=device)

    @property
    def tau(self) -> torch.Tensor:
        """Step for the next proposal, a 0-d tensor on the adapter's device."""
        return self.log_tau.exp()

    @property
    def final_tau(self) -> float:
        """The averaged step, frozen after burn-in (the current one before any update)."""
        return float(self.log_tau_bar.exp()) if self.t else float(self.tau)

    def update(self, accept_prob: torch.Tensor) -> None:
        """One dual-averaging step with this step's mean acceptance probability."""
        self.t += 1
        t = self.t
        w = 1.0 / (t + self.t0)
        self.h_bar = (1 - w) * self.h_bar + w * (self.target - accept_prob.to(self.h_bar.dtype))
        self.log_tau = self.mu - math.sqrt(t) / self.gamma * self.h_bar
        eta = t ** (-self.kappa)
        self.log_tau_bar = eta * self.log_tau + (1 - eta) * self.log_tau_bar

    def state_dict(self) -> dict:
        """What changes as it adapts (the rest follows from the constructor's arguments)."""
        return {"t": self.t, "h_bar": self.h_bar, "log_tau": self.log_tau, "log_tau_bar": self.log_tau_bar}

    def load_state_dict(self, state: dict) -> None:
        """Continue from :meth:`state_dict`'s ``state`` (tensors go to this adapter's device and dtype)."""
        like = self.log_tau
        self.t = int(state["t"])
        self.h_bar, self.log_tau, self.log_tau_bar = (
            torch.as_tensor(state[k], dtype=like.dtype, device=like.device) for k in ("h_bar", "log_tau", "log_tau_bar"))
