"""Building blocks of WF-VAE: norms, residual blocks, per-frame attention, spatial/temporal re-samplers.

Every block takes ``(x, cache)`` with x: (B, C, T, H, W), so blocks compose in :class:`CachedSequential`
whether or not they look across time. Attribute names match the official checkpoints (reference doc "10
facts", 6): the LayerNorm wrapper holds ``norm``, causal convs hold ``conv``, 2D convs are plain ``Conv2d``.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from ffasora.models.causal import CacheKeyed, CausalCache, CausalConv3d, per_frame


class ChannelLayerNorm(nn.Module):
    """LayerNorm over channels at every (t, h, w) position (eps 1e-6); key prefix ``norm.``.

    Per-position statistics are what make chunked inference exact (WF-VAE Sec. 3.3): nothing here looks
    across frames. Works on (B, C, T, H, W) and (N, C, H, W).
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(
            x.movedim(1, -1), self.norm.normalized_shape, self.norm.weight, self.norm.bias, self.norm.eps
        ).movedim(-1, 1)


def make_norm(channels: int, norm_type: str) -> nn.Module:
    """``"layernorm"`` (chunk-exact, the released choice) or ``"groupnorm"`` (32 groups over C, T, H, W)."""
    if norm_type == "layernorm":
        return ChannelLayerNorm(channels)
    if norm_type == "groupnorm":
        return nn.GroupNorm(32, channels, eps=1e-6)
    raise ValueError(f"norm_type {norm_type!r}: expected 'layernorm' or 'groupnorm'")


class CachedSequential(nn.Sequential):
    """``nn.Sequential`` that hands the causal cache to every block (keeps ``.0``, ``.1`` key indices)."""

    def forward(self, x: torch.Tensor, cache: CausalCache | None = None) -> torch.Tensor:  # type: ignore[override]
        for block in self:
            x = block(x, cache)
        return x


class FrameConv2d(nn.Conv2d):
    """A ``Conv2d`` applied to every frame. x: (B, C, T, H, W) -> (B, C', T, H', W')."""

    def forward(self, x: torch.Tensor, cache: CausalCache | None = None) -> torch.Tensor:  # type: ignore[override]
        return per_frame(super().forward, x)


class ResnetBlock2D(nn.Module):
    """norm -> SiLU -> conv3x3 -> norm -> SiLU -> dropout -> conv3x3, plus a (1x1-projected) skip; per frame."""

    def __init__(self, in_channels: int, out_channels: int, norm_type: str, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1 = make_norm(in_channels, norm_type)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = make_norm(out_channels, norm_type)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        if in_channels != out_channels:
            self.nin_shortcut = nn.Conv2d(in_channels, out_channels, 1)

    def _frames(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, H, W) -> (N, C', H, W)
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return h + (self.nin_shortcut(x) if hasattr(self, "nin_shortcut") else x)

    def forward(self, x: torch.Tensor, cache: CausalCache | None = None) -> torch.Tensor:
        return per_frame(self._frames, x)


class ResnetBlock3D(nn.Module):
    """The 3D residual block: same layout as :class:`ResnetBlock2D` with causal 3x3x3 convolutions."""

    def __init__(self, in_channels: int, out_channels: int, norm_type: str, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1 = make_norm(in_channels, norm_type)
        self.conv1 = CausalConv3d(in_channels, out_channels, 3, padding=1)
        self.norm2 = make_norm(out_channels, norm_type)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = CausalConv3d(out_channels, out_channels, 3, padding=1)
        if in_channels != out_channels:
            self.nin_shortcut = CausalConv3d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor, cache: CausalCache | None = None) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)), cache)
        h = self.conv2(self.dropout(F.silu(self.norm2(h))), cache)
        return h + (self.nin_shortcut(x, cache) if hasattr(self, "nin_shortcut") else x)


class AttnBlock3DFix(nn.Module):
    """Single-head self-attention within each frame (sequence = H*W, batch = B*T); no temporal mixing.

    q, k, v and the output projection are 1x1x1 convolutions (keys ``q.conv`` etc.); they are applied as one
    fused matrix product.
    """

    def __init__(self, channels: int, norm_type: str) -> None:
        super().__init__()
        self.norm = make_norm(channels, norm_type)
        self.q = CausalConv3d(channels, channels, 1)
        self.k = CausalConv3d(channels, channels, 1)
        self.v = CausalConv3d(channels, channels, 1)
        self.proj_out = CausalConv3d(channels, channels, 1)

    def forward(self, x: torch.Tensor, cache: CausalCache | None = None) -> torch.Tensor:
        b, c, t, h, w = x.shape
        tokens = self.norm(x).movedim(1, -1).reshape(b * t, h * w, c)  # (B*T, HW, C)
        weight = torch.cat([m.conv.weight.reshape(c, c) for m in (self.q, self.k, self.v)])
        bias = torch.cat([cast(torch.Tensor, m.conv.bias) for m in (self.q, self.k, self.v)])
        q, k, v = F.linear(tokens, weight, bias).chunk(3, dim=-1)
        out = F.scaled_dot_product_attention(q, k, v)
        out = F.linear(out, self.proj_out.conv.weight.reshape(c, c), self.proj_out.conv.bias)
        return x + out.reshape(b, t, h, w, c).movedim(-1, 1)


class Downsample(nn.Module):
    """Per-frame 2x spatial down-sampling: zero-pad right/bottom by one, then conv 3x3 stride 2 (taming)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, stride=2)

    def forward(self, x: torch.Tensor, cache: CausalCache | None = None) -> torch.Tensor:
        return per_frame(lambda f: self.conv(F.pad(f, (0, 1, 0, 1))), x)


class Upsample(nn.Module):
    """Per-frame 2x spatial up-sampling: nearest neighbour, then conv 3x3."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor, cache: CausalCache | None = None) -> torch.Tensor:
        return per_frame(lambda f: self.conv(F.interpolate(f, scale_factor=2.0, mode="nearest")), x)


class Spatial2xTime2x3DDownsample(nn.Module):
    """2x down-sampling in t, h, w: zero-pad right/bottom, causal conv 3x3x3 stride 2 (``2n + 1 -> n + 1``)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = CausalConv3d(in_channels, out_channels, 3, stride=2)

    def forward(self, x: torch.Tensor, cache: CausalCache | None = None) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)), cache)


class Spatial2xTime2x3DUpsample(CacheKeyed):
    """2x up-sampling in t, h, w then a causal conv 3x3x3: ``n + 1 -> 2n + 1`` frames for a whole clip.

    Frame 0 is only up-sampled in space (it was encoded alone); frames 1.. are interpolated x2 in time
    (``t_interpolation``, trilinear in the released configs) and x2 in space (bilinear). Linear interpolation
    makes output frame ``2i + 1`` depend on input frame ``i + 1``, so in chunked mode the last frame of a
    chunk is held back (kept in the cache) until the next chunk, or the end of the clip, supplies its right
    neighbour. Outputs are therefore emitted one frame late but each equals the whole-clip value; no
    look-ahead and no re-computation are needed.
    """

    def __init__(self, in_channels: int, out_channels: int, t_interpolation: str = "trilinear") -> None:
        super().__init__()
        if t_interpolation not in ("trilinear", "nearest"):
            raise ValueError(f"t_interpolation {t_interpolation!r}: expected 'trilinear' or 'nearest'")
        self.t_interpolation = t_interpolation
        self.conv = CausalConv3d(in_channels, out_channels, 3, padding=1)

    @staticmethod
    def _up_space(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=(1.0, 2.0, 2.0), mode="trilinear")

    def forward(self, x: torch.Tensor, cache: CausalCache | None = None) -> torch.Tensor:
        parts = []
        if cache is None or cache.is_first(self.cache_key):
            parts.append(self._up_space(x[:, :, :1]))
            x = x[:, :, 1:]
        final = cache is None or cache.final
        pending = None if cache is None else cache.pop(self.cache_key)
        seq = x if pending is None else torch.cat([pending, x], dim=2)
        if seq.shape[2] > 0:
            y = F.interpolate(seq, scale_factor=(2.0, 1.0, 1.0), mode=self.t_interpolation)
            start = 0 if pending is None else 1  # the pending frame's even output was emitted last chunk
            stop = y.shape[2] if final else y.shape[2] - 1
            if not final:
                assert cache is not None
                cache.put(self.cache_key, seq[:, :, -1:])
            if stop > start:
                parts.append(self._up_space(y[:, :, start:stop]))
        return self.conv(torch.cat(parts, dim=2) if len(parts) > 1 else parts[0], cache)
