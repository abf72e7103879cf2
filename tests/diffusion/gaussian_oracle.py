"""Exact denoisers for Gaussian data ``x0 ~ N(mu, s^2 I)``, the analytic target the sampler tests run on.

With ``x_t = a x0 + b eps`` the posterior mean is ``E[x0 | x_t] = mu + a s^2 / (a^2 s^2 + b^2) (x_t - a mu)``
and eps/v/velocity follow from it linearly. The probability-flow ODE then maps a start ``x_T`` to
``mu + s (x_T - a_T mu) / sqrt(a_T^2 s^2 + b_T^2)`` exactly, which is what deterministic samplers approximate.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ffasora.diffusion import FLOW_TIME_SCALE, DDPMSchedule

MU, S = 0.5, 1.0


def _col(c: Tensor, x: Tensor) -> Tensor:
    return c.double().reshape(-1, *([1] * (x.ndim - 1)))


def posterior_mean(x_t: Tensor, a: Tensor, b: Tensor) -> Tensor:
    a, b = _col(a, x_t), _col(b, x_t)
    return MU + a * S**2 / (a**2 * S**2 + b**2) * (x_t.double() - a * MU)


def ddpm_alpha_sigma(schedule: DDPMSchedule, timestep: Tensor) -> tuple[Tensor, Tensor]:
    """VP scales at a (fractional) timestep, interpolating ``log sigma`` as the sampler wrapper does."""
    abar = schedule.sampling_alphas_cumprod()
    log_sigma = (((1 - abar) / abar).sqrt()).log()
    t = timestep.double().clamp(0, len(abar) - 1)
    lo = t.floor().long().clamp(max=len(abar) - 2)
    sigma_ve = torch.lerp(log_sigma[lo], log_sigma[lo + 1], t - lo).exp()
    a = (1 + sigma_ve**2).rsqrt()
    return a, sigma_ve * a


def ddpm_oracle(schedule: DDPMSchedule, prediction: str):
    """The Bayes-optimal DDPM network ``(x_t, timestep) -> v | eps | x0`` for the Gaussian data."""

    def network(x_t: Tensor, timestep: Tensor) -> Tensor:
        a, b = ddpm_alpha_sigma(schedule, timestep)
        x0 = posterior_mean(x_t, a, b)
        eps = (x_t.double() - _col(a, x_t) * x0) / _col(b, x_t)
        out = {"x0": x0, "eps": eps, "v": _col(a, x_t) * eps - _col(b, x_t) * x0}[prediction]
        return out.to(x_t.dtype)

    return network


def flow_oracle(x_t: Tensor, timestep: Tensor) -> Tensor:
    """The Bayes-optimal velocity ``E[eps - x0 | x_t]`` for the Gaussian data."""
    t = timestep.double() / FLOW_TIME_SCALE
    x0 = posterior_mean(x_t, 1 - t, t)
    eps = (x_t.double() - _col(1 - t, x_t) * x0) / _col(t, x_t)
    return (eps - x0).to(x_t.dtype)


def exact_ode_map(x_start: Tensor, a: float, b: float) -> Tensor:
    """Where the probability-flow ODE takes ``x_start`` (VP scales ``a``, ``b`` at the start) at t = 0."""
    return MU + S * (x_start.double() - a * MU) / (a**2 * S**2 + b**2) ** 0.5
