"""Haar wavelet transforms of WF-VAE (arXiv 2411.17459, Sec. 3.1), checkpoint-compatible and fused.

Conventions that official weights depend on (reference doc "10 facts", 2):

* 3D taps are +-0.3536 (a rounded 1/(2*sqrt 2)), so analysis followed by synthesis has gain 8 * 0.3536**2 =
  1.00026, not exactly 1; 2D taps are +-1/2 (orthonormal).
* Output channels are sub-band major: channels ``[k*C:(k+1)*C]`` hold sub-band ``k`` of every input channel,
  so ``coeffs[:, :C]`` is the low-pass band of the C input channels.
* The 3D transform is a stride-2, kernel-2 causal convolution: frame 0 is replicated once in front, so
  ``2n + 1`` frames give ``n + 1`` coefficient frames; the inverse drops its first output frame (only in the
  first chunk of a clip).

Upstream loops over every (batch, channel) slice and runs eight separate convolutions; here all sub-bands of
all channels come from one convolution with the eight filters stacked as output channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ffasora.models.causal import CacheKeyed, CausalCache, CausalConv3d, causal_pad

HAAR3D_TAP = 0.3536
# Sub-band names in official order; the sign pattern of each filter over (t, h, w) follows from its name:
# "g" = high-pass along w, "hh" = along h, "gh" = along h and w, suffix "_v" = high-pass along t.
HAAR3D_BANDS = ("h", "g", "hh", "gh", "h_v", "g_v", "hh_v", "gh_v")
HAAR2D_BANDS = ("aa", "ad", "da", "dd")


def haar3d_filters(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The eight 2x2x2 analysis filters, (8, 1, 2, 2, 2), in official sub-band order."""
    lo, hi = torch.tensor([1.0, 1.0]), torch.tensor([1.0, -1.0])
    filters = []
    for t_hi, h_hi, w_hi in (
        (0, 0, 0),
        (0, 0, 1),
        (0, 1, 0),
        (0, 1, 1),
        (1, 0, 0),
        (1, 0, 1),
        (1, 1, 0),
        (1, 1, 1),
    ):
        ft, fh, fw = (hi if t_hi else lo), (hi if h_hi else lo), (hi if w_hi else lo)
        filters.append(torch.einsum("t,h,w->thw", ft, fh, fw))
    return (torch.stack(filters)[:, None] * HAAR3D_TAP).to(dtype)


def haar2d_filters(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The four 2x2 analysis filters, (4, 1, 2, 2): aa (low), ad (high along h), da (along w), dd (both)."""
    lo, hi = torch.tensor([1.0, 1.0]), torch.tensor([1.0, -1.0])
    pairs = [(lo, lo), (hi, lo), (lo, hi), (hi, hi)]  # (along h, along w)
    return (torch.stack([torch.outer(fh, fw) for fh, fw in pairs])[:, None] / 2).to(dtype)


def _to_bands(y: torch.Tensor, batch: int) -> torch.Tensor:
    """(B*C, K, T, H, W) -> (B, K*C, T, H, W), sub-band major."""
    _, k, t, h, w = y.shape
    return y.reshape(batch, -1, k, t, h, w).transpose(1, 2).reshape(batch, -1, t, h, w)


def _from_bands(x: torch.Tensor, bands: int) -> torch.Tensor:
    """(B, K*C, T, H, W) -> (B*C, K, T, H, W)."""
    b, kc, t, h, w = x.shape
    return x.reshape(b, bands, kc // bands, t, h, w).transpose(1, 2).reshape(-1, bands, t, h, w)


class HaarWaveletTransform3D(CacheKeyed):
    """Causal 3D Haar analysis. x: (B, C, T, H, W) -> (B, 8C, (T + 1) // 2, H/2, W/2) for odd T (whole clip).

    The filters are frozen parameters inside ``<band>_conv.conv.weight`` (official key names).
    """

    def __init__(self) -> None:
        super().__init__()
        filters = haar3d_filters()
        for name, weight in zip(HAAR3D_BANDS, filters, strict=True):
            conv = CausalConv3d(1, 1, 2, stride=2, bias=False)
            conv.conv.weight.data.copy_(weight[None])
            conv.requires_grad_(False)
            self.add_module(f"{name}_conv", conv)

    def weight(self) -> torch.Tensor:
        return torch.cat([getattr(self, f"{n}_conv").conv.weight for n in HAAR3D_BANDS])

    def forward(self, x: torch.Tensor, cache: CausalCache | None = None) -> torch.Tensor:
        b, c, t, h, w = x.shape
        y = causal_pad(x.reshape(b * c, 1, t, h, w), 2, 2, cache, self.cache_key)
        y = F.conv3d(y, self.weight().to(x.dtype), stride=2)
        return _to_bands(y, b)


class InverseHaarWaveletTransform3D(CacheKeyed):
    """3D Haar synthesis. coeffs: (B, 8C, T, H, W) -> (B, C, 2T - 1, 2H, 2W) in the first chunk, else 2T frames.

    Filters are buffers ``h, g, ...`` (official key names).
    """

    def __init__(self) -> None:
        super().__init__()
        for name, weight in zip(HAAR3D_BANDS, haar3d_filters(), strict=True):
            self.register_buffer(name, weight[None].clone())

    def weight(self) -> torch.Tensor:
        return torch.cat([getattr(self, n) for n in HAAR3D_BANDS])

    def forward(self, coeffs: torch.Tensor, cache: CausalCache | None = None) -> torch.Tensor:
        b = coeffs.shape[0]
        y = F.conv_transpose3d(_from_bands(coeffs, 8), self.weight().to(coeffs.dtype), stride=2)
        if cache is None or cache.is_first(self.cache_key):
            y = y[:, :, 1:]  # the replicated frame the analysis put in front of frame 0
        return y.reshape(b, -1, *y.shape[2:])


class HaarWaveletTransform2D(nn.Module):
    """Per-frame 2D Haar analysis. x: (B, C, T, H, W) -> (B, 4C, T, H/2, W/2). Buffers ``aa, ad, da, dd``."""

    def __init__(self) -> None:
        super().__init__()
        for name, weight in zip(HAAR2D_BANDS, haar2d_filters(), strict=True):
            self.register_buffer(name, weight[None].clone())

    def weight(self) -> torch.Tensor:
        # (4, 1, 1, 2, 2): a 3D conv with a 1-frame kernel is a per-frame 2D conv without moving T to batch.
        return torch.cat([getattr(self, n) for n in HAAR2D_BANDS])[:, :, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        y = F.conv3d(x.reshape(b * c, 1, t, h, w), self.weight().to(x.dtype), stride=(1, 2, 2))
        return _to_bands(y, b)


class InverseHaarWaveletTransform2D(HaarWaveletTransform2D):
    """Per-frame 2D Haar synthesis. coeffs: (B, 4C, T, H, W) -> (B, C, T, 2H, 2W)."""

    def forward(self, coeffs: torch.Tensor) -> torch.Tensor:
        b = coeffs.shape[0]
        y = F.conv_transpose3d(_from_bands(coeffs, 4), self.weight().to(coeffs.dtype), stride=(1, 2, 2))
        return y.reshape(b, -1, *y.shape[2:])
