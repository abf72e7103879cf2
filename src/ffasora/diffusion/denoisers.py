"""Wrappers that turn a network's raw prediction into a data estimate ``D(x, sigma) ~ E[x0 | x]``.

The network stays plain (it sees the noisy latent in the scale it was trained on and a float timestep and
returns v, eps, x0 or a flow velocity); the wrapper owns the parameterisation, as in Karras et al. 2022
(EDM, Table 1) and k-diffusion's ``external.py``. Samplers only ever see a :data:`DenoiseFn`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor

from ffasora.diffusion.schedules import DDPMSchedule

Network = Callable[[Tensor, Tensor], Tensor]
"""``network(x_t (B, ...), timestep (B,) float32) -> prediction (B, ...)``, conditioning already bound."""

DenoiseFn = Callable[[Tensor, Tensor], Tensor]
"""``denoise(x (B, ...), sigma (B,)) -> x0 estimate (B, ...)``, in the coordinates of the sampler's family."""

Prediction = Literal["v", "eps", "x0"]

FLOW_TIME_SCALE = 1000.0
"""Flow networks see ``timestep = 1000 t`` so their timestep embedding covers the same range as DDPM's."""


def per_sample(c: Tensor, x: Tensor) -> Tensor:
    """A ``(B,)`` coefficient shaped to broadcast against ``x (B, ...)`` in ``x``'s dtype."""
    return c.to(device=x.device, dtype=x.dtype).reshape(-1, *([1] * (x.ndim - 1)))


class DDPMDenoiser:
    """A DDPM-family network seen from variance-exploding coordinates.

    The sampler's ``x = x0 + sigma eps`` is the network's input ``x_t`` divided by ``alpha_t``, so the network
    gets ``c_in x`` with ``c_in = alpha_t = 1 / sqrt(1 + sigma^2)`` and the training timestep whose sigma this
    is. Its output maps to ``x0`` as (EDM Table 1; Salimans & Ho 2022 for v = alpha eps - s x0):

    * v:   ``x0 = alpha^2 x - alpha sigma v``
    * eps: ``x0 = x - sigma eps``
    * x0:  ``x0 = output``
    """

    def __init__(self, network: Network, schedule: DDPMSchedule, prediction: Prediction = "v") -> None:
        if prediction not in ("v", "eps", "x0"):
            raise ValueError(f"prediction must be 'v', 'eps' or 'x0', got {prediction!r}")
        self.network = network
        self.schedule = schedule
        self.prediction = prediction

    def __call__(self, x: Tensor, sigma: Tensor) -> Tensor:
        sigma = sigma.double()
        alpha = (1.0 + sigma**2).rsqrt()
        timestep = self.schedule.sigma_to_timestep(sigma).to(device=x.device, dtype=torch.float32)
        out = self.network(x * per_sample(alpha, x), timestep)
        if self.prediction == "v":
            return x * per_sample(alpha**2, x) - out * per_sample(alpha * sigma, x)
        if self.prediction == "eps":
            return x - out * per_sample(sigma, x)
        return out


class FlowDenoiser:
    """A rectified-flow velocity network ``v = eps - x0`` (Liu et al. 2022) as a data estimate:
    ``x_t = (1 - t) x0 + t eps`` gives ``x0 = x_t - t v``. ``sigma`` here is the flow time ``t``."""

    def __init__(self, network: Network, time_scale: float = FLOW_TIME_SCALE) -> None:
        self.network = network
        self.time_scale = time_scale

    def __call__(self, x: Tensor, sigma: Tensor) -> Tensor:
        timestep = (sigma.double() * self.time_scale).to(device=x.device, dtype=torch.float32)
        return x - per_sample(sigma.double(), x) * self.network(x, timestep)
