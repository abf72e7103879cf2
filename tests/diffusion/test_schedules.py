"""The DDPM schedule, timestep spacings and flow time grid, checked against first principles and diffusers."""

from __future__ import annotations

import pytest
import torch
from diffusers import DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler

from ffasora.diffusion import (
    DDPMSchedule,
    flow_sigmas,
    linear_betas,
    rescale_zero_terminal_snr,
    resolution_shift,
    shift_time,
    spaced_timesteps,
)

OSP = dict(prediction_type="v_prediction", rescale_betas_zero_snr=True, timestep_spacing="trailing")


def test_zero_terminal_snr_rescale_ends_at_zero_and_keeps_the_first_step() -> None:
    betas = linear_betas()
    rescaled = rescale_zero_terminal_snr(betas)
    before, after = torch.cumprod(1 - betas, 0), torch.cumprod(1 - rescaled, 0)
    assert after[-1] == 0.0 and before[-1] > 0
    assert after[0] == pytest.approx(float(before[0]), rel=1e-12)
    assert bool((after[1:] < after[:-1]).all())
    snr = DDPMSchedule().snr(torch.tensor([0, 500, 999]))
    assert snr[0] > snr[1] > snr[2] == 0.0


def test_schedule_matches_diffusers() -> None:
    ours = DDPMSchedule().alphas_cumprod()
    theirs = EulerAncestralDiscreteScheduler(**OSP).alphas_cumprod.double()
    torch.testing.assert_close(ours[:-1], theirs[:-1], rtol=0, atol=1e-6)  # theirs is float32


@pytest.mark.parametrize("spacing", ["trailing", "leading", "linspace"])
@pytest.mark.parametrize("steps", [1, 10, 20, 50, 100])
def test_spacings_and_sigmas_match_diffusers_euler_ancestral(spacing: str, steps: int) -> None:
    scheduler = EulerAncestralDiscreteScheduler(**{**OSP, "timestep_spacing": spacing})
    scheduler.set_timesteps(steps)
    ours = spaced_timesteps(1000, steps, spacing)  # type: ignore[arg-type]
    assert ours.tolist() == scheduler.timesteps.round().long().tolist()
    if spacing == "trailing":
        sigmas = DDPMSchedule().sigmas(ours)
        torch.testing.assert_close(sigmas.float(), scheduler.sigmas, rtol=1e-5, atol=0)  # theirs: float32


@pytest.mark.parametrize("steps", [5, 20, 100])
def test_trailing_matches_diffusers_dpm_solver(steps: int) -> None:
    scheduler = DPMSolverMultistepScheduler(**OSP)
    scheduler.set_timesteps(steps)
    assert spaced_timesteps(1000, steps).tolist() == scheduler.timesteps.tolist()


def test_only_trailing_starts_at_the_pure_noise_timestep() -> None:
    assert spaced_timesteps(1000, 10, "trailing")[0] == 999
    assert spaced_timesteps(1000, 10, "leading")[0] < 999
    assert len(spaced_timesteps(1000, 61)) == 61  # a float arange would give 62 here


def test_sigma_to_timestep_inverts_the_table() -> None:
    schedule = DDPMSchedule()
    # 996..998 lie above the clamped terminal level (4096), so no sampler grid can hold them
    t = torch.tensor([0, 1, 17, 500, 995, 999])
    recovered = schedule.sigma_to_timestep(schedule.sigmas(t)[:-1])
    torch.testing.assert_close(recovered, t.double(), rtol=0, atol=1e-6)
    mid = schedule.sigma_to_timestep(schedule.sigmas(torch.tensor([10, 11]))[:-1].log().mean().exp())
    assert 10 < float(mid) < 11


def test_time_shift_fixes_the_ends_and_pushes_towards_noise() -> None:
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    torch.testing.assert_close(shift_time(t, 1.0), t)
    shifted = shift_time(t, 3.0)
    assert shifted[0] == 0 and shifted[-1] == 1
    assert bool((shifted[1:-1] > t[1:-1]).all()) and bool((shifted[1:] > shifted[:-1]).all())
    assert resolution_shift(1024, base_tokens=256) == pytest.approx(2.0)
    grid = flow_sigmas(4, shift=3.0)
    assert grid[0] == 1.0 and grid[-1] == 0.0 and len(grid) == 5


def test_bad_inputs_name_the_value() -> None:
    with pytest.raises(ValueError, match="num_steps"):
        spaced_timesteps(1000, 0)
    with pytest.raises(ValueError, match="cosine"):
        spaced_timesteps(1000, 10, "cosine")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="beta_start"):
        linear_betas(1000, 0.02, 1e-4)
    with pytest.raises(ValueError, match="shift"):
        shift_time(torch.zeros(1), 0.0)
