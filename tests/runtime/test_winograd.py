"""Winograd F(4x4, 3x3) convolution: exact transforms, fp32 error bounds per layer and through a WF-VAE."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ffasora.models.vae import WFVAE, WFVAEConfig
from ffasora.runtime import winograd
from ffasora.runtime.cpu import disable_cpu_inference, enable_cpu_inference


@pytest.fixture(autouse=True)
def eager_transforms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(winograd, "COMPILE", False)


def test_transform_matrices_compute_a_correlation_exactly() -> None:
    a_t, g, b_t = (torch.tensor(m, dtype=torch.float64) for m in winograd.transform_matrices())
    assert a_t.shape == (4, 6) and g.shape == (6, 3) and b_t.shape == (6, 6)
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        d, kernel = (
            torch.randn(6, generator=gen, dtype=torch.float64),
            torch.randn(3, generator=gen, dtype=torch.float64),
        )
        expected = torch.stack([(kernel * d[i : i + 3]).sum() for i in range(4)])
        torch.testing.assert_close(a_t @ ((g @ kernel) * (b_t @ d)), expected, rtol=0, atol=1e-12)


def test_other_interpolation_points_give_the_classic_f23_matrices() -> None:
    from fractions import Fraction

    a_t, g, b_t = winograd.transform_matrices(2, 3, (Fraction(0), Fraction(1), Fraction(-1)))
    assert a_t == [[1, 1, 1, 0], [0, 1, -1, 1]]
    assert b_t == [[-1, 0, 1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, -1, 0, 1]]
    assert g == [[-1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]


@pytest.mark.parametrize(
    ("batch", "channels", "out_channels", "frames", "k_t", "height", "width"),
    [(1, 16, 24, 5, 3, 20, 18), (2, 8, 8, 3, 1, 13, 9), (1, 32, 16, 4, 3, 70, 12)],
)
def test_winograd_conv_matches_direct_convolution(
    batch, channels, out_channels, frames, k_t, height, width
) -> None:
    torch.manual_seed(0)
    x = torch.randn(batch, channels, frames, height, width).contiguous(memory_format=torch.channels_last_3d)
    weight = (torch.randn(out_channels, channels, k_t, 3, 3) / (9 * k_t * channels) ** 0.5).contiguous(
        memory_format=torch.channels_last_3d
    )
    bias = torch.randn(out_channels)
    with torch.no_grad():
        y = winograd.winograd_conv(x, weight, bias)
    exact = F.conv3d(x.double(), weight.double(), bias.double(), padding=(0, 1, 1))
    assert y.shape == exact.shape
    assert y.is_contiguous(memory_format=torch.channels_last_3d)
    # Direct fp32 convolution is ~1e-6 from float64 here; Winograd's transforms add a few times that.
    assert (y.double() - exact).abs().max().item() < 1e-4 * exact.abs().max().item()


def test_eligible_only_for_fp32_inference_3x3() -> None:
    x = torch.zeros(1, 64, 4, 64, 64)
    weight = torch.zeros(64, 64, 3, 3, 3)
    with torch.no_grad():
        assert winograd.eligible(x, weight, (1, 1, 1), (0, 1, 1))
        assert not winograd.eligible(x, weight, (2, 2, 2), (0, 1, 1))  # strided: not this algorithm
        assert not winograd.eligible(x.double(), weight.double(), (1, 1, 1), (0, 1, 1))
        assert not winograd.eligible(x[:, :, :, :8, :8], weight, (1, 1, 1), (0, 1, 1))  # too small to pay
        assert not winograd.eligible(x[:, :, :3], weight, (1, 1, 1), (0, 1, 1))  # one output frame
    assert not winograd.eligible(x, weight.requires_grad_(), (1, 1, 1), (0, 1, 1))  # training: direct


def test_a_wfvae_encodes_and_decodes_within_1e4_with_winograd(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every 3x3 convolution of a small WF-VAE through Winograd (thresholds lowered so all qualify)."""
    monkeypatch.setattr(winograd, "MIN_CHANNELS", 1)
    monkeypatch.setattr(winograd, "MIN_SIDE", 1)
    torch.manual_seed(0)
    config = WFVAEConfig(
        latent_dim=4, base_channels=16, encoder_energy_flow_hidden_size=16, decoder_energy_flow_hidden_size=16,
        encoder_num_resblocks=1, decoder_num_resblocks=1,
    )  # fmt: skip
    vae = WFVAE(config).eval()
    x = torch.rand(1, 3, 9, 32, 32) * 2 - 1
    calls = []
    original = winograd.winograd_conv
    monkeypatch.setattr(winograd, "winograd_conv", lambda *a: calls.append(1) or original(*a))
    with torch.inference_mode():
        z = vae.encode(x).mean
        y = vae.decode(z)
        enable_cpu_inference(vae)
        vae.decode(z)
        assert not calls  # only when asked for
        enable_cpu_inference(vae, winograd=True)
        z_fast = vae.encode(x).mean
        y_fast = vae.decode(z)
        assert len(calls) > 20
        calls.clear()
        disable_cpu_inference(vae)
        vae.decode(z)
        assert not calls
    assert (z_fast - z).abs().max().item() < 1e-4
    assert (y_fast - y).abs().max().item() < 1e-4


@pytest.mark.slow
def test_compiled_transforms_equal_the_eager_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    """The inductor-compiled transforms (the default where a C++ compiler exists) do the same arithmetic."""
    torch.manual_seed(1)
    x = torch.randn(1, 64, 5, 72, 68).contiguous(memory_format=torch.channels_last_3d)
    weight = torch.randn(64, 64, 3, 3, 3).contiguous(memory_format=torch.channels_last_3d) / 40
    bias = torch.randn(64)
    with torch.no_grad():
        eager = winograd.winograd_conv(x, weight, bias)
        monkeypatch.setattr(winograd, "COMPILE", True)
        compiled = winograd.winograd_conv(x, weight, bias)
    assert (compiled - eager).abs().max().item() < 1e-5
