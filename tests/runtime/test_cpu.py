"""The CPU inference runtime: same outputs as the plain model, switched on and off from outside, inference only."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ffasora.models.vae import WFVAE, WFVAEConfig
from ffasora.models.vae_blocks import ResnetBlock2D, ResnetBlock3D
from ffasora.models.vae_decoding import DecodeStrategy
from ffasora.runtime.cpu import (
    disable_cpu_inference,
    enable_cpu_inference,
    is_enabled,
    release_large_tensors_to_os,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "official" / "wfvae_a"
SMALL = WFVAEConfig(
    latent_dim=4, base_channels=8, encoder_energy_flow_hidden_size=8, decoder_energy_flow_hidden_size=8,
    encoder_num_resblocks=1, decoder_num_resblocks=1,
)  # fmt: skip


def small_vae(seed: int = 0) -> WFVAE:
    torch.manual_seed(seed)
    vae = WFVAE(SMALL).eval()
    with torch.no_grad():  # LayerNorm weights off 1/0 so that every parameter matters
        for name, p in vae.named_parameters():
            if "norm" in name:
                p.add_(0.1 * torch.randn_like(p))
    return vae


@torch.inference_mode()
def test_official_fixture_reproduces_to_1e5_with_the_runtime_on() -> None:
    vae = enable_cpu_inference(WFVAE.from_pretrained(FIXTURE))
    ref = load_file(str(FIXTURE / "io.safetensors"))
    assert (vae.encode(ref["x"]).mean - ref["posterior_mean"]).abs().max() <= 1e-5
    assert (vae.decode(ref["posterior_mean"]) - ref["decoded"]).abs().max() <= 1e-5
    chunked = vae.decode(ref["posterior_mean"], DecodeStrategy(chunk=2))
    assert (chunked - ref["decoded_chunked"]).abs().max() <= 1e-5


@torch.inference_mode()
def test_same_outputs_as_the_plain_model_and_off_again() -> None:
    vae = small_vae()
    x = torch.rand(1, 3, 9, 32, 32) * 2 - 1
    z = torch.randn(1, 4, 3, 4, 4)
    plain = (
        vae.encode(x, chunk=4).mean,
        vae.decode(z),
        vae.decode(z, DecodeStrategy(chunk=1, tile=3, tile_overlap=1)),
    )
    state = {k: v.clone() for k, v in vae.state_dict().items()}
    enable_cpu_inference(vae)
    assert is_enabled(vae)
    conv = vae.decoder.conv_in.conv.weight
    assert conv.is_contiguous(memory_format=torch.channels_last_3d)  # oneDNN's layout
    fast = (
        vae.encode(x, chunk=4).mean,
        vae.decode(z),
        vae.decode(z, DecodeStrategy(chunk=1, tile=3, tile_overlap=1)),
    )
    for a, b in zip(plain, fast, strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-5)
    assert all(torch.equal(v, state[k]) for k, v in vae.state_dict().items())  # values and keys unchanged
    disable_cpu_inference(vae)
    assert not is_enabled(vae) and vae.decoder.conv_in.conv.weight.is_contiguous()
    assert not any("forward" in vars(m) or "_frames" in vars(m) for m in vae.modules())
    assert torch.equal(vae.decode(z), plain[1])


def test_training_through_an_enabled_model_gets_the_plain_gradients() -> None:
    """With autograd recording every routed module runs the model's own code (no in-place ops)."""
    x = torch.rand(1, 3, 5, 16, 16) * 2 - 1
    grads = []
    for enabled in (False, True):
        vae = small_vae(seed=1).train()
        if enabled:
            enable_cpu_inference(vae)
        recon, posterior, _ = vae(x, sample_posterior=False)
        (recon.square().mean() + posterior.kl().mean()).backward()
        grads.append(vae.decoder.conv_in.conv.weight.grad.clone())
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("block_type", [ResnetBlock2D, ResnetBlock3D])
@torch.inference_mode()
def test_lean_residual_blocks_equal_the_plain_ones(block_type: type) -> None:
    torch.manual_seed(2)
    block = block_type(8, 16, "layernorm").eval()
    x = torch.randn(1, 8, 5, 12, 12)
    before = x.clone()
    plain = block(x)
    enable_cpu_inference(block)
    assert "forward" in vars(block) or "_frames" in vars(block)  # the lean version is what runs
    torch.testing.assert_close(block(x), plain, rtol=0, atol=1e-5)
    assert torch.equal(x, before)  # in-place only on the block's own intermediates


def test_large_tensors_go_back_to_the_os_on_glibc() -> None:
    import platform

    glibc = platform.libc_ver()[0] == "glibc"
    assert release_large_tensors_to_os() is glibc
