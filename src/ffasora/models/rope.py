"""Rotary position embedding over a (t, h, w) token grid (RoPE-3D of Open-Sora Plan v1.3).

Each attention head of size ``d`` is cut into three equal parts, one per axis (time, height, width). Every
part is rotated by ordinary 1-D RoPE (Su et al. 2021, arXiv 2104.09864, eq. 34) with the "rotate half"
pairing: feature ``i`` of a part is paired with feature ``i + d/6``, not with its neighbour. So ``d`` must be
a multiple of 6. Positions are ``index / interpolation_scale`` along each axis; there is no absolute position
embedding anywhere else in the DiT.
"""

from __future__ import annotations

import torch


def rope_tables(
    grid: tuple[int, int, int],
    head_dim: int,
    base: float = 10000.0,
    scale: tuple[float, float, float] = (1.0, 1.0, 1.0),
    device: torch.device | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine and sine tables for a (T, H, W) grid of tokens in (t, h, w) raster order.

    Returns ``(cos, sin)``, each (T*H*W, head_dim) float32. Computed in float32 whatever the model dtype:
    positions up to a few hundred times frequencies near 1 lose whole radians in bf16.
    """
    if head_dim % 6:
        raise ValueError(f"RoPE-3D needs a head size divisible by 6 (three even parts), got {head_dim}")
    part = head_dim // 3
    inv_freq = 1.0 / (base ** (torch.arange(0, part, 2, dtype=torch.float32, device=device) / part))
    axes = []
    for n, s in zip(grid, scale, strict=True):
        pos = torch.arange(n, dtype=torch.float32, device=device) / s
        angles = torch.outer(pos, inv_freq)  # (n, part/2)
        axes.append(torch.cat((angles, angles), dim=-1))  # (n, part): both halves share a frequency
    t, h, w = grid
    full = torch.cat(
        (
            axes[0][:, None, None, :].expand(t, h, w, part),
            axes[1][None, :, None, :].expand(t, h, w, part),
            axes[2][None, None, :, :].expand(t, h, w, part),
        ),
        dim=-1,
    ).reshape(t * h * w, head_dim)
    return full.cos(), full.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate queries or keys ``x`` (B, S, heads, head_dim) by the tables of :func:`rope_tables`."""
    halves = x.unflatten(-1, (3, 2, x.shape[-1] // 6))  # (..., axis, half, part/2)
    first, second = halves.unbind(-2)
    rotated = torch.stack((-second, first), dim=-2).flatten(-3)
    cos = cos.to(x.dtype)[None, :, None, :]
    sin = sin.to(x.dtype)[None, :, None, :]
    return x * cos + rotated * sin
