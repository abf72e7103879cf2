"""One typed recipe that ties schedule, objective and sampler together, for training and for generation.

``DiffusionConfig()`` is the Open-Sora Plan v1.3 recipe (DDPM, zero terminal SNR, v-prediction, Min-SNR-5,
trailing spacing, Euler-ancestral 100 steps, CFG 7.5). ``DiffusionConfig(objective="flow", sampler="euler",
steps=...)`` is the rectified-flow alternative with logit-normal times and a resolution shift.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ffasora.diffusion.denoisers import DDPMDenoiser, DenoiseFn, FlowDenoiser, Network
from ffasora.diffusion.guidance import ConditionedNetwork
from ffasora.diffusion.objectives import flow_matching_loss, stratified_timesteps, v_prediction_loss
from ffasora.diffusion.samplers import Progress, get_sampler
from ffasora.diffusion.schedules import DDPMSchedule, flow_sigmas, resolution_shift, spaced_timesteps

OBJECTIVES = ("v_prediction", "flow")


@dataclass(frozen=True)
class DiffusionConfig:
    """Diffusion settings; the defaults reproduce Open-Sora Plan v1.3 (reference facts 10)."""

    objective: str = "v_prediction"  # "v_prediction" (DDPM family) or "flow" (rectified flow)
    # DDPM schedule
    num_train_steps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    zero_terminal_snr: bool = True
    min_snr_gamma: float = 5.0  # 0 turns the weighting off
    spacing: str = "trailing"
    # rectified flow
    logit_mean: float = 0.0
    logit_std: float = 1.0
    shift: float = 1.0  # flow time shift at ``shift_base_tokens`` tokens
    shift_base_tokens: int = 0  # > 0: scale the shift by sqrt(tokens / base) (SD3); 0: use ``shift`` as is
    # generation defaults
    sampler: str = "euler_ancestral"
    steps: int = 100
    guidance: float = 7.5

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"diffusion objective must be one of {OBJECTIVES}, got {self.objective!r}")
        get_sampler(self.sampler, self.family)
        if self.spacing not in ("trailing", "leading", "linspace"):
            raise ValueError(f"spacing must be 'trailing', 'leading' or 'linspace', got {self.spacing!r}")
        if self.family == "ddpm" and self.zero_terminal_snr and self.spacing != "trailing":
            # Lin et al. 2024, Sec. 3.3: only trailing spacing starts sampling at the zero-SNR step the model
            # was trained to start from.
            raise ValueError(f"zero_terminal_snr needs spacing='trailing', got {self.spacing!r}")
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.guidance < 0:
            raise ValueError(f"guidance must be >= 0, got {self.guidance}")

    @property
    def family(self) -> str:
        """ "ddpm" or "flow": which coordinates the samplers work in."""
        return "flow" if self.objective == "flow" else "ddpm"

    @property
    def schedule(self) -> DDPMSchedule:
        return DDPMSchedule(self.num_train_steps, self.beta_start, self.beta_end, self.zero_terminal_snr)

    def flow_shift(self, num_tokens: int) -> float:
        """The flow time shift for a latent of ``num_tokens`` DiT tokens."""
        if self.shift_base_tokens <= 0:
            return self.shift
        return resolution_shift(num_tokens, self.shift_base_tokens, self.shift)


def training_loss(
    config: DiffusionConfig,
    denoiser: ConditionedNetwork,
    x0: Tensor,
    cond: Any,
    *,
    num_tokens: int,
    mask: Tensor | None = None,
    rank: int = 0,
    world_size: int = 1,
    generator: torch.Generator | None = None,
) -> Tensor:
    """The scalar training loss of ``config``'s objective on latents ``x0`` ``(B, c, t, h, w)``.

    DDPM timesteps are stratified across ranks (:func:`stratified_timesteps`); ``num_tokens`` (DiT tokens per
    sample) sets the flow resolution shift.
    """
    if config.objective == "flow":
        return flow_matching_loss(
            denoiser,
            x0,
            cond,
            logit_mean=config.logit_mean,
            logit_std=config.logit_std,
            shift=config.flow_shift(num_tokens),
            mask=mask,
            generator=generator,
        )
    timesteps = stratified_timesteps(x0.shape[0], config.num_train_steps, rank, world_size, generator)
    gamma = config.min_snr_gamma if config.min_snr_gamma > 0 else None
    return v_prediction_loss(
        denoiser,
        x0,
        cond,
        config.schedule,
        timesteps=timesteps,
        min_snr_gamma=gamma,
        mask=mask,
        generator=generator,
    )


def sampling_sigmas(config: DiffusionConfig, steps: int, num_tokens: int) -> Tensor:
    """The noise levels a sampler visits for ``steps`` steps: ``(steps + 1,)`` float64 ending at 0."""
    if config.family == "flow":
        return flow_sigmas(steps, config.flow_shift(num_tokens))
    schedule = config.schedule
    return schedule.sigmas(spaced_timesteps(schedule.num_train_steps, steps, config.spacing))  # type: ignore[arg-type]


def wrap_network(config: DiffusionConfig, network: Network) -> DenoiseFn:
    """The raw network (conditions bound, e.g. by classifier-free guidance) as the sampler's ``x0`` estimate."""
    if config.family == "flow":
        return FlowDenoiser(network)
    return DDPMDenoiser(network, config.schedule, prediction="v")


def sample(
    config: DiffusionConfig,
    network: Network,
    noise: Tensor,
    *,
    num_tokens: int,
    steps: int | None = None,
    sampler: str | None = None,
    generator: torch.Generator | None = None,
    progress: Progress | None = None,
) -> Tensor:
    """Generate latents ``(B, c, t, h, w)`` from standard-normal ``noise`` of that shape.

    ``steps``/``sampler`` default to the config's. ``generator`` feeds the ancestral noise of stochastic
    samplers; pass the one that drew ``noise`` so that one seed fixes the whole sample.
    """
    spec = get_sampler(sampler or config.sampler, config.family)
    sigmas = sampling_sigmas(config, steps or config.steps, num_tokens)
    x = noise * float(sigmas[0])  # pure noise at sigma_max in the sampler's coordinates
    return spec.fn(wrap_network(config, network), x, sigmas, generator=generator, progress=progress)
