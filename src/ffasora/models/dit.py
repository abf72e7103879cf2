"""The report-conditioned video diffusion transformer (Open-Sora Plan v1.3 DiT, any size).

Latents (B, C, T, H, W) are cut into 1x2x2 patches (per-frame ``Conv2d``), giving S = T*(H/2)*(W/2) tokens
in (t, h, w) order with no absolute position embedding; positions enter through RoPE-3D in self-attention.
The timestep is embedded once (sinusoid 256 -> MLP) and projected to six modulation vectors shared by all
blocks (AdaLN-single, PixArt-alpha arXiv 2310.00426); text token states pass a Linear-GELU-Linear projection
and are read by an un-normalised cross-attention in every block. The output has the input's shape; under the
official v1.3 recipe it is a v-prediction. Blocks live in :mod:`ffasora.models.dit_blocks`.

Timesteps are raw DDPM indices in [0, 1000) (the sinusoid sees the value as is); continuous-time callers
scale theirs to that range.

With ``config.image_channels > 0`` the DiT also takes an image condition (:class:`ImageEmbed`): a colour fundus
photograph encoded by the same VAE, joined to the video tokens as Open-Sora Plan v1.3's inpainting model joins
its masked-video latents: its own patch embedding, then a zero-initialised linear, added to the noisy
latents' tokens. A model without it, and any model called without an image, computes exactly as before.

Official ``OpenSoraT2V_v1_3`` folders (diffusers, or ``config.json`` + ``.ckpt``) load through
:mod:`ffasora.models.official` (config translation and the key table); ``DiT.save_official`` writes one.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from ffasora.models.dit_blocks import MASKED, AttentionContext, CrossAttention, DiTBlock
from ffasora.models.dit_config import DiTConfig
from ffasora.models.official import (
    config_from_official,
    is_official_config,
    is_official_state_dict,
    official_to_ours,
    save_official,
)
from ffasora.models.pretrained import build_and_load, read_config, read_state_dict, save_model_folder
from ffasora.models.rope import rope_tables

TIME_FREQ_DIM = 256  # sinusoid width of the timestep embedding (PixArt-alpha / diffusers default)


def read_dit_config(path: str | Path) -> DiTConfig:
    """The :class:`DiTConfig` of a model folder, ours or official, from its ``config.json`` alone (no weights)."""
    raw = read_config(path)
    if is_official_config(raw):
        return config_from_official(raw, f"{path}/config.json")
    return DiTConfig.from_dict(raw, f"{path}/config.json")


def timestep_sinusoid(t: torch.Tensor, dim: int = TIME_FREQ_DIM, max_period: float = 10000.0) -> torch.Tensor:
    """(B,) timesteps -> (B, dim) features ``[cos(t w_i), sin(t w_i)]``, w_i = max_period^(-i/(dim/2)).

    The transformer sinusoid (Vaswani et al. 2017) with cosines first, as in diffusers' ``flip_sin_to_cos``.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    angles = t.float()[:, None] * freqs[None]
    return torch.cat((angles.cos(), angles.sin()), dim=-1)


@dataclass(frozen=True)
class BlockInputs:
    """What every DiT block sees beside the token stream, computed once per forward by :meth:`DiT.embed`."""

    emb: torch.Tensor  # (B, D) timestep embedding; also modulates the output layer
    t6: torch.Tensor  # (B, 6, D) shared timestep modulation of the blocks (AdaLN-single)
    text: torch.Tensor  # (B, L, D) projected report states
    ctx: AttentionContext  # RoPE tables and attention biases
    grid: tuple[int, int, int]  # (T, H / p, W / p) token grid


class ImageEmbed(nn.Module):
    """The image-condition stream: (B, image_channels, 1 or T, H, W) latents + a given-flag -> (B, S, D).

    Open-Sora Plan v1.3's inpainting / image-to-video DiT adds two streams to the noisy latents' patch tokens,
    the masked-video latents and the frame mask, each a patch embedding followed by a zero-initialised bias-free
    linear. Ours is the same join with one stream: the photograph's latent (one latent frame, repeated along
    latent time because a fundus photograph is registered to every frame of the angiogram, not to one of them)
    with a constant channel saying whether an image is given. Dropped images (training dropout, or none at
    generation) are zeros with the flag off, so one model serves report-only, image-only and both. The zero
    linear makes a freshly extended model compute exactly what its text-only parent did.
    """

    def __init__(self, image_channels: int, hidden_size: int, patch_size: int) -> None:
        super().__init__()
        self.image_channels = image_channels
        self.patch = nn.Conv2d(image_channels + 1, hidden_size, kernel_size=patch_size, stride=patch_size)
        self.out = nn.Linear(hidden_size, hidden_size, bias=False)

    def forward(
        self, image: torch.Tensor | None, given: torch.Tensor | None, shape: tuple[int, ...]
    ) -> torch.Tensor:
        b, _, t, h, w = shape
        if image is None:
            image = torch.zeros((b, self.image_channels, 1, h, w), device=self.out.weight.device)
            given = torch.zeros(b, dtype=torch.bool, device=image.device)
        if image.ndim != 5 or image.shape[0] != b or image.shape[1] != self.image_channels:
            raise ValueError(
                f"image latents of shape {tuple(image.shape)}: expected ({b}, {self.image_channels}, 1, {h}, {w})"
            )
        if tuple(image.shape[3:]) != (h, w) or image.shape[2] not in (1, t):
            raise ValueError(f"image latents of shape {tuple(image.shape)} do not fit video latents {shape}")
        given = torch.ones(b, dtype=torch.bool, device=image.device) if given is None else given.bool()
        flag = given.to(image.dtype)[:, None, None, None, None]
        x = torch.cat([image * flag, flag.expand(b, 1, *image.shape[2:])], dim=1)  # (B, Ci + 1, 1|T, H, W)
        x = x.expand(b, x.shape[1], t, h, w).to(self.out.weight.dtype)
        tokens = self.patch(x.transpose(1, 2).flatten(0, 1))  # (B*T, D, H/p, W/p)
        tokens = tokens.flatten(2).transpose(1, 2).reshape(b, -1, tokens.shape[1])  # (B, S, D)
        return self.out(tokens)


class DiT(nn.Module):
    """Text-conditioned video DiT. ``model(x, timestep, text_states, text_mask)`` -> prediction like ``x``."""

    def __init__(self, config: DiTConfig):
        super().__init__()
        self.config = config
        d, p = config.hidden_size, config.patch_size
        self.gradient_checkpointing = False
        self.patch_embed = nn.Conv2d(config.in_channels, d, kernel_size=p, stride=p)
        self.text_proj = nn.Sequential(nn.Linear(config.text_dim, d), nn.GELU("tanh"), nn.Linear(d, d))
        self.time_embed = nn.Sequential(nn.Linear(TIME_FREQ_DIM, d), nn.SiLU(), nn.Linear(d, d))
        self.time_modulation = nn.Linear(d, 6 * d)
        self.blocks = nn.ModuleList(
            DiTBlock(
                d,
                config.num_heads,
                config.mlp_ratio,
                config.attention_bias,
                config.norm_eps,
                sparse_n=config.sparse_n if config.is_sparse(i) else 1,
                sparse_group=i % 2 == 1,  # upstream alternates single / group skip by block parity
            )
            for i in range(config.num_layers)
        )
        self.norm_out = nn.LayerNorm(d, eps=1e-6, elementwise_affine=False)  # upstream fixes 1e-6 here
        self.final_modulation = nn.Parameter(torch.randn(2, d) / d**0.5)
        self.proj_out = nn.Linear(d, p * p * config.out_channels)
        self.image_embed = ImageEmbed(config.image_channels, d, p) if config.image_channels else None
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """Initialisation for training from scratch (PixArt-alpha, arXiv 2310.00426, appendix A.1).

        Xavier-uniform linears and patch embedding; N(0, 0.02) for the timestep and text MLPs; cross-attention
        outputs and the output projection start at zero, so a fresh model predicts 0 and sees the text only as
        training opens that path. Loading pretrained weights overwrites all of this.
        """
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        w = self.patch_embed.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        small = [*self.time_embed, *self.text_proj, self.time_modulation]
        for module in small:
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.02)
        zeroed = [m.out for m in self.modules() if isinstance(m, CrossAttention)] + [self.proj_out]
        for linear in zeroed:
            nn.init.zeros_(linear.weight)
            nn.init.zeros_(linear.bias)
        nn.init.zeros_(self.patch_embed.bias)  # type: ignore[arg-type]
        if self.image_embed is not None:
            self.zero_image_path()

    def zero_image_path(self) -> None:
        """Zero the image stream's output linear: the model then ignores images until training opens it
        (as upstream's ``zero_module`` on its inpainting streams)."""
        if self.image_embed is not None:
            nn.init.zeros_(self.image_embed.out.weight)

    def set_gradient_checkpointing(self, enabled: bool = True) -> None:
        """Recompute each block in the backward pass (activation memory ~1 block instead of all)."""
        self.gradient_checkpointing = enabled

    def forward(
        self,
        x: torch.Tensor,
        timestep: torch.Tensor | float,
        text_states: torch.Tensor,
        text_mask: torch.Tensor | None = None,
        video_mask: torch.Tensor | None = None,
        image: torch.Tensor | None = None,
        image_given: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict from noisy latents.

        Args:
            x: latents (B, C, T, H, W); H and W divisible by ``patch_size``.
            timestep: (B,) or a scalar, DDPM index in [0, 1000).
            text_states: (B, L, text_dim); the official (B, 1, L, text_dim) layout is accepted too.
            text_mask: (B, L) (or (B, 1, L)), true/1 = real token; None = all real.
            video_mask: (B, T, H, W) at latent resolution, 1 = valid; a patch is valid if any pixel is.
            image: image-condition latents (B, image_channels, 1, H, W) (models with ``image_channels``);
                None = no image.
            image_given: (B,) bool, which samples' images count (the rest are dropped); None = all.
        Returns:
            (B, out_channels, T, H, W).
        """
        tokens, inputs = self.embed(x, timestep, text_states, text_mask, video_mask, image, image_given)
        tokens = self.run_blocks(tokens, inputs)
        return self.unembed(tokens, inputs)

    def embed(
        self,
        x: torch.Tensor,
        timestep: torch.Tensor | float,
        text_states: torch.Tensor,
        text_mask: torch.Tensor | None = None,
        video_mask: torch.Tensor | None = None,
        image: torch.Tensor | None = None,
        image_given: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, BlockInputs]:
        """Latents (and the image condition) -> patch tokens (B, S, D), and what every block sees beside them."""
        b, _, t, h, w = x.shape
        grid = self.config.token_grid(t, h, w)
        text_states, text_mask = self._check_text(text_states, text_mask, b)
        timestep = torch.as_tensor(timestep, device=x.device).reshape(-1)
        if timestep.numel() not in (1, b):
            raise ValueError(f"timestep has {timestep.numel()} values for a batch of {b}; expected 1 or {b}")
        timestep = timestep.expand(b)

        tokens = self.patch_embed(x.transpose(1, 2).flatten(0, 1))  # (B*T, D, H/p, W/p)
        tokens = tokens.flatten(2).transpose(1, 2).reshape(b, -1, self.config.hidden_size)  # (B, S, D)
        if self.image_embed is not None:
            tokens = tokens + self.image_embed(image, image_given, tuple(x.shape))  # (B, S, D)
        elif image is not None:
            raise ValueError("this DiT takes no image condition (config.image_channels = 0)")
        emb = self.time_embed(timestep_sinusoid(timestep).to(tokens.dtype))  # (B, D)
        cos, sin = rope_tables(
            grid, self.config.head_dim, self.config.rope_base, self.config.rope_scale, x.device
        )
        inputs = BlockInputs(
            emb=emb,
            t6=self.time_modulation(F.silu(emb)).unflatten(-1, (6, -1)),  # (B, 6, D)
            text=self.text_proj(text_states.to(tokens.dtype)),  # (B, L, D)
            ctx=AttentionContext(
                rope_cos=cos,
                rope_sin=sin,
                key_bias=self._video_bias(video_mask, x.shape),
                text_bias=None if text_mask is None else (~text_mask).to(tokens.dtype) * MASKED,
            ),
            grid=grid,
        )
        return tokens, inputs

    def run_blocks(self, tokens: torch.Tensor, inputs: BlockInputs) -> torch.Tensor:
        """The transformer blocks, in order, on the token stream (B, S, D)."""
        for block in self.blocks:
            if self.gradient_checkpointing and torch.is_grad_enabled():
                tokens = checkpoint(block, tokens, inputs.t6, inputs.text, inputs.ctx, use_reentrant=False)
            else:
                tokens = block(tokens, inputs.t6, inputs.text, inputs.ctx)
        return tokens

    def unembed(self, tokens: torch.Tensor, inputs: BlockInputs) -> torch.Tensor:
        """Tokens (B, S, D) -> the prediction (B, out_channels, T, H, W)."""
        b, (t, gh, gw), p = tokens.shape[0], inputs.grid, self.config.patch_size
        shift, scale = (self.final_modulation[None] + inputs.emb[:, None]).unbind(1)  # (B, D) each
        tokens = self.norm_out(tokens) * (1 + scale[:, None]) + shift[:, None]
        out = self.proj_out(tokens)  # (B, S, p*p*C), features ordered (p_h, p_w, c)
        out = out.reshape(b, t, gh, gw, p, p, self.config.out_channels)
        return out.permute(0, 6, 1, 2, 4, 3, 5).reshape(b, self.config.out_channels, t, gh * p, gw * p)

    def _check_text(
        self, states: torch.Tensor, mask: torch.Tensor | None, batch: int
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if states.ndim == 4 and states.shape[1] == 1:  # official (B, 1, L, C)
            states = states[:, 0]
        if states.ndim != 3 or states.shape[0] != batch or states.shape[-1] != self.config.text_dim:
            raise ValueError(
                f"text_states of shape {tuple(states.shape)}: expected ({batch}, L, {self.config.text_dim})"
            )
        if mask is None:
            return states, None
        if mask.ndim == 3 and mask.shape[1] == 1:
            mask = mask[:, 0]
        if tuple(mask.shape) != tuple(states.shape[:2]):
            raise ValueError(f"text_mask of shape {tuple(mask.shape)}: expected {tuple(states.shape[:2])}")
        return states, mask.bool()

    def _video_bias(self, video_mask: torch.Tensor | None, shape: torch.Size) -> torch.Tensor | None:
        if video_mask is None:
            return None
        b, _, t, h, w = shape
        if tuple(video_mask.shape) != (b, t, h, w):
            raise ValueError(f"video_mask of shape {tuple(video_mask.shape)}: expected {(b, t, h, w)}")
        p = self.config.patch_size
        valid = F.max_pool3d(video_mask[:, None].float(), kernel_size=(1, p, p)).flatten(1) > 0  # (B, S)
        return (~valid).float() * MASKED

    def with_image_condition(self, image_channels: int) -> DiT:
        """A copy of this text-only DiT that also takes ``image_channels``-channel image latents: every weight
        carried over, the image stream new with its output zeroed, so it computes exactly what this model
        does until fine-tuning opens the image path."""
        if self.image_embed is not None:
            raise ValueError(f"this DiT already takes images ({self.config.image_channels} channels)")
        config = dataclasses.replace(self.config, image_channels=image_channels)
        extended = DiT(config).to(next(self.parameters()).dtype)
        missing, unexpected = extended.load_state_dict(self.state_dict(), strict=False)
        assert not unexpected and all(k.startswith("image_embed.") for k in missing), (missing, unexpected)
        return extended

    @classmethod
    def from_pretrained(cls, path: str | Path, dtype: torch.dtype | None = None) -> DiT:
        """Load our folder or an official ``OpenSoraT2V_v1_3`` folder (diffusers or ``.ckpt``), strictly."""
        config = read_dit_config(path)
        state_dict = read_state_dict(path)
        if is_official_state_dict(state_dict):
            state_dict = official_to_ours(state_dict)
        return build_and_load(lambda: cls(config), state_dict, source=str(path), dtype=dtype)

    def save_pretrained(self, path: str | Path, dtype: torch.dtype | None = None) -> Path:
        """Write our folder: ``config.json`` (:class:`DiTConfig`) + ``model.safetensors``."""
        return save_model_folder(self, self.config.to_dict(), path, dtype=dtype)

    def save_official(self, path: str | Path, dtype: torch.dtype | None = None) -> Path:
        """Write an ``OpenSoraT2V_v1_3`` diffusers folder (for the upstream tools): :func:`save_official`."""
        return save_official(self, self.config, path, dtype=dtype)
