"""Haar transforms: official taps and sub-band order, invertibility, causal chunking."""

from __future__ import annotations

import pytest
import torch

from ffasora.models.causal import CausalCache
from ffasora.models.wavelet import (
    HAAR3D_TAP,
    HaarWaveletTransform2D,
    HaarWaveletTransform3D,
    InverseHaarWaveletTransform2D,
    InverseHaarWaveletTransform3D,
    haar2d_filters,
    haar3d_filters,
)


def test_3d_low_band_is_block_sum_and_sub_band_major():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 4, 6)
    coeffs = HaarWaveletTransform3D()(x)
    assert coeffs.shape == (2, 24, 3, 2, 3)
    padded = torch.cat([x[:, :, :1], x], dim=2)  # causal: frame 0 replicated once in front
    block_sum = padded.reshape(2, 3, 3, 2, 2, 2, 3, 2).sum(dim=(3, 5, 7))
    torch.testing.assert_close(coeffs[:, :3], HAAR3D_TAP * block_sum, atol=1e-5, rtol=0)
    # channel 3 is band "g" (high-pass along w) of input channel 0
    diff = padded[..., 0::2] - padded[..., 1::2]
    g = diff.reshape(2, 3, 3, 2, 2, 2, 3).sum(dim=(3, 5))
    torch.testing.assert_close(coeffs[:, 3:6], HAAR3D_TAP * g, atol=1e-5, rtol=0)


def test_filters_are_orthogonal_up_to_official_rounding():
    f3 = haar3d_filters().flatten(1)
    gram = f3 @ f3.T
    torch.testing.assert_close(gram, torch.eye(8) * 8 * HAAR3D_TAP**2)
    f2 = haar2d_filters().flatten(1)
    torch.testing.assert_close(f2 @ f2.T, torch.eye(4))


@pytest.mark.parametrize("frames", [1, 5, 9])
def test_inverse_undoes_forward(frames):
    torch.manual_seed(1)
    x = torch.rand(1, 2, frames, 8, 8) * 2 - 1
    y = InverseHaarWaveletTransform3D()(HaarWaveletTransform3D()(x))
    # gain 8 * 0.3536^2 = 1.00026, the rounding of the official taps
    torch.testing.assert_close(y, x * 8 * HAAR3D_TAP**2, atol=1e-5, rtol=0)
    torch.testing.assert_close(
        InverseHaarWaveletTransform2D()(HaarWaveletTransform2D()(x)), x, atol=1e-6, rtol=0
    )


def test_3d_chunks_equal_whole_clip():
    torch.manual_seed(2)
    x = torch.randn(1, 3, 13, 8, 8)
    fwd, inv = HaarWaveletTransform3D(), InverseHaarWaveletTransform3D()
    fwd.cache_key, inv.cache_key = "f", "i"
    whole = fwd(x)
    cache = CausalCache()
    parts = [fwd(x[:, :, a:b], cache) for a, b in [(0, 1), (1, 4), (4, 5), (5, 13)]]
    torch.testing.assert_close(torch.cat(parts, dim=2), whole)
    cache = CausalCache()
    recon = torch.cat([inv(whole[:, :, a:b], cache) for a, b in [(0, 2), (2, 3), (3, 7)]], dim=2)
    torch.testing.assert_close(recon, inv(whole))
