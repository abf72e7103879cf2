"""Spatial tiling for WF-VAE decoding: overlapping tiles, blended with linear ramps.

Upstream WF-VAE only chunks in time, so the memory of one chunk still grows with H x W. Decoding spatial tiles
bounds it by the tile size. Each tile is decoded with a halo of real context that is cropped away afterwards;
when the halo covers the convolutions' receptive radius the crop is exact, and the only remaining difference
is the per-frame attention in ``mid``, which sees the tile plus halo instead of the whole frame. Linear
blending over the overlap hides what is left of the seams; docs/vae.md states the measured bound.
"""

from __future__ import annotations

import torch


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of length ``tile`` overlapping by ``overlap`` that cover ``[0, size)``."""
    if tile >= size:
        return [0]
    stride = tile - overlap
    starts = list(range(0, size - tile, stride))
    return starts + [size - tile]


def _ramp(length: int, overlap: int, left: bool, right: bool) -> torch.Tensor:
    """1-D weights: rise over ``overlap`` at an inner left edge, fall at an inner right edge."""
    w = torch.ones(length)
    if overlap > 0:
        ramp = (torch.arange(overlap, dtype=torch.float32) + 0.5) / overlap
        if left:
            w[:overlap] = torch.minimum(w[:overlap], ramp)
        if right:
            w[-overlap:] = torch.minimum(w[-overlap:], ramp.flip(0))
    return w


def blend_tiles(
    tiles: list[tuple[tuple[int, int], torch.Tensor]], size: tuple[int, int], overlap: int
) -> torch.Tensor:
    """Blend decoded tiles ((y0, x0), (B, C, T, th, tw)) into one (B, C, T, H, W) with weighted averaging."""
    (_, first) = tiles[0]
    b, c, t = first.shape[:3]
    out = first.new_zeros(b, c, t, *size)
    weight = first.new_zeros(size)
    for (y0, x0), part in tiles:
        th, tw = part.shape[-2:]
        wy = _ramp(th, overlap, y0 > 0, y0 + th < size[0])
        wx = _ramp(tw, overlap, x0 > 0, x0 + tw < size[1])
        w = torch.outer(wy, wx).to(part)
        out[..., y0 : y0 + th, x0 : x0 + tw] += part * w
        weight[y0 : y0 + th, x0 : x0 + tw] += w
    return out / weight
