"""WF-VAE encoder and decoder (arXiv 2411.17459, Sec. 3.1-3.2; Fig. 2), checkpoint-compatible with upstream.

Level plan of the released 4x8x8 models (reference doc sec. 1.3-1.4): the video is split by a 3D Haar
transform into ``W1`` (8C channels, half time, half space), whose low band gives ``W2 = Haar2D(W1[:, :C])``
(4C channels, quarter space) and ``W3 = Haar3D(W2[:, :C])`` (8C channels, quarter time, eighth space). The
"energy flow" injects ``W2`` and ``W3`` into the encoder after each down-sampling stage, and the decoder
predicts them back out (``Ŵ3`` after ``mid``, ``Ŵ2`` after ``up2``), adding the inverse transform of each
coarser prediction onto the low band of the next finer one. C is the number of pixel channels (3 for official
weights, 1 for native grey models).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ffasora.models.causal import CacheKeyed, CausalCache, CausalConv3d
from ffasora.models.vae_blocks import (
    AttnBlock3DFix,
    CachedSequential,
    Downsample,
    FrameConv2d,
    ResnetBlock2D,
    ResnetBlock3D,
    Spatial2xTime2x3DDownsample,
    Spatial2xTime2x3DUpsample,
    Upsample,
    make_norm,
)
from ffasora.models.wavelet import (
    HaarWaveletTransform2D,
    HaarWaveletTransform3D,
    InverseHaarWaveletTransform2D,
    InverseHaarWaveletTransform3D,
)

Coeffs = tuple[torch.Tensor, torch.Tensor]


def _mid(
    channels_in: int, width: int, channels_out: int, use_attention: bool, norm: str, p: float
) -> CachedSequential:
    blocks: list[nn.Module] = [ResnetBlock3D(channels_in, width, norm, p)]
    if use_attention:
        blocks.append(AttnBlock3DFix(width, norm))
    blocks.append(ResnetBlock3D(width, channels_out, norm, p))
    return CachedSequential(*blocks)


class Encoder(nn.Module):
    """Pixels (B, C, T, H, W) -> moments (B, 2*latent, (T-1)/4+1, H/8, W/8) and the true (W2, W3)."""

    def __init__(
        self,
        in_channels: int,
        latent_dim: int,
        base_channels: int,
        num_resblocks: int,
        energy_flow: int,
        use_attention: bool,
        norm_type: str,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        c, ef, n = base_channels, energy_flow, in_channels
        self.in_channels = n
        self.down1 = CachedSequential(
            FrameConv2d(8 * n, c, 3, padding=1),
            *[ResnetBlock2D(c, c, norm_type, dropout) for _ in range(num_resblocks)],
            Downsample(c, c),
        )
        self.down2 = CachedSequential(
            FrameConv2d(c + ef, 2 * c, 3, padding=1),
            *[ResnetBlock3D(2 * c, 2 * c, norm_type, dropout) for _ in range(num_resblocks)],
            Spatial2xTime2x3DDownsample(2 * c, 2 * c),
        )
        self.connect_l1 = FrameConv2d(4 * n, ef, 3, padding=1)
        self.connect_l2 = FrameConv2d(8 * n, ef, 3, padding=1)
        self.mid = _mid(2 * c + ef, 4 * c, 4 * c, use_attention, norm_type, dropout)
        self.norm_out = make_norm(4 * c, norm_type)
        self.conv_out = CausalConv3d(4 * c, 2 * latent_dim, 3, padding=1)
        self.wavelet_transform_in = HaarWaveletTransform3D()
        self.wavelet_transform_l1 = HaarWaveletTransform2D()
        self.wavelet_transform_l2 = HaarWaveletTransform3D()

    def forward(self, x: torch.Tensor, cache: CausalCache | None = None) -> tuple[torch.Tensor, Coeffs]:
        n = self.in_channels
        w1 = self.wavelet_transform_in(x, cache)  # (B, 8n, T1, H/2, W/2), T1 = (T + 1) / 2
        w2 = self.wavelet_transform_l1(w1[:, :n])  # (B, 4n, T1, H/4, W/4)
        w3 = self.wavelet_transform_l2(w2[:, :n], cache)  # (B, 8n, T2, H/8, W/8), T2 = (T1 + 1) / 2
        h = self.down1(w1, cache)  # (B, C, T1, H/4, W/4)
        h = torch.cat([h, self.connect_l1(w2)], dim=1)  # energy flow: + Ef channels from W2
        h = self.down2(h, cache)  # (B, 2C, T2, H/8, W/8)
        h = torch.cat([h, self.connect_l2(w3)], dim=1)  # + Ef channels from W3
        h = self.mid(h, cache)  # (B, 4C, T2, H/8, W/8)
        h = self.conv_out(F.silu(self.norm_out(h)), cache)  # (B, 2*latent, T2, H/8, W/8)
        return h, (w2, w3)


class Decoder(CacheKeyed):
    """Latent (B, latent, t, h, w) -> pixels (B, C, 4(t-1)+1, 8h, 8w) and the predicted (Ŵ2, Ŵ3)."""

    def __init__(
        self,
        out_channels: int,
        latent_dim: int,
        base_channels: int,
        num_resblocks: int,
        energy_flow: int,
        use_attention: bool,
        norm_type: str,
        t_interpolation: str,
        connect_res_layer_num: int,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        c, ef, n = base_channels, energy_flow, out_channels
        self.out_channels, self.energy_flow = n, ef
        self.conv_in = CausalConv3d(latent_dim, 4 * c, 3, padding=1)
        self.mid = _mid(4 * c, 4 * c, 4 * c + ef, use_attention, norm_type, dropout)
        self.up2 = CachedSequential(
            *[ResnetBlock3D(4 * c, 4 * c, norm_type, dropout) for _ in range(num_resblocks)],
            Spatial2xTime2x3DUpsample(4 * c, 4 * c, t_interpolation),
            ResnetBlock3D(4 * c, 4 * c + ef, norm_type, dropout),
        )
        self.up1 = CachedSequential(
            *[
                ResnetBlock3D(4 * c if i == 0 else 2 * c, 2 * c, norm_type, dropout)
                for i in range(num_resblocks)
            ],
            Upsample(2 * c, 2 * c),
            ResnetBlock3D(2 * c, 2 * c, norm_type, dropout),
        )
        self.layer = CachedSequential(
            ResnetBlock3D(2 * c, c, norm_type, dropout), ResnetBlock3D(c, c, norm_type, dropout)
        )
        self.connect_l1 = CachedSequential(
            *[ResnetBlock3D(ef, ef, norm_type, dropout) for _ in range(connect_res_layer_num)],
            FrameConv2d(ef, 4 * n, 3, padding=1),
        )
        self.connect_l2 = CachedSequential(
            *[ResnetBlock3D(ef, ef, norm_type, dropout) for _ in range(connect_res_layer_num)],
            FrameConv2d(ef, 8 * n, 3, padding=1),
        )
        self.norm_out = make_norm(c, norm_type)
        self.conv_out = FrameConv2d(c, 8 * n, 3, padding=1)
        self.inverse_wavelet_transform_out = InverseHaarWaveletTransform3D()
        self.inverse_wavelet_transform_l1 = InverseHaarWaveletTransform2D()
        self.inverse_wavelet_transform_l2 = InverseHaarWaveletTransform3D()

    def _align(self, coarse: torch.Tensor, frames: int, cache: CausalCache | None) -> torch.Tensor:
        """In chunked mode the up-sampled branch runs one frame behind the inverse-Haar branch: queue the rest."""
        if cache is None:
            return coarse
        queued = cache.pop(self.cache_key + ".l2")
        if queued is not None:
            coarse = torch.cat([queued, coarse], dim=2)
        cache.put(self.cache_key + ".l2", coarse[:, :, frames:])
        return coarse[:, :, :frames]

    # The decoder runs in three stages so that a decode strategy (:mod:`ffasora.models.vae_decoding`) can run
    # the attention on whole frames and the rest tile by tile, or the fine levels frame by frame.
    def head(self, z: torch.Tensor, cache: CausalCache | None = None) -> torch.Tensor:
        """``conv_in`` + ``mid`` (holds the attention): (B, latent, t, h, w) -> (B, 4C + Ef, t, h, w)."""
        return self.mid(self.conv_in(z, cache), cache)

    def coarse(
        self, h: torch.Tensor, cache: CausalCache | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The 1x level and the up-sampler: ``head`` output -> (B, 4C, 2t - 1, 2h, 2w), the inverse transform
        of Ŵ3 (B, n, 2t - 1, 2h, 2w) and Ŵ3 itself (B, 8n, t, h, w)."""
        ef = self.energy_flow
        w3 = self.connect_l2(h[:, -ef:], cache)
        l2 = self.inverse_wavelet_transform_l2(w3, cache)
        h = h[:, :-ef]
        for block in list(self.up2)[:-1]:  # the residual blocks and the 2x up-sampler
            h = block(h, cache)
        return h, l2, w3

    def fine(
        self, h: torch.Tensor, l2: torch.Tensor, cache: CausalCache | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The 2x and 4x levels: ``coarse`` output (B, 4C, T, 2h, 2w) and the frames of ``l2`` it lines up
        with -> pixels (B, n, T, 8h, 8w) and the predicted Ŵ2 (B, 4n, T, 2h, 2w)."""
        n, ef = self.out_channels, self.energy_flow
        h = self.up2[-1](h, cache)  # (B, 4C + Ef, T, 2h, 2w)
        w2 = self.connect_l1(h[:, -ef:], cache)  # (B, 4n, T, 2h, 2w)
        l2 = self._align(l2, w2.shape[2], cache)
        w2 = torch.cat([w2[:, :n] + l2, w2[:, n:]], dim=1)  # Ŵ2 with the coarser level added to its low band
        l1 = self.inverse_wavelet_transform_l1(w2)  # (B, n, T, 4h, 4w)
        h = self.layer(self.up1(h[:, :-ef], cache), cache)  # (B, C, T, 4h, 4w)
        h = self.conv_out(F.silu(self.norm_out(h)))  # (B, 8n, T, 4h, 4w)
        h = torch.cat([h[:, :n] + l1, h[:, n:]], dim=1)
        return self.inverse_wavelet_transform_out(h, cache), w2

    def forward(self, z: torch.Tensor, cache: CausalCache | None = None) -> tuple[torch.Tensor, Coeffs]:
        h, l2, w3 = self.coarse(self.head(z, cache), cache)
        video, w2 = self.fine(h, l2, cache)
        return video, (w2, w3)
