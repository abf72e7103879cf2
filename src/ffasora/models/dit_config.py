"""The DiT's configuration: everything that fixes its weights, and the token grid it sees for a latent."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


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
    # channels of the image-condition latent (a colour fundus photograph through the VAE, joined to every
    # video token at its position; DiT.image_embed); 0 = no image condition, the official t2v layout
    image_channels: int = 0

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
        if self.image_channels < 0:
            raise ValueError(f"DiTConfig.image_channels={self.image_channels}: expected >= 0")
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
        if not self.image_channels:  # a text-only model's config.json reads as before image conditioning
            del data["image_channels"]
        return data
