"""The photograph-guided refiner: decoded FFA frames + the eye's colour photograph -> sharper FFA frames.

Why it exists: the bundled WF-VAE keeps about a quarter of a video's vessel contrast, so a DiT decoding with it
cannot draw a vessel tree sharper than the decoder returns, and it blurs arteries into veins. When the eye's
colour photograph is an input, the photograph itself shows where every artery and vein runs, at full
resolution. The refiner is a cascade stage in pixel space (in the spirit of the super-resolution stages of
cascaded video diffusion, conditioned here on the photograph rather than on text): it looks at the decoded
frame, its neighbours and the photograph, and predicts what the decoder lost. It draws vessels where the
photograph has them, with the brightness and phase the decoded frames carry.

Inputs per frame ``t``: the decoded frames ``t - context .. t + context`` (edges repeated), the photograph (RGB)
and one constant channel holding the frame's place in the clip (0 at the first frame, 1 at the last). Output:
frame ``t`` plus a predicted residual; the last convolution starts at zero, so an untrained refiner is the
identity. The network is a small 2-D U-Net run on every frame; being convolutional it refines clips of any
size that is a multiple of ``2 ** (levels - 1)``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ffasora.models.pretrained import build_and_load, read_config, read_weights, save_model_folder

PHOTO_CHANNELS = 3


@dataclass(frozen=True)
class RefinerConfig:
    base_channels: int = 24
    channel_mult: tuple[int, ...] = (1, 2, 4)  # one U-Net level each; 2x down between levels
    blocks_per_level: int = 1
    context: int = 1  # decoded neighbours on each side of the refined frame
    groups: int = 8  # GroupNorm groups

    @property
    def in_channels(self) -> int:
        return 2 * self.context + 1 + PHOTO_CHANNELS + 1

    @property
    def size_multiple(self) -> int:
        return 2 ** (len(self.channel_mult) - 1)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "channel_mult": list(self.channel_mult)}

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> RefinerConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known - {"_class_name"})
        if unknown:
            raise ValueError(f"{source}: unknown refiner settings {unknown}; known: {sorted(known)}")
        kwargs = {k: v for k, v in data.items() if k in known}
        if "channel_mult" in kwargs:
            kwargs["channel_mult"] = tuple(int(m) for m in kwargs["channel_mult"])
        return cls(**kwargs)


class ResBlock(nn.Module):
    def __init__(self, channels_in: int, channels_out: int, groups: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, channels_in)
        self.conv1 = nn.Conv2d(channels_in, channels_out, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, channels_out)
        self.conv2 = nn.Conv2d(channels_out, channels_out, 3, padding=1)
        self.skip = nn.Conv2d(channels_in, channels_out, 1) if channels_in != channels_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class PhotoRefiner(nn.Module):
    """(B, T, H, W) decoded frames in [-1, 1] + (B, 3, H, W) photograph in [-1, 1] -> (B, T, H, W) refined."""

    def __init__(self, config: RefinerConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or RefinerConfig()
        widths = [cfg.base_channels * m for m in cfg.channel_mult]
        self.stem = nn.Conv2d(cfg.in_channels, widths[0], 3, padding=1)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        for i, w in enumerate(widths):
            w_in = widths[i - 1] if i else widths[0]
            blocks = [ResBlock(w_in if b == 0 else w, w, cfg.groups) for b in range(cfg.blocks_per_level)]
            self.down.append(nn.Sequential(*blocks))
            if i < len(widths) - 1:
                self.downsample.append(nn.Conv2d(w, w, 3, stride=2, padding=1))
        self.up = nn.ModuleList()
        for i in reversed(range(len(widths) - 1)):  # each up level joins the skip of its down level
            blocks = [
                ResBlock(widths[i + 1] + widths[i] if b == 0 else widths[i], widths[i], cfg.groups)
                for b in range(cfg.blocks_per_level)
            ]
            self.up.append(nn.Sequential(*blocks))
        self.norm_out = nn.GroupNorm(cfg.groups, widths[0])
        self.conv_out = nn.Conv2d(widths[0], 1, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)  # identity at initialisation: refined == decoded
        nn.init.zeros_(self.conv_out.bias)  # type: ignore[arg-type]  # (a bias is always there here)

    def frame_inputs(
        self, video: torch.Tensor, photo: torch.Tensor, frames: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, T, H, W) + (B, 3, H, W) -> (B * F, in_channels, H, W): for each of the F refined frames
        (``frames``, default all T) its neighbours (edges repeated), the photograph and its place in the clip."""
        b, t, h, w = video.shape
        k = self.config.context
        index = torch.arange(t, device=video.device) if frames is None else frames.to(video.device)
        offsets = torch.arange(-k, k + 1, device=video.device)
        neighbours = (index[:, None] + offsets[None]).clamp(0, t - 1)  # (F, 2k + 1)
        f = len(index)
        stack = video[:, neighbours]  # (B, F, 2k + 1, H, W)
        place = (index.to(video.dtype) / max(t - 1, 1)).view(1, f, 1, 1, 1).expand(b, f, 1, h, w)
        photos = photo[:, None].expand(b, f, PHOTO_CHANNELS, h, w)
        return torch.cat([stack, photos, place], dim=2).flatten(0, 1)

    def forward(
        self, video: torch.Tensor, photo: torch.Tensor, frames: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The refined frames (B, F, H, W): all T by default, or those at the indices ``frames`` (F,)."""
        if video.dim() != 4 or photo.shape != (video.shape[0], PHOTO_CHANNELS, *video.shape[-2:]):
            raise ValueError(
                f"refiner inputs: video {tuple(video.shape)} and photograph {tuple(photo.shape)}; "
                "expected (B, T, H, W) and (B, 3, H, W)"
            )
        m = self.config.size_multiple
        if video.shape[-2] % m or video.shape[-1] % m:
            raise ValueError(f"frames of {tuple(video.shape[-2:])} px: the refiner needs multiples of {m}")
        inputs = self.frame_inputs(video, photo, frames)  # (B*F, in_channels, H, W)
        k = self.config.context
        refined = inputs[:, k : k + 1] + self.residual(inputs)  # (B*F, 1, H, W)
        return refined.view(video.shape[0], -1, *video.shape[-2:])

    def residual(self, inputs: torch.Tensor) -> torch.Tensor:
        """The U-Net: (N, in_channels, H, W) frame inputs -> (N, 1, H, W) correction of each frame."""
        h = self.stem(inputs)
        skips = []
        for i, level in enumerate(self.down):
            h = level(h)
            if i < len(self.downsample):
                skips.append(h)
                h = self.downsample[i](h)  # (N, C_i, H / 2^(i+1), W / 2^(i+1))
        for level in self.up:
            skip = skips.pop()
            h = F.interpolate(h, size=skip.shape[-2:], mode="nearest")
            h = level(torch.cat([h, skip], dim=1))
        return self.conv_out(F.silu(self.norm_out(h)))

    # ----- weights on disk -------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path: str | Path, dtype: torch.dtype | None = None) -> PhotoRefiner:
        config = RefinerConfig.from_dict(read_config(path), source=f"{path}/config.json")
        weights = read_weights(path)
        return build_and_load(lambda: cls(config), weights.tensors, source=str(weights.file), dtype=dtype)

    def save_pretrained(self, path: str | Path, dtype: torch.dtype | None = None) -> Path:
        return save_model_folder(
            self, {"_class_name": "PhotoRefiner", **self.config.to_dict()}, path, dtype=dtype
        )
