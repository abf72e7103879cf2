"""WF-VAE: the video autoencoder of FFA Sora / Open-Sora Plan v1.3 (arXiv 2411.17459), 4x8x8 compression.

Public API::

    vae = WFVAE.from_pretrained(path)            # ours, diffusers folder, or config.json + .ckpt (strict)
    posterior = vae.encode(x)                     # x: (B, C, 1 + 4k, H, W) in [-1, 1]; C = 1 or 3
    z = posterior.sample(generator)               # (B, latent, 1 + k, H/8, W/8)
    video = vae.decode(z)                         # (B, C, 1 + 4k, H, W)
    z_dit = vae.normalize_latents(z)              # (z - shift) * scale, per channel, from the config
    vae.save_pretrained(path)

``encode`` takes ``chunk`` (temporal chunk length; chunked == whole clip up to rounding because every norm is
per position and attention is per frame). How ``decode`` walks a clip is a :class:`DecodeStrategy` set with
``vae.enable_chunking(...)`` / ``vae.enable_tiling(...)`` (or passed per call); see
:mod:`ffasora.models.vae_decoding`. The shape rules (compression, legal frame counts) are
:mod:`ffasora.models.vae_shapes`. This file is plain PyTorch; fast CPU inference is switched on from outside
(:mod:`ffasora.runtime.cpu`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ffasora.models.causal import CacheKeyed, CausalCache
from ffasora.models.pretrained import build_and_load, read_config, read_weights, save_model_folder
from ffasora.models.vae_arch import Coeffs, Decoder, Encoder
from ffasora.models.vae_decoding import DecodeStrategy, decode_in_pieces
from ffasora.models.vae_shapes import (
    SPATIAL_COMPRESSION,
    TEMPORAL_COMPRESSION,
    check_frames,
    is_legal_frames,
    latent_shape,
    legal_frames_above,
    legal_frames_below,
)

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


def fit_frames(x: torch.Tensor, policy: str = "error") -> torch.Tensor:
    """Make the frame count of x (B, C, T, H, W) legal by ``policy``: "error", "pad" (repeat last), "trim"."""
    if policy not in FRAME_POLICIES:
        raise ValueError(f"frame policy {policy!r}: expected one of {FRAME_POLICIES}")
    t = x.shape[2]
    if is_legal_frames(t):
        return x
    if policy == "trim" and t >= 1:
        return x[:, :, : legal_frames_below(t)]
    if policy == "pad" and t >= 1:
        extra = legal_frames_above(t) - t
        return torch.cat([x, x[:, :, -1:].expand(-1, -1, extra, -1, -1)], dim=2)
    try:
        check_frames(t)
    except ValueError as err:
        raise ValueError(
            f"{err}, or pass frames='pad' (repeat the last frame) / frames='trim' (drop the last frames)"
        ) from None
    return x


class WFVAE(nn.Module):
    """Wavelet-Flow VAE. Pixels (B, C, T, H, W) in [-1, 1] <-> latents (B, latent, (T-1)/4+1, H/8, W/8)."""

    temporal_compression = TEMPORAL_COMPRESSION
    spatial_compression = SPATIAL_COMPRESSION

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
        self.decoding = DecodeStrategy()

    # ----- shapes ----------------------------------------------------------------------------------------
    def latent_shape(self, frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        """``(latent, t, h, w)`` of the latent of a ``frames x height x width`` clip (``ValueError`` if illegal)."""
        return (self.config.latent_dim, *latent_shape(frames, height, width))

    # ----- decode strategy (in the spirit of diffusers' enable_tiling) ------------------------------------
    def enable_chunking(self, chunk: int = 2) -> None:
        """Decode ``chunk`` latent frames at a time (and the fine levels frame by frame): bounded memory over
        time, same result."""
        self.decoding = dataclasses.replace(self.decoding, chunk=chunk)

    def disable_chunking(self) -> None:
        self.decoding = dataclasses.replace(self.decoding, chunk=None)

    def enable_tiling(self, tile: int = 32, overlap: int = 4) -> None:
        """Decode spatial tiles of ``tile`` latent pixels blended over ``overlap``: bounded memory over space,
        same result up to rounding (see :mod:`ffasora.models.vae_decoding`)."""
        self.decoding = dataclasses.replace(self.decoding, tile=tile, tile_overlap=overlap)

    def disable_tiling(self) -> None:
        self.decoding = dataclasses.replace(self.decoding, tile=None)

    # ----- weights on disk -------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path: str | Path, dtype: torch.dtype | None = None) -> WFVAE:
        """Load our folder, an official diffusers folder, or official ``config.json`` + ``.ckpt``, strictly."""
        config = WFVAEConfig.from_dict(read_config(path), source=f"{path}/config.json")
        weights = read_weights(path)
        # The upstream trainer's ``ema_state_dict`` holds only trainable parameters; the Haar filters and
        # buffers are constants of the architecture, so they come from the constructor (and are logged).
        return build_and_load(
            lambda: cls(config),
            weights.tensors,
            source=str(weights.file),
            dtype=dtype,
            constants_from_constructor=weights.is_ema,
        )

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
        s = self.spatial_compression
        if x.shape[-1] % s or x.shape[-2] % s:
            raise ValueError(f"height and width must be multiples of {s}, got {tuple(x.shape[-2:])}")
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
        t, step = x.shape[2], self.temporal_compression
        if chunk is None or chunk >= t - 1:
            yield self.encoder(x)
            return
        if chunk < step or chunk % step:
            raise ValueError(f"encode chunk={chunk}: expected a multiple of {step} pixel frames")
        cache = CausalCache()
        for start, stop in [(0, 1)] + [(s, min(s + chunk, t)) for s in range(1, t, chunk)]:
            yield self.encoder(x[:, :, start:stop], cache)

    def decode(
        self,
        z: torch.Tensor,
        strategy: DecodeStrategy | None = None,
        channels: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> torch.Tensor:
        """Latents (B, latent, t, h, w) -> pixels (B, C, 4(t-1)+1, 8h, 8w), not clamped.

        ``strategy``: how to walk the clip (default: ``self.decoding``, set by :meth:`enable_chunking` /
        :meth:`enable_tiling`; whole clip at once unless set). ``channels=1`` averages the RGB output of a
        3-channel model to grey. ``progress(done, total)`` counts (tile, chunk) steps.
        """
        if z.dim() != 5 or z.shape[1] != self.config.latent_dim:
            raise ValueError(f"expected latents (B, {self.config.latent_dim}, t, h, w), got {tuple(z.shape)}")
        strategy = strategy or self.decoding
        z = z.to(self._dtype())
        if strategy == DecodeStrategy():
            video, _ = self.decoder(z)
            if progress is not None:
                progress(1, 1)
        else:
            video = decode_in_pieces(self.decoder, z, strategy, self.spatial_compression, progress)
        if channels == 1 and video.shape[1] == 3:
            video = video.mean(dim=1, keepdim=True)
        return video

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Pixels (B, C, T, H, W) -> the decoded posterior mean, C channels, not clamped: the closest a
        generator decoding with this VAE can come to ``x``."""
        return self.decode(self.encode(x).mean, channels=x.shape[1])

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None, sample_posterior: bool = True
    ) -> tuple[torch.Tensor, DiagonalGaussian, tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Training pass: (reconstruction, posterior, (W2, Ŵ2, W3, Ŵ3)) for the L1 / KL / wavelet losses."""
        x = fit_frames(self._pixels_in(x))
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
