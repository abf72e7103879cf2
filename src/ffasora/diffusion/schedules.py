"""Noise schedules: the discrete DDPM schedule of Open-Sora Plan v1.3 and the rectified-flow time grid.

Two families share this package, and each names its noise level ``sigma`` the way its literature does:

* **DDPM family** (variance preserving, Ho et al. 2020): ``x_t = alpha_t x0 + s_t eps`` with
  ``alpha_t^2 = alphabar_t`` and ``s_t^2 = 1 - alphabar_t``. Samplers work in the equivalent variance-exploding
  coordinates of Karras et al. 2022 (EDM, Sec. 2): ``x = x_t / alpha_t = x0 + sigma eps`` with
  ``sigma = s_t / alpha_t = sqrt((1 - alphabar_t) / alphabar_t)`` and ``snr = 1 / sigma^2``.
* **Rectified flow** (Liu et al. 2022; Esser et al. 2024, SD3): ``x_t = (1 - t) x0 + t eps``; ``sigma = t``
  runs from 1 (pure noise) to 0 (data).

All schedule arithmetic is float64 so that a 1000-step cumulative product and ``log sigma`` near the zero-SNR
end stay exact; callers cast to the latent dtype.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

Spacing = Literal["trailing", "leading", "linspace"]

# With zero terminal SNR alphabar_T = 0 and sigma_T = inf. Samplers need a finite first step, so at sampling
# time alphabar_T is raised to the smallest positive float16 subnormal (the value diffusers uses), which
# gives sigma_max = 2^12 = 4096; training keeps the exact 0.
TERMINAL_ALPHABAR = 2.0**-24


def linear_betas(num_train_steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> Tensor:
    """The linear variance schedule of DDPM (Ho et al. 2020, Sec. 4): ``(num_train_steps,)`` float64.

    Computed in float32 first and then widened, because that is how the official schedulers build it and the
    rounding of ``beta`` shows up in ``alphabar`` at the 1e-7 level.
    """
    if num_train_steps < 2:
        raise ValueError(f"num_train_steps must be >= 2, got {num_train_steps}")
    if not 0.0 < beta_start < beta_end < 1.0:
        raise ValueError(f"need 0 < beta_start < beta_end < 1, got {beta_start}, {beta_end}")
    return torch.linspace(beta_start, beta_end, num_train_steps, dtype=torch.float32).double()


def rescale_zero_terminal_snr(betas: Tensor) -> Tensor:
    """Rescale betas so that the last step has SNR exactly 0 (Lin et al. 2024, "Common Diffusion Noise
    Schedules and Sample Steps are Flawed", Algorithm 1).

    ``sqrt(alphabar)`` is shifted so its last value is 0 and scaled so its first value is unchanged; the
    model then learns to start from pure noise, which is what it meets at inference. ``(T,) -> (T,)``.
    """
    root = torch.cumprod(1.0 - betas, dim=0).sqrt()
    first, last = root[0].clone(), root[-1].clone()
    root = (root - last) * (first / (first - last))
    alphabar = root**2
    alphas = torch.cat([alphabar[:1], alphabar[1:] / alphabar[:-1]])
    return 1.0 - alphas


def spaced_timesteps(num_train_steps: int, num_steps: int, spacing: Spacing = "trailing") -> Tensor:
    """The ``num_steps`` integer training timesteps a sampler visits, noisiest first: ``(num_steps,)`` int64.

    The three spacings of Lin et al. 2024, Table 2. Only "trailing" starts at the last timestep
    (``num_train_steps - 1``), which zero terminal SNR requires: "leading" and "linspace" start below it and
    so never show the model the pure-noise input it was trained to start from.
    """
    if not 1 <= num_steps <= num_train_steps:
        raise ValueError(f"num_steps must be in [1, {num_train_steps}], got {num_steps}")
    if spacing == "trailing":
        # start - i * ratio, i < num_steps; a float ``arange(start, 0, -ratio)`` can overshoot by one element
        ratio = num_train_steps / num_steps
        steps = (num_train_steps - torch.arange(num_steps, dtype=torch.float64) * ratio).round() - 1
    elif spacing == "leading":
        ratio = num_train_steps // num_steps
        steps = (torch.arange(num_steps, dtype=torch.float64) * ratio).flip(0)
    elif spacing == "linspace":
        steps = torch.linspace(0, num_train_steps - 1, num_steps, dtype=torch.float64).round().flip(0)
    else:
        raise ValueError(f"timestep spacing must be 'trailing', 'leading' or 'linspace', got {spacing!r}")
    return steps.long()


@dataclass(frozen=True)
class DDPMSchedule:
    """The discrete DDPM schedule. Defaults are the Open-Sora Plan v1.3 recipe: 1000 steps, linear betas
    1e-4..0.02, rescaled to zero terminal SNR."""

    num_train_steps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    zero_terminal_snr: bool = True

    def alphas_cumprod(self) -> Tensor:
        """``alphabar_t`` for t = 0..T-1: ``(T,)`` float64; exactly 0 at T-1 under zero terminal SNR."""
        betas = linear_betas(self.num_train_steps, self.beta_start, self.beta_end)
        if self.zero_terminal_snr:
            betas = rescale_zero_terminal_snr(betas)
        return torch.cumprod(1.0 - betas, dim=0)

    def alpha_sigma(self, timesteps: Tensor) -> tuple[Tensor, Tensor]:
        """Signal and noise scales ``(sqrt(alphabar_t), sqrt(1 - alphabar_t))`` at integer ``timesteps``
        (any shape), float64, same shape."""
        alphabar = self.alphas_cumprod().to(timesteps.device)[timesteps.long()]
        return alphabar.sqrt(), (1.0 - alphabar).sqrt()

    def snr(self, timesteps: Tensor) -> Tensor:
        """Signal-to-noise ratio ``alphabar / (1 - alphabar)`` at integer ``timesteps``; 0 at the zero-SNR end."""
        alpha, sigma = self.alpha_sigma(timesteps)
        return (alpha / sigma) ** 2

    def sampling_alphas_cumprod(self) -> Tensor:
        """``alphabar`` with the terminal value raised to :data:`TERMINAL_ALPHABAR` so that sigma is finite."""
        alphabar = self.alphas_cumprod()
        if self.zero_terminal_snr:
            alphabar[-1] = TERMINAL_ALPHABAR
        return alphabar

    def sigmas(self, timesteps: Tensor) -> Tensor:
        """Variance-exploding noise levels ``sqrt((1 - alphabar) / alphabar)`` at ``timesteps`` (noisiest
        first), with a final 0 appended: ``(n,) -> (n + 1,)`` float64, the grid DDPM-family samplers walk."""
        alphabar = self.sampling_alphas_cumprod()[timesteps.long().cpu()]
        return torch.cat([((1.0 - alphabar) / alphabar).sqrt(), alphabar.new_zeros(1)])

    def sigma_to_timestep(self, sigma: Tensor) -> Tensor:
        """The (fractional) training timestep whose sigma is ``sigma``: linear interpolation in ``log sigma``
        (Karras et al. 2022, App. C.3.4). Exact at the table's own sigmas; float64, shape of ``sigma``.

        Under zero terminal SNR the clamped last level lies below the few levels just before it, so those are
        left out of the table: it must increase for the inverse to exist.
        """
        log_table, index = (t.to(sigma.device) for t in _inverse_table(self))
        log_sigma = sigma.double().clamp(min=1e-12).log().reshape(-1)
        upper = torch.searchsorted(log_table, log_sigma).clamp(1, len(log_table) - 1)
        lo, hi = log_table[upper - 1], log_table[upper]
        frac = ((log_sigma - lo) / (hi - lo)).clamp(0.0, 1.0)
        return torch.lerp(index[upper - 1], index[upper], frac).reshape(sigma.shape)


@functools.lru_cache(maxsize=8)
def _inverse_table(schedule: DDPMSchedule) -> tuple[Tensor, Tensor]:
    """``(log sigma, timestep)`` at the timesteps where ``log sigma`` increases; cached because samplers
    call :meth:`DDPMSchedule.sigma_to_timestep` once per network evaluation. Never modified in place."""
    alphabar = schedule.sampling_alphas_cumprod()
    log_table = ((1.0 - alphabar) / alphabar).sqrt().log()
    keep = log_table < log_table[-1]
    keep[-1] = True
    return log_table[keep], torch.arange(schedule.num_train_steps, dtype=torch.float64)[keep]


def shift_time(t: Tensor, shift: float) -> Tensor:
    """Warp flow times towards the noisy end: ``shift t / (1 + (shift - 1) t)`` (Esser et al. 2024, SD3,
    Eq. 23). ``shift > 1`` spends more steps (and training samples) at high noise, which larger images need
    because more pixels carry more redundant signal at a given noise level."""
    if shift <= 0:
        raise ValueError(f"time shift must be > 0, got {shift}")
    return shift * t / (1.0 + (shift - 1.0) * t)


def resolution_shift(num_tokens: int, base_tokens: int = 256, base_shift: float = 1.0) -> float:
    """The time shift for a latent of ``num_tokens`` tokens: ``base_shift * sqrt(num_tokens / base_tokens)``.

    SD3 (Esser et al. 2024, Sec. 5.3.2) derives ``sqrt(m / n)`` from matching the per-token signal at
    resolution ``m`` to that at ``n``. For video, tokens = latent frames x (h/patch) x (w/patch).
    """
    if num_tokens <= 0 or base_tokens <= 0:
        raise ValueError(f"token counts must be positive, got {num_tokens} and {base_tokens}")
    return base_shift * math.sqrt(num_tokens / base_tokens)


def flow_sigmas(num_steps: int, shift: float = 1.0) -> Tensor:
    """The flow-time grid from 1 (noise) to 0 (data), uniform then :func:`shift_time`-warped:
    ``(num_steps + 1,)`` float64."""
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    return shift_time(torch.linspace(1.0, 0.0, num_steps + 1, dtype=torch.float64), shift)
