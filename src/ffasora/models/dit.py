"""The report-conditioned video diffusion transformer (Open-Sora Plan v1.3 DiT, any size).

Latents (B, C, T, H, W) are cut into 1x2x2 patches (per-frame ``Conv2d``), giving S = T*(H/2)*(W/2) tokens
in (t, h, w) order with no absolute position embedding; positions enter through RoPE-3D in self-attention.
The timestep is embedded once (sinusoid 256 -> MLP) and projected to six modulation vectors shared by all
blocks (AdaLN-single, PixArt-alpha arXiv 2310.00426); text token states pass a Linear-GELU-Linear projection
and are read by an un-normalised cross-attention in every block. The output has the input's shape; under the
official v1.3 recipe it is a v-prediction. Blocks live in :mod:`ffasora.models.dit_blocks`.

Timesteps are raw DDPM indices in [0, 1000) (the sinusoid sees the value as is); continuous-time callers
scale theirs to that range.

Loading official weights
------------------------
``DiT.save_official`` writes the official diffusers layout back (``config_to_official``).
``DiT.from_pretrained`` reads our folders (``config.json`` = :class:`DiTConfig`, ``model.safetensors``) and
the official ones: a diffusers folder of ``OpenSoraT2V_v1_3`` or ``config.json`` + ``.ckpt``. Official config
keys map to :class:`DiTConfig` as follows (anything else is rejected):

=====================================  ======================================================================
official ``config.json``               ``DiTConfig``
=====================================  ======================================================================
num_attention_heads                    num_heads
attention_head_dim                     head_dim (multiple of 6 for RoPE-3D)
in_channels / out_channels (null=in)   in_channels / out_channels
num_layers                             num_layers
caption_channels                       text_dim
cross_attention_dim                    must equal num_heads * head_dim (caption projection output)
patch_size / patch_size_t              patch_size / must be 1 (v1.3 embeds patches per frame)
activation_fn                          must be "gelu-approximate"
attention_bias                         attention_bias
norm_eps / norm_elementwise_affine     norm_eps / must be false
interpolation_scale_t, _h, _w          rope_scale (t, h, w)
sparse1d, sparse_n                     sparse_n (1 when sparse1d is false); dense_first = 2,
                                       dense_last = max(0, num_layers - 30) (upstream: sparse iff 1 < i < 30)
dropout                                must be 0
only_cross_attention, double_self_     must be false
attention
upcast_attention, sample_size_*,       ignored (no effect on the computation)
_class_name, _diffusers_version, ...
=====================================  ======================================================================

State-dict keys map one to one (``{i}`` = block index); see ``OFFICIAL_KEY_MAP``:

=====================================================  ==================================
official                                               ours
=====================================================  ==================================
pos_embed.proj.*                                       patch_embed.*
caption_projection.linear_1.* / linear_2.*             text_proj.0.* / text_proj.2.*
adaln_single.emb.timestep_embedder.linear_1.* / _2.*   time_embed.0.* / time_embed.2.*
adaln_single.linear.*                                  time_modulation.*
scale_shift_table                                      final_modulation
proj_out.*                                             proj_out.*
transformer_blocks.{i}.scale_shift_table               blocks.{i}.modulation
transformer_blocks.{i}.attn1.to_{q,k,v}.*              blocks.{i}.self_attn.{q,k,v}.*
transformer_blocks.{i}.attn1.to_out.0.*                blocks.{i}.self_attn.out.*
transformer_blocks.{i}.attn2.*  (same pattern)         blocks.{i}.cross_attn.*
transformer_blocks.{i}.ff.net.0.proj.* / ff.net.2.*    blocks.{i}.mlp.fc1.* / mlp.fc2.*
=====================================================  ==================================
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn
from torch.utils.checkpoint import checkpoint

from ffasora.models.dit_blocks import MASKED, AttentionContext, CrossAttention, DiTBlock
from ffasora.models.pretrained import build_and_load, read_config, read_state_dict, save_model_folder
from ffasora.models.rope import rope_tables

OFFICIAL_WEIGHTS = "diffusion_pytorch_model.safetensors"
TIME_FREQ_DIM = 256  # sinusoid width of the timestep embedding (PixArt-alpha / diffusers default)


@dataclass(frozen=True)
class DiTConfig:
    """Everything that fixes the DiT's weights. Defaults: the official OpenSoraT2V_v1_3-2B/122 (2.77 B)."""

    in_channels: int = 8
    out_channels: int = 8
    num_layers: int = 32
    num_heads: int = 24
    head_dim: int = 96
    text_dim: int = 4096  # width of the text encoder's token states (mT5-XXL: 4096, MiniLM: 384)
    patch_size: int = 2
    mlp_ratio: int = 4
    attention_bias: bool = True
    norm_eps: float = 1e-6
    rope_base: float = 10000.0
    rope_scale: tuple[float, float, float] = (1.0, 1.0, 1.0)  # position divisors along (t, h, w)
    sparse_n: int = 4  # Skiparse k; 1 = full attention in every block
    dense_first: int = 2  # the first blocks that keep full attention
    dense_last: int = 2  # the last blocks that keep full attention

    def __post_init__(self) -> None:
        if self.head_dim % 6:
            raise ValueError(f"DiTConfig.head_dim={self.head_dim}: RoPE-3D needs a multiple of 6")
        positive = (
            "in_channels",
            "out_channels",
            "num_layers",
            "num_heads",
            "patch_size",
            "sparse_n",
            "mlp_ratio",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"DiTConfig.{name}={getattr(self, name)}: expected a positive integer")
        if self.dense_first < 0 or self.dense_last < 0:
            raise ValueError(
                f"DiTConfig dense_first/dense_last = {self.dense_first}/{self.dense_last}: expected >= 0"
            )
        if len(self.rope_scale) != 3:
            raise ValueError(f"DiTConfig.rope_scale={self.rope_scale}: expected three numbers (t, h, w)")
        # JSON/TOML give lists; keep a hashable, comparable tuple of floats
        object.__setattr__(self, "rope_scale", tuple(float(v) for v in self.rope_scale))

    @property
    def hidden_size(self) -> int:
        return self.num_heads * self.head_dim

    def token_grid(self, frames: int, height: int, width: int) -> tuple[int, int, int]:
        """The ``(t, h / p, w / p)`` patch-token grid of a ``(t, h, w)`` latent; ``ValueError`` unless the
        patch size divides ``h`` and ``w``."""
        p = self.patch_size
        if height % p or width % p:
            raise ValueError(f"latent size {height}x{width} is not divisible by the patch size {p}")
        return frames, height // p, width // p

    def num_tokens(self, frames: int, height: int, width: int) -> int:
        """Video tokens the DiT sees for a ``(t, h, w)`` latent (what the flow shift depends on)."""
        t, gh, gw = self.token_grid(frames, height, width)
        return t * gh * gw

    def is_sparse(self, index: int) -> bool:
        """Whether block ``index`` uses Skiparse attention."""
        return self.sparse_n > 1 and self.dense_first <= index < self.num_layers - self.dense_last

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> DiTConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"{source}: unknown DiT config key(s) {unknown}; known: {sorted(names)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["rope_scale"] = list(self.rope_scale)
        return data


def config_from_official(raw: dict[str, Any], source: str = "config.json") -> DiTConfig:
    """Map an ``OpenSoraT2V_v1_3`` diffusers config to :class:`DiTConfig` (table in the module docstring)."""
    known = {
        "num_attention_heads", "attention_head_dim", "in_channels", "out_channels", "num_layers",
        "caption_channels", "cross_attention_dim", "patch_size", "patch_size_t", "activation_fn",
        "attention_bias", "norm_eps", "norm_elementwise_affine", "interpolation_scale_t",
        "interpolation_scale_h", "interpolation_scale_w", "sparse1d", "sparse_n", "dropout",
        "only_cross_attention", "double_self_attention", "upcast_attention", "sample_size_h",
        "sample_size_w", "sample_size_t",
    }  # fmt: skip
    unknown = sorted(k for k in raw if k not in known and not k.startswith("_"))
    if unknown:
        raise ValueError(f"{source}: unsupported OpenSoraT2V_v1_3 config key(s) {unknown}")
    heads, head_dim = int(raw["num_attention_heads"]), int(raw["attention_head_dim"])
    requirements = {
        "cross_attention_dim": (raw.get("cross_attention_dim", heads * head_dim), heads * head_dim),
        "patch_size_t": (raw.get("patch_size_t", 1), 1),
        "activation_fn": (raw.get("activation_fn"), "gelu-approximate"),
        "norm_elementwise_affine": (raw.get("norm_elementwise_affine", False), False),
        "dropout": (float(raw.get("dropout", 0.0)), 0.0),
        "only_cross_attention": (raw.get("only_cross_attention", False), False),
        "double_self_attention": (raw.get("double_self_attention", False), False),
    }
    for key, (value, expected) in requirements.items():
        if value != expected:
            raise ValueError(f"{source}: {key}={value!r} is not supported; expected {expected!r}")
    in_channels = int(raw["in_channels"])
    num_layers = int(raw["num_layers"])
    return DiTConfig(
        in_channels=in_channels,
        out_channels=int(raw.get("out_channels") or in_channels),
        num_layers=num_layers,
        num_heads=heads,
        head_dim=head_dim,
        text_dim=int(raw["caption_channels"]),
        patch_size=int(raw["patch_size"]),
        attention_bias=bool(raw.get("attention_bias", True)),
        norm_eps=float(raw.get("norm_eps", 1e-6)),
        rope_scale=tuple(float(raw.get(f"interpolation_scale_{a}", 1.0)) for a in "thw"),  # type: ignore[arg-type]
        sparse_n=int(raw.get("sparse_n", 1)) if raw.get("sparse1d", False) else 1,
        dense_first=2,
        dense_last=max(0, num_layers - 30),
    )


def read_dit_config(path: str | Path) -> DiTConfig:
    """The :class:`DiTConfig` of a model folder, ours or official, from its ``config.json`` alone (no weights)."""
    raw = read_config(path)
    if raw.get("_class_name") == "OpenSoraT2V_v1_3" or "num_attention_heads" in raw:
        return config_from_official(raw, f"{path}/config.json")
    return DiTConfig.from_dict(raw, f"{path}/config.json")


def config_to_official(cfg: DiTConfig) -> dict[str, Any]:
    """The ``OpenSoraT2V_v1_3`` config of ``cfg``; ``ValueError`` if upstream cannot express it.

    Upstream fixes the Skiparse layout (blocks 2..29 sparse) and always ends with a 1e-6 LayerNorm.
    """
    if cfg.sparse_n > 1 and (cfg.dense_first, cfg.dense_last) != (2, max(0, cfg.num_layers - 30)):
        raise ValueError(
            f"dense_first={cfg.dense_first}, dense_last={cfg.dense_last}: the official model makes blocks "
            f"2..29 sparse, i.e. dense_first=2, dense_last={max(0, cfg.num_layers - 30)}"
        )
    if cfg.mlp_ratio != 4 or cfg.rope_base != 10000.0:
        raise ValueError(f"mlp_ratio={cfg.mlp_ratio}, rope_base={cfg.rope_base}: upstream fixes 4 and 10000")
    return {
        "_class_name": "OpenSoraT2V_v1_3",
        "num_attention_heads": cfg.num_heads,
        "attention_head_dim": cfg.head_dim,
        "in_channels": cfg.in_channels,
        "out_channels": cfg.out_channels,
        "num_layers": cfg.num_layers,
        "dropout": 0.0,
        "cross_attention_dim": cfg.hidden_size,
        "attention_bias": cfg.attention_bias,
        "patch_size": cfg.patch_size,
        "patch_size_t": 1,
        "activation_fn": "gelu-approximate",
        "only_cross_attention": False,
        "double_self_attention": False,
        "upcast_attention": False,
        "norm_elementwise_affine": False,
        "norm_eps": cfg.norm_eps,
        "caption_channels": cfg.text_dim,
        "interpolation_scale_t": cfg.rope_scale[0],
        "interpolation_scale_h": cfg.rope_scale[1],
        "interpolation_scale_w": cfg.rope_scale[2],
        "sparse1d": cfg.sparse_n > 1,
        "sparse_n": cfg.sparse_n,  # 1 keeps upstream's per-block mask lookup working for dense models
    }


# (official pattern, our replacement), tried in order; the inverse table serves export.
OFFICIAL_KEY_MAP: tuple[tuple[str, str], ...] = (
    (r"^pos_embed\.proj\.", "patch_embed."),
    (r"^caption_projection\.linear_1\.", "text_proj.0."),
    (r"^caption_projection\.linear_2\.", "text_proj.2."),
    (r"^adaln_single\.emb\.timestep_embedder\.linear_1\.", "time_embed.0."),
    (r"^adaln_single\.emb\.timestep_embedder\.linear_2\.", "time_embed.2."),
    (r"^adaln_single\.linear\.", "time_modulation."),
    (r"^scale_shift_table$", "final_modulation"),
    (r"^transformer_blocks\.(\d+)\.scale_shift_table$", r"blocks.\1.modulation"),
    (r"^transformer_blocks\.(\d+)\.attn1\.to_([qkv])\.", r"blocks.\1.self_attn.\2."),
    (r"^transformer_blocks\.(\d+)\.attn1\.to_out\.0\.", r"blocks.\1.self_attn.out."),
    (r"^transformer_blocks\.(\d+)\.attn2\.to_([qkv])\.", r"blocks.\1.cross_attn.\2."),
    (r"^transformer_blocks\.(\d+)\.attn2\.to_out\.0\.", r"blocks.\1.cross_attn.out."),
    (r"^transformer_blocks\.(\d+)\.ff\.net\.0\.proj\.", r"blocks.\1.mlp.fc1."),
    (r"^transformer_blocks\.(\d+)\.ff\.net\.2\.", r"blocks.\1.mlp.fc2."),
)
_OURS_TO_OFFICIAL: tuple[tuple[str, str], ...] = (
    (r"^patch_embed\.", "pos_embed.proj."),
    (r"^text_proj\.0\.", "caption_projection.linear_1."),
    (r"^text_proj\.2\.", "caption_projection.linear_2."),
    (r"^time_embed\.0\.", "adaln_single.emb.timestep_embedder.linear_1."),
    (r"^time_embed\.2\.", "adaln_single.emb.timestep_embedder.linear_2."),
    (r"^time_modulation\.", "adaln_single.linear."),
    (r"^final_modulation$", "scale_shift_table"),
    (r"^blocks\.(\d+)\.modulation$", r"transformer_blocks.\1.scale_shift_table"),
    (r"^blocks\.(\d+)\.self_attn\.([qkv])\.", r"transformer_blocks.\1.attn1.to_\2."),
    (r"^blocks\.(\d+)\.self_attn\.out\.", r"transformer_blocks.\1.attn1.to_out.0."),
    (r"^blocks\.(\d+)\.cross_attn\.([qkv])\.", r"transformer_blocks.\1.attn2.to_\2."),
    (r"^blocks\.(\d+)\.cross_attn\.out\.", r"transformer_blocks.\1.attn2.to_out.0."),
    (r"^blocks\.(\d+)\.mlp\.fc1\.", r"transformer_blocks.\1.ff.net.0.proj."),
    (r"^blocks\.(\d+)\.mlp\.fc2\.", r"transformer_blocks.\1.ff.net.2."),
)


def _rename(key: str, table: tuple[tuple[str, str], ...]) -> str:
    for pattern, replacement in table:
        new, count = re.subn(pattern, replacement, key)
        if count:
            return new
    return key  # left as is: the strict loader then names it as unexpected


def official_to_ours(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an ``OpenSoraT2V_v1_3`` state dict to our keys (unknown keys pass through unchanged)."""
    return {_rename(k, OFFICIAL_KEY_MAP): v for k, v in state_dict.items()}


def ours_to_official(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename our state dict to the official diffusers keys."""
    return {_rename(k, _OURS_TO_OFFICIAL): v for k, v in state_dict.items()}


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
    ) -> torch.Tensor:
        """Predict from noisy latents.

        Args:
            x: latents (B, C, T, H, W); H and W divisible by ``patch_size``.
            timestep: (B,) or a scalar, DDPM index in [0, 1000).
            text_states: (B, L, text_dim); the official (B, 1, L, text_dim) layout is accepted too.
            text_mask: (B, L) (or (B, 1, L)), true/1 = real token; None = all real.
            video_mask: (B, T, H, W) at latent resolution, 1 = valid; a patch is valid if any pixel is.
        Returns:
            (B, out_channels, T, H, W).
        """
        tokens, inputs = self.embed(x, timestep, text_states, text_mask, video_mask)
        tokens = self.run_blocks(tokens, inputs)
        return self.unembed(tokens, inputs)

    def embed(
        self,
        x: torch.Tensor,
        timestep: torch.Tensor | float,
        text_states: torch.Tensor,
        text_mask: torch.Tensor | None = None,
        video_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, BlockInputs]:
        """Latents -> patch tokens (B, S, D), and what every block sees beside them."""
        b, _, t, h, w = x.shape
        grid = self.config.token_grid(t, h, w)
        text_states, text_mask = self._check_text(text_states, text_mask, b)
        timestep = torch.as_tensor(timestep, device=x.device).reshape(-1)
        if timestep.numel() not in (1, b):
            raise ValueError(f"timestep has {timestep.numel()} values for a batch of {b}; expected 1 or {b}")
        timestep = timestep.expand(b)

        tokens = self.patch_embed(x.transpose(1, 2).flatten(0, 1))  # (B*T, D, H/p, W/p)
        tokens = tokens.flatten(2).transpose(1, 2).reshape(b, -1, self.config.hidden_size)  # (B, S, D)
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

    @classmethod
    def from_pretrained(cls, path: str | Path, dtype: torch.dtype | None = None) -> DiT:
        """Load our folder or an official ``OpenSoraT2V_v1_3`` folder (diffusers or ``.ckpt``), strictly."""
        config = read_dit_config(path)
        state_dict = read_state_dict(path)
        if any(k.startswith(("transformer_blocks.", "adaln_single.")) for k in state_dict):
            state_dict = official_to_ours(state_dict)
        return build_and_load(lambda: cls(config), state_dict, source=str(path), dtype=dtype)

    def save_pretrained(self, path: str | Path, dtype: torch.dtype | None = None) -> Path:
        """Write our folder: ``config.json`` (:class:`DiTConfig`) + ``model.safetensors``."""
        return save_model_folder(self, self.config.to_dict(), path, dtype=dtype)

    def save_official(self, path: str | Path, dtype: torch.dtype | None = None) -> Path:
        """Write an ``OpenSoraT2V_v1_3`` diffusers folder (for the upstream tools); see :func:`config_to_official`."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        config = config_to_official(self.config)
        tensors = {}
        for key, value in ours_to_official(dict(self.state_dict())).items():
            value = value.detach().cpu()
            tensors[key] = (value.to(dtype) if dtype is not None else value).contiguous()
        save_file(tensors, str(folder / OFFICIAL_WEIGHTS))
        (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        return folder
