"""Samplers: plain functions with one signature, after k-diffusion (Karras et al. 2022).

    sampler(denoise, x, sigmas, *, generator=None, progress=None) -> x0

* ``denoise(x, sigma) -> x0 estimate`` (see :mod:`ffasora.diffusion.denoisers`);
* ``x`` the starting latent ``noise * sigmas[0]``, ``(B, ...)``;
* ``sigmas`` the noise levels to visit, noisiest first and ending at 0, ``(n + 1,)`` for ``n`` steps.

Every update is written in terms of ``d = (x - D(x, sigma)) / sigma``. In variance-exploding coordinates
(DDPM family, ``x = x0 + sigma eps``) that is the probability-flow ODE's ``dx/dsigma``; in rectified-flow
coordinates (``x = (1 - t) x0 + t eps``, ``sigma = t``) it is exactly the velocity ``eps - x0``. So
:func:`euler` and :func:`heun` are correct, unchanged, for both families, while :func:`euler_ancestral` and
:func:`dpmpp_2m` assume variance-exploding coordinates and serve the DDPM family only (:data:`SAMPLERS`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ffasora.diffusion.denoisers import DenoiseFn

Progress = Callable[[int, int], None]
"""``progress(done, total)``, called after every step."""

Sampler = Callable[..., Tensor]


def randn_like(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Standard-normal noise shaped like ``x``, drawn on the generator's device and moved to ``x``'s, so that
    a CPU generator reproduces the same numbers whatever device the latents live on."""
    device = generator.device if generator is not None else x.device
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=device).to(x.device)


def _check_grid(sigmas: Tensor) -> None:
    if sigmas.ndim != 1 or len(sigmas) < 2:
        raise ValueError(
            f"sigmas must be a 1-D grid of >= 2 levels ending at 0, got shape {tuple(sigmas.shape)}"
        )
    if float(sigmas[-1]) != 0.0:
        raise ValueError(f"sigmas must end at 0, got {float(sigmas[-1])}")
    rising = (sigmas[1:] >= sigmas[:-1]).nonzero()
    if len(rising):
        i = int(rising[0])
        raise ValueError(
            f"sigmas must decrease strictly, but step {i} goes {float(sigmas[i]):.6g} -> {float(sigmas[i + 1]):.6g}"
            " (under zero terminal SNR, trailing grids finer than about 285 of 1000 steps revisit the clamped terminal level)"
        )


def _batch(sigma: Tensor, x: Tensor) -> Tensor:
    return sigma.double().expand(x.shape[0]).to(x.device)


def _step_done(progress: Progress | None, i: int, total: int) -> None:
    if progress is not None:
        progress(i + 1, total)


@torch.no_grad()
def euler(
    denoise: DenoiseFn,
    x: Tensor,
    sigmas: Tensor,
    *,
    generator: torch.Generator | None = None,
    progress: Progress | None = None,
) -> Tensor:
    """Euler steps of the probability-flow ODE (Karras et al. 2022, Eq. 4 and Alg. 1 without the 2nd order).

    In variance-exploding coordinates this is DDIM with eta = 0 (Song et al. 2021); in flow coordinates the
    rectified-flow Euler sampler (Liu et al. 2022). One network evaluation per step; deterministic, so
    ``generator`` is unused.
    """
    _check_grid(sigmas)
    n = len(sigmas) - 1
    for i in range(n):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        d = (x - denoise(x, _batch(sigma, x))) / float(sigma)
        x = x + d * float(sigma_next - sigma)
        _step_done(progress, i, n)
    return x


@torch.no_grad()
def heun(
    denoise: DenoiseFn,
    x: Tensor,
    sigmas: Tensor,
    *,
    generator: torch.Generator | None = None,
    progress: Progress | None = None,
) -> Tensor:
    """Heun's second-order method (Karras et al. 2022, Alg. 1): an Euler predictor, then the trapezoid of the
    slopes at both ends. The last step, into sigma = 0 where the slope is undefined, is plain Euler, so ``n``
    steps cost ``2n - 1`` network evaluations."""
    _check_grid(sigmas)
    n = len(sigmas) - 1
    for i in range(n):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        d = (x - denoise(x, _batch(sigma, x))) / float(sigma)
        dt = float(sigma_next - sigma)
        x_euler = x + d * dt
        if float(sigma_next) == 0.0:
            x = x_euler
        else:
            d_next = (x_euler - denoise(x_euler, _batch(sigma_next, x))) / float(sigma_next)
            x = x + (d + d_next) * (dt / 2)
        _step_done(progress, i, n)
    return x


@torch.no_grad()
def euler_ancestral(
    denoise: DenoiseFn,
    x: Tensor,
    sigmas: Tensor,
    *,
    generator: torch.Generator | None = None,
    progress: Progress | None = None,
    eta: float = 1.0,
) -> Tensor:
    """Euler-ancestral sampling (k-diffusion ``sample_euler_ancestral``), the Open-Sora Plan v1.3 sampler.

    Each step from ``sigma`` to ``sigma_next`` splits ``sigma_next^2 = sigma_down^2 + sigma_up^2`` with
    ``sigma_up = eta * sigma_next sqrt(1 - sigma_next^2 / sigma^2)`` (the DDPM posterior variance, Ho et al.
    2020 Eq. 7, in VE coordinates), takes a deterministic Euler step to ``sigma_down`` and adds fresh noise of
    scale ``sigma_up``. Variance-exploding coordinates only. Noise is drawn once per step from ``generator``
    in ``x``'s dtype, so a fixed generator seed reproduces a sample.
    """
    _check_grid(sigmas)
    n = len(sigmas) - 1
    for i in range(n):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        sigma_up = min(sigma_next, eta * (sigma_next**2 * (sigma**2 - sigma_next**2) / sigma**2) ** 0.5)
        sigma_down = (sigma_next**2 - sigma_up**2) ** 0.5
        d = (x - denoise(x, _batch(sigmas[i], x))) / sigma
        x = x + d * (sigma_down - sigma)
        x = x + randn_like(x, generator) * sigma_up
        _step_done(progress, i, n)
    return x


@torch.no_grad()
def dpmpp_2m(
    denoise: DenoiseFn,
    x: Tensor,
    sigmas: Tensor,
    *,
    generator: torch.Generator | None = None,
    progress: Progress | None = None,
) -> Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++", Alg. 2): a multistep exponential integrator on the
    data prediction in ``lambda = -log sigma``. The first step is first order (no history); each later step
    extrapolates ``D`` linearly from the previous one with ``r = h_prev / h``; the step into sigma = 0 returns
    ``D`` itself. One evaluation per step; deterministic. Variance-exploding coordinates only.
    """
    _check_grid(sigmas)
    n = len(sigmas) - 1
    previous: Tensor | None = None
    h_previous = 0.0
    for i in range(n):
        sigma, sigma_next = sigmas[i].double(), sigmas[i + 1].double()
        denoised = denoise(x, _batch(sigmas[i], x))
        if float(sigma_next) == 0.0:
            x = denoised
        else:
            h = float(sigma.log() - sigma_next.log())
            if previous is None:
                estimate = denoised
            else:
                r = h_previous / h
                estimate = denoised * (1 + 1 / (2 * r)) - previous * (1 / (2 * r))
            x = x * float(sigma_next / sigma) - estimate * float(torch.expm1(torch.tensor(-h)))
            h_previous = h
        previous = denoised
        _step_done(progress, i, n)
    return x


@dataclass(frozen=True)
class SamplerSpec:
    """A sampler, the families it is valid for, and its network evaluations per ``steps`` (before CFG,
    which batches cond and uncond into the same call)."""

    fn: Sampler
    families: tuple[str, ...]
    evaluations_per_step: int
    saves_last_evaluation: bool = False

    def evaluations(self, steps: int) -> int:
        return self.evaluations_per_step * steps - int(self.saves_last_evaluation)


SAMPLERS: dict[str, SamplerSpec] = {
    "euler_ancestral": SamplerSpec(euler_ancestral, ("ddpm",), 1),
    "dpmpp_2m": SamplerSpec(dpmpp_2m, ("ddpm",), 1),
    "euler": SamplerSpec(euler, ("ddpm", "flow"), 1),
    "heun": SamplerSpec(heun, ("ddpm", "flow"), 2, saves_last_evaluation=True),
}


def get_sampler(name: str, family: str) -> SamplerSpec:
    """The :data:`SAMPLERS` entry ``name``, checked to be valid for ``family`` ("ddpm" or "flow")."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose one of {sorted(SAMPLERS)}")
    spec = SAMPLERS[name]
    if family not in spec.families:
        valid = sorted(k for k, s in SAMPLERS.items() if family in s.families)
        raise ValueError(f"sampler {name!r} does not apply to the {family!r} family; choose one of {valid}")
    return spec
