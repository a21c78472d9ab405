"""DDPM noise schedules and the forward/reverse process (``NoiseScheduler``).

Timestep convention (used everywhere in :mod:`trainlab.diffusion`): ``t`` is an
integer in ``{0, ..., T-1}``; index ``t`` is step ``t+1`` of Ho et al. (2020).
``betas[t]`` is the variance added by step ``t``, ``alphas[t] = 1 - betas[t]``,
``alphas_cumprod[t] = prod_{s <= t} alphas[s]`` and

    x_t = sqrt(alphas_cumprod[t]) * x_0 + sqrt(1 - alphas_cumprod[t]) * noise.

``t = 0`` is the least noisy step; sampling starts from ``x_{T-1} ~ N(0, I)`` and
the last reverse step (``t = 0``) returns ``x_0`` without adding noise.

Schedules return ``float32`` tensors of betas, shape ``(T,)``, on the CPU.
"""

from __future__ import annotations

import math

import torch

from trainlab.errors import ConfigError

SCHEDULES = ("linear", "cosine", "sigmoid")


def _check_T(T: int) -> None:
    if int(T) != T or T < 1:
        raise ConfigError(f"T must be a positive integer (got {T})")


def _check_range(beta_low: float, beta_high: float) -> None:
    if not (0 < beta_low <= beta_high < 1):
        raise ConfigError(f"need 0 < beta_low <= beta_high < 1 (got {beta_low}, {beta_high})")


def linear(T: int, beta_low: float = 1e-4, beta_high: float = 0.02) -> torch.Tensor:
    """Ho et al. (2020): betas evenly spaced from ``beta_low`` (t=0) to ``beta_high`` (t=T-1)."""
    _check_T(T)
    _check_range(beta_low, beta_high)
    return torch.linspace(beta_low, beta_high, T, dtype=torch.float64).to(torch.float32)


def cosine(T: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Nichol & Dhariwal (2021), "Improved DDPM", eq. 17.

    ``alphas_cumprod[t] = f(t+1) / f(0)`` with ``f(u) = cos^2(((u/T) + s)/(1 + s) * pi/2)``,
    ``betas[t] = 1 - f(t+1)/f(t)``, clipped at ``max_beta`` (0.999) so the last step
    does not destroy the signal with a beta of 1.
    """
    _check_T(T)
    u = torch.arange(T + 1, dtype=torch.float64)
    f = torch.cos(((u / T) + s) / (1 + s) * math.pi / 2) ** 2
    betas = 1 - f[1:] / f[:-1]
    return betas.clamp(max=max_beta).to(torch.float32)


def sigmoid(
    T: int, beta_low: float = 1e-4, beta_high: float = 0.02, start: float = -6.0, end: float = 6.0
) -> torch.Tensor:
    """Sigmoid *betas* of GeoDiff (Xu et al. 2022), the form many DDPM course codes use.

    ``betas[t] = beta_low + (beta_high - beta_low) * sigmoid(linspace(start, end, T)[t])``:
    an S-shaped ramp between the same end values as :func:`linear`, flat at both ends.
    (Not the sigmoid *alphas_cumprod* schedule of Jabri et al. 2023.)
    """
    _check_T(T)
    _check_range(beta_low, beta_high)
    ramp = torch.sigmoid(torch.linspace(start, end, T, dtype=torch.float64))
    return (beta_low + (beta_high - beta_low) * ramp).to(torch.float32)


def _rows(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``values`` (``(B,)`` or scalar) shaped to broadcast against ``like`` (batch first)."""
    values = values.to(device=like.device, dtype=like.dtype)
    return values.reshape(values.shape + (1,) * (like.dim() - values.dim()))


def _per_sample(coef: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``coef[t]`` shaped to broadcast against ``like`` (batch first); ``coef`` on ``like``'s device."""
    return _rows(coef[t.to(like.device).long()], like)


class NoiseScheduler:
    """The DDPM forward process ``q(x_t | x_0)`` and the ancestral reverse step.

    Attributes (float32 tensors on the CPU, shape ``(T,)``): ``betas``, ``alphas``,
    ``alphas_cumprod``; ``T`` is the number of steps.  Products are taken in float64.
    ``variance`` picks the reverse-step variance: ``"beta"`` (``sigma_t^2 = beta_t``,
    the DDPM paper's and the study's choice) or ``"posterior"``
    (``beta_tilde_t = beta_t (1 - abar_{t-1}) / (1 - abar_t)``).

    A step on another device uses a copy of the tables made there once (:meth:`on`): a copy
    per step would be a host-to-device transfer per step on a GPU.
    """

    def __init__(self, betas: torch.Tensor, variance: str = "beta"):
        betas = torch.as_tensor(betas, dtype=torch.float64).flatten()
        if betas.numel() < 1 or not bool(((betas > 0) & (betas < 1)).all()):
            raise ConfigError("betas must be a non-empty 1-D tensor with every value in (0, 1)")
        if variance not in ("beta", "posterior"):
            raise ConfigError(f"variance={variance!r} is not one of beta, posterior")
        alphas = 1 - betas
        abar = torch.cumprod(alphas, dim=0)
        abar_prev = torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
        self.T = int(betas.numel())
        self.variance = variance
        self.betas = betas.float()
        self.alphas = alphas.float()
        self.alphas_cumprod = abar.float()
        self.alphas_cumprod_prev = abar_prev.float()
        self.sqrt_alphas_cumprod = abar.sqrt().float()
        self.sqrt_one_minus_alphas_cumprod = (1 - abar).sqrt().float()
        var = betas if variance == "beta" else betas * (1 - abar_prev) / (1 - abar)
        self.sigmas = var.sqrt().float()
        # Reverse mean  mu = c_x * x_t - c_eps * eps  (Ho et al. eq. 11), as Python floats
        # so that a sampling loop over integer t does no tensor indexing or syncs.
        self._c_x = (1 / alphas.sqrt()).tolist()
        self._c_eps = (betas / (alphas.sqrt() * (1 - abar).sqrt())).tolist()
        self._sigma = var.sqrt().tolist()
        self._c_x_t = (1 / alphas.sqrt()).float()
        self._c_eps_t = (betas / (alphas.sqrt() * (1 - abar).sqrt())).float()
        self._copies: dict[tuple[str, torch.device], torch.Tensor] = {}

    def on(self, name: str, device: torch.device) -> torch.Tensor:
        """The table attribute ``name`` on ``device``, copied there at its first use only."""
        table = getattr(self, name)
        if table.device == device:
            return table
        key = (name, device)
        if key not in self._copies:
            self._copies[key] = table.to(device)
        return self._copies[key]

    def __len__(self) -> int:
        return self.T

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Sample ``q(x_t | x_0)``: ``sqrt(abar_t) * x0 + sqrt(1 - abar_t) * noise``.

        ``t`` is an integer tensor of shape ``(B,)`` (one step per row of ``x0``) or a scalar.
        """
        t = torch.as_tensor(t)
        return (
            _per_sample(self.on("sqrt_alphas_cumprod", x0.device), t, x0) * x0
            + _per_sample(self.on("sqrt_one_minus_alphas_cumprod", x0.device), t, x0) * noise
        )

    def posterior_mean(self, model_output: torch.Tensor, t, x_t: torch.Tensor) -> torch.Tensor:
        """Mean of ``p(x_{t-1} | x_t)`` given predicted noise: ``(x_t - beta_t/sqrt(1-abar_t) eps) / sqrt(alpha_t)``."""
        if isinstance(t, int):
            return self._c_x[t] * x_t - self._c_eps[t] * model_output
        t = torch.as_tensor(t)
        return (_per_sample(self.on("_c_x_t", x_t.device), t, x_t) * x_t
                - _per_sample(self.on("_c_eps_t", x_t.device), t, x_t) * model_output)

    def step(
        self,
        model_output: torch.Tensor,
        t,
        x_t: torch.Tensor,
        generator: torch.Generator | None = None,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One ancestral DDPM step ``x_t -> x_{t-1}`` from the predicted noise ``model_output``.

        ``x_{t-1} = posterior_mean + sigma_t * z`` with ``z = noise`` if given (pass zeros for
        the deterministic mean path), else ``z ~ N(0, I)`` drawn from ``generator`` (on the
        generator's device, then moved: give a generator on ``x_t``'s device to draw it there).  ``t`` is a Python int (all rows at the same step)
        or an integer tensor ``(B,)``; rows with ``t == 0`` get no noise.
        """
        mean = self.posterior_mean(model_output, t, x_t)
        if isinstance(t, int):
            if t == 0:
                return mean
            sigma = self._sigma[t]
        else:
            t = torch.as_tensor(t)
            sigma = _per_sample(self.on("sigmas", x_t.device), t, x_t) * _rows(t > 0, x_t)
        if noise is None:
            dev = generator.device if generator is not None else x_t.device
            noise = torch.randn(x_t.shape, generator=generator, device=dev, dtype=x_t.dtype).to(x_t.device)
        return mean + sigma * noise


def make_scheduler(
    kind: str,
    T: int,
    beta_low: float = 1e-4,
    beta_high: float = 0.02,
    *,
    s: float = 0.008,
    variance: str = "beta",
) -> NoiseScheduler:
    """``kind`` in :data:`SCHEDULES`; ``beta_low``/``beta_high`` apply to linear and sigmoid, ``s`` to cosine."""
    if kind == "linear":
        betas = linear(T, beta_low, beta_high)
    elif kind == "sigmoid":
        betas = sigmoid(T, beta_low, beta_high)
    elif kind == "cosine":
        betas = cosine(T, s=s)
    else:
        raise ConfigError(f"schedule={kind!r} is not one of {', '.join(SCHEDULES)}")
    return NoiseScheduler(betas, variance=variance)
