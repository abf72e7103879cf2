"""Training objectives: pure functions of a denoiser ``denoiser(x_t, timestep, cond) -> prediction``.

Each draws (or takes) the noise and the time, builds the noisy input, calls the denoiser once and returns a
scalar loss. Randomness comes only from the ``generator`` argument, so a training step is reproducible.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ffasora.diffusion.denoisers import FLOW_TIME_SCALE, per_sample
from ffasora.diffusion.guidance import ConditionedNetwork
from ffasora.diffusion.samplers import randn_like
from ffasora.diffusion.schedules import DDPMSchedule, shift_time


def _noise(x0: Tensor, noise: Tensor | None, generator: torch.Generator | None) -> Tensor:
    if noise is None:
        return randn_like(x0, generator)
    if noise.shape != x0.shape:
        raise ValueError(f"noise shape {tuple(noise.shape)} differs from x0 shape {tuple(x0.shape)}")
    return noise


def _device_of(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")


def _masked_mse(pred: Tensor, target: Tensor, mask: Tensor | None) -> Tensor:
    """Per-sample mean squared error ``(B,)`` in float32; ``mask`` (broadcastable to ``target``, 1 = keep)
    leaves padded positions out of both the sum and the count."""
    err = (pred.float() - target.float()) ** 2
    dims = list(range(1, err.ndim))
    if mask is None:
        return err.mean(dim=dims)
    mask = mask.to(err.dtype).expand_as(err)
    return (err * mask).sum(dim=dims) / mask.sum(dim=dims).clamp(min=1.0)


def stratified_timesteps(
    batch: int,
    num_train_steps: int,
    rank: int = 0,
    world_size: int = 1,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Integer timesteps ``(batch,)`` uniform on rank ``rank``'s own ``1 / world_size`` slice of
    ``[0, num_train_steps)``, so that one global batch covers the whole range evenly (the
    ``explicit_uniform_sampling`` of Open-Sora Plan v1.3). ``world_size = 1`` is plain uniform sampling."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
    low = rank * num_train_steps // world_size
    high = (rank + 1) * num_train_steps // world_size
    if high <= low:
        raise ValueError(f"world_size {world_size} exceeds num_train_steps {num_train_steps}")
    return torch.randint(low, high, (batch,), generator=generator, device=_device_of(generator))


def v_prediction_loss(
    denoiser: ConditionedNetwork,
    x0: Tensor,
    cond: Any,
    schedule: DDPMSchedule,
    *,
    timesteps: Tensor | None = None,
    noise: Tensor | None = None,
    min_snr_gamma: float | None = 5.0,
    mask: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """DDPM loss on the velocity ``v = alpha eps - s x0`` (Salimans & Ho 2022, Sec. 4) with Min-SNR-gamma
    weights ``min(snr, gamma) / (snr + 1)`` (Hang et al. 2023, the v-prediction form).

    ``x0`` ``(B, c, t, h, w)`` latents; ``timesteps`` ``(B,)`` integers, drawn uniformly if None; the denoiser
    gets ``x_t = alpha x0 + s eps`` and the timesteps as float32. Under zero terminal SNR the last timestep has
    snr = 0 and so weight 0: its target ``v = -x0`` carries no learnable signal beyond the data mean.
    ``min_snr_gamma=None`` gives the plain MSE. Returns a scalar.
    """
    if timesteps is None:
        timesteps = stratified_timesteps(x0.shape[0], schedule.num_train_steps, generator=generator)
    timesteps = timesteps.to(x0.device)
    eps = _noise(x0, noise, generator)
    alpha, sigma = schedule.alpha_sigma(timesteps)
    x_t = per_sample(alpha, x0) * x0 + per_sample(sigma, x0) * eps
    target = per_sample(alpha, x0) * eps - per_sample(sigma, x0) * x0
    pred = denoiser(x_t, timesteps.float(), cond)
    loss = _masked_mse(pred, target, mask)
    if min_snr_gamma is not None:
        snr = (alpha / sigma) ** 2
        loss = loss * (snr.clamp(max=min_snr_gamma) / (snr + 1)).to(loss)
    return loss.mean()


def logit_normal_time(
    batch: int,
    mean: float = 0.0,
    std: float = 1.0,
    shift: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Flow times ``(batch,)`` float64: ``sigmoid(N(mean, std^2))`` (Esser et al. 2024, SD3 Eq. 19), which
    concentrates training on the middle of the path, then warped by :func:`shift_time`."""
    u = (
        torch.randn(batch, generator=generator, dtype=torch.float64, device=_device_of(generator)) * std
        + mean
    )
    return shift_time(torch.sigmoid(u), shift)


def flow_matching_loss(
    denoiser: ConditionedNetwork,
    x0: Tensor,
    cond: Any,
    *,
    t: Tensor | None = None,
    noise: Tensor | None = None,
    logit_mean: float = 0.0,
    logit_std: float = 1.0,
    shift: float = 1.0,
    mask: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Rectified-flow loss (Liu et al. 2022; Esser et al. 2024): regress the velocity ``eps - x0`` at
    ``x_t = (1 - t) x0 + t eps``, with ``t`` from :func:`logit_normal_time` unless given ``(B,)`` in [0, 1].

    ``shift`` is the resolution shift (:func:`ffasora.diffusion.schedules.resolution_shift`); the denoiser
    sees ``timestep = 1000 t`` as float32. Returns a scalar.
    """
    if t is None:
        t = logit_normal_time(x0.shape[0], logit_mean, logit_std, shift, generator)
    t = t.to(x0.device)
    eps = _noise(x0, noise, generator)
    x_t = (1 - per_sample(t, x0)) * x0 + per_sample(t, x0) * eps
    pred = denoiser(x_t, (t * FLOW_TIME_SCALE).float(), cond)
    return _masked_mse(pred, eps - x0, mask).mean()
