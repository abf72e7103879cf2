"""WF-VAE: the video autoencoder of FFA Sora / Open-Sora Plan v1.3 (arXiv 2411.17459), 4x8x8 compression.

Public API::

    vae = WFVAE.from_pretrained(path)            # ours, diffusers folder, or config.json + .ckpt (strict)
    posterior = vae.encode(x)                     # x: (B, C, 1 + 4k, H, W) in [-1, 1]; C = 1 or 3
    z = posterior.sample(generator)               # (B, latent, 1 + k, H/8, W/8)
    video = vae.decode(z)                         # (B, C, 1 + 4k, H, W)
    z_dit = vae.normalize_latents(z)              # (z - shift) * scale, per channel, from the config
    vae.save_pretrained(path)

``encode``/``decode`` take ``chunk`` (temporal chunk length; chunked == whole clip up to rounding because every
norm is per position and attention is per frame) and ``decode`` takes ``tile``/``tile_overlap`` (spatial tiles
in latent pixels, blended linearly; see docs/vae.md for the error bound).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ffasora.models.causal import CacheKeyed, CausalCache
from ffasora.models.cpu_memory import release_large_tensors_to_os
from ffasora.models.pretrained import build_and_load, read_config, read_weights, save_model_folder
from ffasora.models.vae_arch import Coeffs, Decoder, Encoder
from ffasora.models.vae_tiling import blend_tiles, tile_starts

# The only module plan implemented: the released 4x8x8 models. Keys are the official ones, misspelling kept.
_PLAN = {
    "l1_dowmsample_block": "Downsample",
    "l1_downsample_wavelet": "HaarWaveletTransform2D",
    "l2_dowmsample_block": "Spatial2xTime2x3DDownsample",
    "l2_downsample_wavelet": "HaarWaveletTransform3D",
    "l1_upsample_block": "Upsample",
    "l1_upsample_wavelet": "InverseHaarWaveletTransform2D",
    "l2_upsample_block": "Spatial2xTime2x3DUpsample",
    "l2_upsample_wavelet": "InverseHaarWaveletTransform3D",
}
FRAME_POLICIES = ("error", "pad", "trim")
# Spatial receptive radius of the decoder after ``mid``, in latent pixels: 4 convs at 1x (up2 blocks), the
# bilinear up-sampler and 3 convs at 2x, 4 convs at 2x (up1), 7 convs at 4x: 4 + 0.5 + 1.5 + 2 + 1.75 < 10;
# with margin. A halo this wide makes every tile's crop equal the whole-frame decode.
TILE_HALO = 12


@dataclass(frozen=True)
class WFVAEConfig:
    """WF-VAE hyper-parameters; field names are the official ``config.json`` keys (plus ``in_channels``).

    Defaults are WF-VAE-S with 8 latent channels (OSP v1.3: C=128, Ef 128/128, LayerNorm, trilinear).
    ``scale``/``shift`` are per-latent-channel normalisation for the DiT, ``z' = (z - shift) * scale``; empty
    means 1 and 0.
    """

    latent_dim: int = 8
    base_channels: int = 128
    encoder_num_resblocks: int = 2
    encoder_energy_flow_hidden_size: int = 128
    decoder_num_resblocks: int = 2
    decoder_energy_flow_hidden_size: int = 128
    attention_type: str = "AttnBlock3DFix"
    use_attention: bool = True
    dropout: float = 0.0
    norm_type: str = "layernorm"
    t_interpolation: str = "trilinear"
    connect_res_layer_num: int = 1
    scale: tuple[float, ...] = ()
    shift: tuple[float, ...] = ()
    in_channels: int = 3
    l1_dowmsample_block: str = "Downsample"
    l1_downsample_wavelet: str = "HaarWaveletTransform2D"
    l2_dowmsample_block: str = "Spatial2xTime2x3DDownsample"
    l2_downsample_wavelet: str = "HaarWaveletTransform3D"
    l1_upsample_block: str = "Upsample"
    l1_upsample_wavelet: str = "InverseHaarWaveletTransform2D"
    l2_upsample_block: str = "Spatial2xTime2x3DUpsample"
    l2_upsample_wavelet: str = "InverseHaarWaveletTransform3D"

    def __post_init__(self) -> None:
        for key, expected in _PLAN.items():
            if getattr(self, key) != expected:
                raise ValueError(
                    f"WF-VAE config {key}={getattr(self, key)!r}: only the 4x8x8 plan ({expected!r}) is supported"
                )
        if self.attention_type != "AttnBlock3DFix":
            raise ValueError(
                f"WF-VAE config attention_type={self.attention_type!r}: expected 'AttnBlock3DFix'"
            )
        for key in ("scale", "shift"):
            value = tuple(float(v) for v in getattr(self, key))
            object.__setattr__(self, key, value)
            if value and len(value) != self.latent_dim:
                raise ValueError(
                    f"WF-VAE config {key} has {len(value)} values; expected latent_dim={self.latent_dim}"
                )

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> WFVAEConfig:
        """Build from a ``config.json`` dict; keys starting with ``_`` (diffusers metadata) are ignored."""
        data = {k: v for k, v in data.items() if not k.startswith("_")}
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"{source}: unknown WF-VAE config key(s) {unknown}; known: {sorted(names)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


class DiagonalGaussian:
    """Posterior q(z|x) = N(mean, exp(logvar)), logvar clamped to [-30, 20] as upstream. Shapes (B, c, t, h, w)."""

    def __init__(self, moments: torch.Tensor) -> None:
        self.mean, logvar = moments.chunk(2, dim=1)
        self.logvar = logvar.clamp(-30.0, 20.0)

    @property
    def std(self) -> torch.Tensor:
        return torch.exp(0.5 * self.logvar)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        noise = torch.randn(
            self.mean.shape, generator=generator, dtype=self.mean.dtype, device=self.mean.device
        )
        return self.mean + self.std * noise

    def mode(self) -> torch.Tensor:
        return self.mean

    def kl(self) -> torch.Tensor:
        """KL to N(0, I), summed over all but the batch dimension: (B,)."""
        return 0.5 * (self.mean.pow(2) + self.logvar.exp() - 1.0 - self.logvar).flatten(1).sum(1)


def check_frames(frames: int, what: str = "input") -> None:
    """Raise a helpful ``ValueError`` unless ``frames`` is 1 + 4k."""
    if frames < 1 or (frames - 1) % 4:
        lower = 1 + 4 * ((frames - 1) // 4) if frames > 1 else None
        upper = 1 + 4 * math.ceil(max(frames - 1, 0) / 4)
        hint = f"use {lower} or {upper} frames" if lower else f"use {upper} frames"
        raise ValueError(
            f"{what} has {frames} frames; WF-VAE needs 1 + 4k (1, 5, 9, ..., 21, ...): {hint}, "
            "or pass frames='pad' (repeat the last frame) / frames='trim' (drop the last frames)"
        )


def fit_frames(x: torch.Tensor, policy: str = "error") -> torch.Tensor:
    """Make the frame count of x (B, C, T, H, W) legal by ``policy``: "error", "pad" (repeat last), "trim"."""
    if policy not in FRAME_POLICIES:
        raise ValueError(f"frame policy {policy!r}: expected one of {FRAME_POLICIES}")
    t = x.shape[2]
    if policy == "error" or (t >= 1 and (t - 1) % 4 == 0):
        check_frames(t)
        return x
    if policy == "trim" and t >= 1:
        return x[:, :, : 1 + 4 * ((t - 1) // 4)]
    extra = 1 + 4 * math.ceil((t - 1) / 4) - t
    return torch.cat([x, x[:, :, -1:].expand(-1, -1, extra, -1, -1)], dim=2)


class WFVAE(nn.Module):
    """Wavelet-Flow VAE. Pixels (B, C, T, H, W) in [-1, 1] <-> latents (B, latent, (T-1)/4+1, H/8, W/8)."""

    def __init__(self, config: WFVAEConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or WFVAEConfig()
        self.encoder = Encoder(
            cfg.in_channels, cfg.latent_dim, cfg.base_channels, cfg.encoder_num_resblocks,
            cfg.encoder_energy_flow_hidden_size, cfg.use_attention, cfg.norm_type, cfg.dropout,
        )  # fmt: skip
        self.decoder = Decoder(
            cfg.in_channels, cfg.latent_dim, cfg.base_channels, cfg.decoder_num_resblocks,
            cfg.decoder_energy_flow_hidden_size, cfg.use_attention, cfg.norm_type, cfg.t_interpolation,
            cfg.connect_res_layer_num, cfg.dropout,
        )  # fmt: skip
        for name, module in self.named_modules():
            if isinstance(module, CacheKeyed):
                module.cache_key = name
        self.channels_last()

    def channels_last(self) -> WFVAE:
        """Store conv weights channels-last (oneDNN's native layout on CPU: fewer reorders per convolution).

        Values and state-dict keys are unchanged; activations follow the layout of the input, which
        ``encode``/``decode`` also make channels-last.
        """
        for param in self.parameters():
            if param.dim() == 5:
                param.data = param.data.contiguous(memory_format=torch.channels_last_3d)
            elif param.dim() == 4:
                param.data = param.data.contiguous(memory_format=torch.channels_last)
        return self

    # ----- weights on disk -------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path: str | Path, dtype: torch.dtype | None = None) -> WFVAE:
        """Load our folder, an official diffusers folder, or official ``config.json`` + ``.ckpt``, strictly."""
        config = WFVAEConfig.from_dict(read_config(path), source=f"{path}/config.json")
        weights = read_weights(path)
        # The upstream trainer's ``ema_state_dict`` holds only trainable parameters; the Haar filters and
        # buffers are constants of the architecture, so they come from the constructor (and are logged).
        model = build_and_load(
            lambda: cls(config),
            weights.tensors,
            source=str(weights.file),
            dtype=dtype,
            constants_from_constructor=weights.is_ema,
        )
        return model.channels_last()

    def save_pretrained(self, path: str | Path, dtype: torch.dtype | None = None) -> Path:
        """Write ``config.json`` (with ``_class_name``) + ``model.safetensors``."""
        return save_model_folder(self, {"_class_name": "WFVAE", **self.config.to_dict()}, path, dtype=dtype)

    # ----- latents ---------------------------------------------------------------------------------------
    def _scale_shift(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        scale = torch.tensor(c.scale or (1.0,) * c.latent_dim, dtype=z.dtype, device=z.device)
        shift = torch.tensor(c.shift or (0.0,) * c.latent_dim, dtype=z.dtype, device=z.device)
        return scale.view(1, -1, 1, 1, 1), shift.view(1, -1, 1, 1, 1)

    def normalize_latents(self, z: torch.Tensor) -> torch.Tensor:
        """VAE latent -> DiT latent: ``(z - shift) * scale`` per channel (Open-Sora Plan convention)."""
        scale, shift = self._scale_shift(z)
        return (z - shift) * scale

    def denormalize_latents(self, z: torch.Tensor) -> torch.Tensor:
        scale, shift = self._scale_shift(z)
        return z / scale + shift

    # ----- encode / decode -------------------------------------------------------------------------------
    def _pixels_in(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5:
            raise ValueError(f"expected pixels (B, C, T, H, W), got shape {tuple(x.shape)}")
        n = self.config.in_channels
        if x.shape[1] == 1 and n == 3:  # grey FFA into official RGB weights: repeat the grey value
            x = x.expand(-1, 3, -1, -1, -1)
        elif x.shape[1] != n:
            raise ValueError(
                f"input has {x.shape[1]} channels; this WF-VAE takes {n} (or 1, repeated, when 3)"
            )
        if x.shape[-1] % 8 or x.shape[-2] % 8:
            raise ValueError(f"height and width must be multiples of 8, got {tuple(x.shape[-2:])}")
        # No layout change here: the encoder makes each chunk channels-last itself, so a chunked encode
        # never holds a second copy of the whole clip (66 MB at 21 x 512 x 512).
        return x.to(self._dtype())

    def _dtype(self) -> torch.dtype:
        """The compute dtype: inputs are cast to the weights' dtype (fp32, or bf16 after ``.to(bfloat16)``)."""
        return self.decoder.conv_out.weight.dtype

    def encode(self, x: torch.Tensor, chunk: int | None = None, frames: str = "error") -> DiagonalGaussian:
        """Pixels (B, C, 1 + 4k, H, W) -> posterior over (B, latent, 1 + k, H/8, W/8).

        ``chunk``: process frame 0, then ``chunk`` frames at a time (a multiple of 4), carrying the causal
        cache; None = the whole clip at once. ``frames``: "error" | "pad" | "trim" for other frame counts.
        """
        x = fit_frames(self._pixels_in(x), frames)
        if x.device.type == "cpu":
            release_large_tensors_to_os()
        return DiagonalGaussian(torch.cat([m for m, _ in self._encode_chunks(x, chunk)], dim=2))

    def encode_moments(self, x: torch.Tensor, chunk: int | None = None) -> tuple[torch.Tensor, Coeffs]:
        """Raw encoder output (B, 2*latent, t, h, w) and the true energy-flow coefficients (W2, W3)."""
        parts = list(self._encode_chunks(x, chunk))
        if len(parts) == 1:
            return parts[0]
        w2, w3 = (torch.cat([coeffs[i] for _, coeffs in parts], dim=2) for i in (0, 1))
        return torch.cat([m for m, _ in parts], dim=2), (w2, w3)

    def _encode_chunks(self, x: torch.Tensor, chunk: int | None) -> Iterator[tuple[torch.Tensor, Coeffs]]:
        """Encoder outputs chunk by chunk (a generator: ``encode`` keeps only the moments of each)."""
        t = x.shape[2]
        if chunk is None or chunk >= t - 1:
            yield self.encoder(x)
            return
        if chunk < 4 or chunk % 4:
            raise ValueError(f"encode chunk={chunk}: expected a multiple of 4 pixel frames")
        cache = CausalCache()
        for start, stop in [(0, 1)] + [(s, min(s + chunk, t)) for s in range(1, t, chunk)]:
            yield self.encoder(x[:, :, start:stop], cache)

    def decode(
        self,
        z: torch.Tensor,
        chunk: int | None = None,
        tile: int | None = None,
        tile_overlap: int = 4,
        tile_halo: int = TILE_HALO,
        channels: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> torch.Tensor:
        """Latents (B, latent, t, h, w) -> pixels (B, C, 4(t-1)+1, 8h, 8w), not clamped.

        ``chunk``: latent frames per temporal chunk (any >= 1; None = whole clip; with chunks the 2x and 4x
        levels also run frame by frame: less memory, same result). ``tile``: spatial tile size
        in latent pixels, each decoded with ``tile_halo`` pixels of context and blended linearly over
        ``tile_overlap`` pixels (None = no tiling). ``conv_in`` and ``mid`` (with the attention) run on whole
        frames, which is cheap at latent resolution; with ``tile_halo >= TILE_HALO`` every later convolution
        sees its full receptive field, so tiled == whole up to float rounding. ``channels=1``
        averages the RGB output of a 3-channel model to grey. ``progress(done, total)`` counts
        (tile, chunk) steps.
        """
        if z.dim() != 5 or z.shape[1] != self.config.latent_dim:
            raise ValueError(f"expected latents (B, {self.config.latent_dim}, t, h, w), got {tuple(z.shape)}")
        if tile is not None and not 0 <= tile_overlap < tile:
            raise ValueError(f"tile_overlap={tile_overlap} must be in [0, tile={tile})")
        if chunk is not None and chunk < 1:
            raise ValueError(f"decode chunk={chunk}: expected >= 1 latent frame")
        z = z.to(self._dtype()).contiguous(memory_format=torch.channels_last_3d)
        if z.device.type == "cpu":
            release_large_tensors_to_os()
        t, h, w = z.shape[2:]
        # A caller who asks for chunks wants bounded memory: the fine levels then also go frame by frame.
        chunked = chunk is not None and chunk < t
        chunk = t if chunk is None else chunk
        windows = [(0, 0, h, w)]  # (y0, x0, y1, x1) of the kept region, latent pixels
        if tile is not None and (tile < h or tile < w):
            windows = [
                (y0, x0, min(y0 + tile, h), min(x0 + tile, w))
                for y0 in tile_starts(h, tile, tile_overlap)
                for x0 in tile_starts(w, tile, tile_overlap)
            ]
        # The head (with the attention) runs on whole frames once per chunk. The tail then runs tile by
        # tile, each through every chunk with its own causal cache, so only one tile's cache (the largest
        # memory term at 512 x 512: two frames per convolution) is ever alive.
        head_cache, hidden = CausalCache(), []
        for start in range(0, t, chunk):
            head_cache.final = start + chunk >= t
            hidden.append(self.decoder.head(z[:, :, start : start + chunk], head_cache))
        tiles: list[list[tuple[tuple[int, int], torch.Tensor]]] = [[] for _ in hidden]
        done, total = 0, len(windows) * len(hidden)
        for y0, x0, y1, x1 in windows:
            # Each tile gets `tile_halo` latent pixels of real context on every side, cropped away after.
            ya, xa = max(0, y0 - tile_halo), max(0, x0 - tile_halo)
            yb, xb = min(h, y1 + tile_halo), min(w, x1 + tile_halo)
            dy, dx = (y0 - ya) * 8, (x0 - xa) * 8
            cache = CausalCache()
            for i, states in enumerate(hidden):
                cache.final = i == len(hidden) - 1
                part = self.decoder.tail(states[..., ya:yb, xa:xb], cache, frame_by_frame=chunked)[0]
                tiles[i].append(
                    ((y0 * 8, x0 * 8), part[..., dy : dy + (y1 - y0) * 8, dx : dx + (x1 - x0) * 8])
                )
                done += 1
                if progress is not None:
                    progress(done, total)
        outs = [
            parts[0][1] if len(parts) == 1 else blend_tiles(parts, (h * 8, w * 8), tile_overlap * 8)
            for parts in tiles
        ]
        video = outs[0] if len(outs) == 1 else torch.cat(outs, dim=2)
        if channels == 1 and video.shape[1] == 3:
            video = video.mean(dim=1, keepdim=True)
        return video

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None, sample_posterior: bool = True
    ) -> tuple[torch.Tensor, DiagonalGaussian, tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Training pass: (reconstruction, posterior, (W2, Ŵ2, W3, Ŵ3)) for the L1 / KL / wavelet losses."""
        x = self._pixels_in(x)
        check_frames(x.shape[2])
        moments, (w2, w3) = self.encoder(x)
        posterior = DiagonalGaussian(moments)
        z = posterior.sample(generator) if sample_posterior else posterior.mode()
        recon, (w2_hat, w3_hat) = self.decoder(z)
        return recon, posterior, (w2, w2_hat, w3, w3_hat)


@torch.no_grad()
def latent_statistics(
    vae: WFVAE, clips: Iterable[torch.Tensor], generator: torch.Generator | None = None, chunk: int | None = 8
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel ``(shift, scale)`` that make posterior samples zero-mean, unit-variance for the DiT.

    clips: pixel batches (B, C, T, H, W). Samples (not means) are measured, as Open-Sora Plan trains the DiT
    on ``posterior.sample()``; ``scale = 1 / std``. Sums are accumulated in float64.
    """
    total = sq = None
    count = 0
    for x in clips:
        z = vae.encode(x, chunk=chunk).sample(generator).double()  # (B, c, t, h, w)
        per_channel = z.transpose(0, 1).flatten(1)  # (c, N)
        total = per_channel.sum(1) if total is None else total + per_channel.sum(1)
        sq = per_channel.pow(2).sum(1) if sq is None else sq + per_channel.pow(2).sum(1)
        count += per_channel.shape[1]
    if total is None or sq is None or count < 2:
        raise ValueError("latent_statistics: no clips given")
    mean = total / count
    std = (sq / count - mean.pow(2)).clamp_min(1e-12).sqrt()
    return tuple(mean.tolist()), tuple((1.0 / std).tolist())
