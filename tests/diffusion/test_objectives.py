"""Training objectives: targets, Min-SNR weights, masking, time sampling, and the recipe dispatch."""

from __future__ import annotations

import pytest
import torch

from ffasora.diffusion import (
    DDPMSchedule,
    DiffusionConfig,
    flow_matching_loss,
    logit_normal_time,
    stratified_timesteps,
    training_loss,
    v_prediction_loss,
)

SCHEDULE = DDPMSchedule()


def _data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(4, 2, 3, 4, 4, generator=g), torch.randn(4, 2, 3, 4, 4, generator=g)


def test_v_loss_is_zero_for_the_true_velocity_and_weighted_by_min_snr() -> None:
    x0, eps = _data()
    t = torch.tensor([0, 10, 500, 999])
    alpha, sigma = (c.float().reshape(-1, 1, 1, 1, 1) for c in SCHEDULE.alpha_sigma(t))
    v = alpha * eps - sigma * x0
    seen = {}

    def perfect(x_t: torch.Tensor, timestep: torch.Tensor, cond: object) -> torch.Tensor:
        seen.update(x_t=x_t, timestep=timestep, cond=cond)
        return v

    assert v_prediction_loss(perfect, x0, "c", SCHEDULE, timesteps=t, noise=eps) < 1e-12
    torch.testing.assert_close(seen["x_t"], alpha * x0 + sigma * eps)
    assert seen["timestep"].dtype == torch.float32 and seen["timestep"].tolist() == [0, 10, 500, 999]
    assert seen["cond"] == "c"

    def zero(x_t: torch.Tensor, timestep: torch.Tensor, cond: object) -> torch.Tensor:
        return torch.zeros_like(x_t)

    snr = SCHEDULE.snr(t)
    weights = snr.clamp(max=5.0) / (snr + 1)
    expected = (weights.float() * v.pow(2).mean(dim=(1, 2, 3, 4))).mean()
    loss = v_prediction_loss(zero, x0, None, SCHEDULE, timesteps=t, noise=eps, min_snr_gamma=5.0)
    torch.testing.assert_close(loss, expected)
    assert weights[-1] == 0.0  # zero terminal SNR: the pure-noise step carries weight 0
    plain = v_prediction_loss(zero, x0, None, SCHEDULE, timesteps=t, noise=eps, min_snr_gamma=None)
    torch.testing.assert_close(plain, v.pow(2).mean())


def test_flow_loss_targets_the_velocity_at_the_interpolant() -> None:
    x0, eps = _data()
    t = torch.tensor([0.0, 0.25, 0.5, 1.0], dtype=torch.float64)
    seen = {}

    def perfect(x_t: torch.Tensor, timestep: torch.Tensor, cond: object) -> torch.Tensor:
        seen.update(x_t=x_t, timestep=timestep)
        return eps - x0

    assert flow_matching_loss(perfect, x0, None, t=t, noise=eps) < 1e-12
    tt = t.float().reshape(-1, 1, 1, 1, 1)
    torch.testing.assert_close(seen["x_t"], (1 - tt) * x0 + tt * eps)
    assert seen["timestep"].tolist() == [0.0, 250.0, 500.0, 1000.0]


def test_mask_leaves_padded_positions_out() -> None:
    x0, eps = _data()
    mask = torch.ones(4, 1, 3, 1, 1)
    mask[:, :, 2:] = 0  # last latent frame is padding

    def garbage_in_padding(x_t: torch.Tensor, timestep: torch.Tensor, cond: object) -> torch.Tensor:
        out = eps - x0
        out[:, :, 2:] += 100.0
        return out

    t = torch.full((4,), 0.5, dtype=torch.float64)
    assert flow_matching_loss(garbage_in_padding, x0, None, t=t, noise=eps, mask=mask) < 1e-10
    assert flow_matching_loss(garbage_in_padding, x0, None, t=t, noise=eps) > 1000


def test_time_sampling() -> None:
    g = torch.Generator().manual_seed(0)
    t = logit_normal_time(20000, generator=g)
    assert float(t.min()) > 0 and float(t.max()) < 1 and abs(float(t.median()) - 0.5) < 0.02
    shifted = logit_normal_time(20000, shift=3.0, generator=torch.Generator().manual_seed(0))
    assert float(shifted.median()) == pytest.approx(0.75, abs=0.02)  # shift(0.5) = 3 * 0.5 / 2
    for rank in range(4):
        steps = stratified_timesteps(500, 1000, rank, 4, generator=g)
        assert int(steps.min()) >= 250 * rank and int(steps.max()) < 250 * (rank + 1)
    with pytest.raises(ValueError, match="rank"):
        stratified_timesteps(1, 1000, 4, 4)


@pytest.mark.parametrize("objective", ["v_prediction", "flow"])
def test_training_loss_is_reproducible_and_trains(objective: str) -> None:
    """The recipe's loss is a pure function of the generator, and a linear denoiser learns from it."""
    config = DiffusionConfig(objective=objective, sampler="euler", shift_base_tokens=16)
    x0 = torch.randn(8, 2, 1, 4, 4, generator=torch.Generator().manual_seed(0)) * 0.5 + 1.0
    weight = torch.zeros(2, 2, requires_grad=True)  # per-channel affine map of x_t: the best linear denoiser

    def denoiser(x_t: torch.Tensor, timestep: torch.Tensor, cond: object) -> torch.Tensor:
        return x_t * weight[0].reshape(1, 2, 1, 1, 1) + weight[1].reshape(1, 2, 1, 1, 1)

    def loss(seed: int) -> torch.Tensor:
        return training_loss(
            config, denoiser, x0, None, num_tokens=64, generator=torch.Generator().manual_seed(seed)
        )

    with torch.no_grad():
        assert float(loss(3)) == float(loss(3)) and float(loss(3)) != float(loss(4))
        before = sum(float(loss(seed)) for seed in range(100, 108))
    optimizer = torch.optim.Adam([weight], lr=0.05)
    for step in range(60):
        optimizer.zero_grad()
        loss(step).backward()
        optimizer.step()
    with torch.no_grad():
        assert sum(float(loss(seed)) for seed in range(100, 108)) < 0.9 * before
