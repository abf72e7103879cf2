"""Official Open-Sora Plan v1.3 DiT checkpoints (``OpenSoraT2V_v1_3``) <-> ours: config, keys, saving.

``DiT.from_pretrained`` reads official folders (a diffusers folder, or ``config.json`` + ``.ckpt``) through
:func:`config_from_official` and :func:`official_to_ours`; ``DiT.save_official`` writes one back through
:func:`save_official`. Official config keys map to :class:`DiTConfig` as follows (anything else is rejected):

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

State-dict keys map one to one through :data:`KEY_TABLE`, the only table: the official -> ours direction
and its inverse are both derived from it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ffasora.models.dit_config import DiTConfig
from ffasora.models.pretrained import write_model_folder

CLASS_NAME = "OpenSoraT2V_v1_3"
OFFICIAL_WEIGHTS = "diffusion_pytorch_model.safetensors"

# (official, ours). ``{i}`` is a block index; a name ending in "." is a prefix (weight, bias, ...), any other
# is a whole key. Keys in neither column (``proj_out.*``) are the same in both.
KEY_TABLE: tuple[tuple[str, str], ...] = (
    ("pos_embed.proj.", "patch_embed."),
    ("caption_projection.linear_1.", "text_proj.0."),
    ("caption_projection.linear_2.", "text_proj.2."),
    ("adaln_single.emb.timestep_embedder.linear_1.", "time_embed.0."),
    ("adaln_single.emb.timestep_embedder.linear_2.", "time_embed.2."),
    ("adaln_single.linear.", "time_modulation."),
    ("scale_shift_table", "final_modulation"),
    ("transformer_blocks.{i}.scale_shift_table", "blocks.{i}.modulation"),
    *((f"transformer_blocks.{{i}}.attn1.to_{x}.", f"blocks.{{i}}.self_attn.{x}.") for x in "qkv"),
    ("transformer_blocks.{i}.attn1.to_out.0.", "blocks.{i}.self_attn.out."),
    *((f"transformer_blocks.{{i}}.attn2.to_{x}.", f"blocks.{{i}}.cross_attn.{x}.") for x in "qkv"),
    ("transformer_blocks.{i}.attn2.to_out.0.", "blocks.{i}.cross_attn.out."),
    ("transformer_blocks.{i}.ff.net.0.proj.", "blocks.{i}.mlp.fc1."),
    ("transformer_blocks.{i}.ff.net.2.", "blocks.{i}.mlp.fc2."),
)


def _rule(source: str, target: str) -> tuple[re.Pattern[str], str]:
    """A key-table row as (pattern matching ``source`` names, replacement giving the ``target`` name)."""
    pattern = re.escape(source).replace(re.escape("{i}"), r"(\d+)")
    exact = "" if source.endswith(".") else "$"
    return re.compile(f"^{pattern}{exact}"), target.replace("{i}", r"\1")


_TO_OURS = tuple(_rule(official, ours) for official, ours in KEY_TABLE)
_TO_OFFICIAL = tuple(_rule(ours, official) for official, ours in KEY_TABLE)


def _rename(key: str, rules: tuple[tuple[re.Pattern[str], str], ...]) -> str:
    for pattern, replacement in rules:
        new, count = pattern.subn(replacement, key)
        if count:
            return new
    return key  # left as is: the strict loader then names it as unexpected


def official_to_ours(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an ``OpenSoraT2V_v1_3`` state dict to our keys (unknown keys pass through unchanged)."""
    return {_rename(k, _TO_OURS): v for k, v in state_dict.items()}


def ours_to_official(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename our state dict to the official diffusers keys."""
    return {_rename(k, _TO_OFFICIAL): v for k, v in state_dict.items()}


def is_official_state_dict(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """Whether a state dict has the official key names (its blocks are ``transformer_blocks.*``)."""
    return any(k.startswith(("transformer_blocks.", "adaln_single.")) for k in state_dict)


def is_official_config(raw: Mapping[str, Any]) -> bool:
    return raw.get("_class_name") == CLASS_NAME or "num_attention_heads" in raw


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
    if cfg.image_channels:
        raise ValueError(
            f"image_channels={cfg.image_channels}: the text-to-video OpenSoraT2V_v1_3 layout has no image "
            "stream (docs/image-conditioning.md); save this model in ffasora's own layout"
        )
    return {
        "_class_name": CLASS_NAME,
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


def save_official(
    model: nn.Module, config: DiTConfig, path: str | Path, dtype: torch.dtype | None = None
) -> Path:
    """Write ``model`` as an ``OpenSoraT2V_v1_3`` diffusers folder (for the upstream tools), atomically per
    file; ``ValueError`` first if upstream cannot express ``config`` (:func:`config_to_official`)."""
    official_config = config_to_official(config)
    tensors = ours_to_official(dict(model.state_dict()))
    return write_model_folder(path, official_config, tensors, OFFICIAL_WEIGHTS, dtype=dtype)
