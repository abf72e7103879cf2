"""Diffusion: schedules, training objectives, samplers and guidance for any ``denoiser(x, t, cond)``.

Depends on nothing else in ffasora. ``DiffusionConfig`` + ``training_loss`` / ``sample`` in :mod:`.recipe`
are the entry points for training and the pipeline; the modules below them can be used on their own.
"""

from ffasora.diffusion.denoisers import FLOW_TIME_SCALE, DDPMDenoiser, DenoiseFn, FlowDenoiser, Network
from ffasora.diffusion.guidance import ConditionedNetwork, classifier_free_guidance
from ffasora.diffusion.objectives import (
    flow_matching_loss,
    logit_normal_time,
    stratified_timesteps,
    v_prediction_loss,
)
from ffasora.diffusion.recipe import DiffusionConfig, sample, sampling_sigmas, training_loss, wrap_network
from ffasora.diffusion.samplers import (
    SAMPLERS,
    Progress,
    SamplerSpec,
    dpmpp_2m,
    euler,
    euler_ancestral,
    get_sampler,
    heun,
)
from ffasora.diffusion.schedules import (
    DDPMSchedule,
    flow_sigmas,
    linear_betas,
    rescale_zero_terminal_snr,
    resolution_shift,
    shift_time,
    spaced_timesteps,
)

__all__ = [
    "FLOW_TIME_SCALE",
    "SAMPLERS",
    "ConditionedNetwork",
    "DDPMDenoiser",
    "DDPMSchedule",
    "DenoiseFn",
    "DiffusionConfig",
    "FlowDenoiser",
    "Network",
    "Progress",
    "SamplerSpec",
    "classifier_free_guidance",
    "dpmpp_2m",
    "euler",
    "euler_ancestral",
    "flow_matching_loss",
    "flow_sigmas",
    "get_sampler",
    "heun",
    "linear_betas",
    "logit_normal_time",
    "rescale_zero_terminal_snr",
    "resolution_shift",
    "sample",
    "sampling_sigmas",
    "shift_time",
    "spaced_timesteps",
    "stratified_timesteps",
    "training_loss",
    "v_prediction_loss",
    "wrap_network",
]
