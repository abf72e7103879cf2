"""How a WF-VAE decode walks a clip: whole, in temporal chunks, in spatial tiles, or both.

The decoder is causal in time (:mod:`ffasora.models.causal`), so a clip can be decoded a few latent frames at
a time with a :class:`CausalCache` carrying the context: chunked == whole clip up to rounding, because every
norm is per position and the attention is per frame. Upstream WF-VAE only chunks in time, so the memory of one
chunk still grows with H x W; spatial tiles bound it by the tile size. The attention (in the decoder's
``head``) runs on whole frames, which is cheap at latent resolution; the convolutional rest runs tile by tile,
each tile with a halo of real context that is cropped away afterwards and blended linearly with its
neighbours. With a halo of at least :data:`TILE_HALO` every convolution sees its full receptive field, so
tiled == whole up to rounding (docs/vae.md).

A :class:`DecodeStrategy` is data: the pipeline reads it from its config and sets it on the VAE
(``vae.enable_tiling(...)``, ``vae.enable_chunking(...)``), in the spirit of diffusers' ``enable_tiling``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ffasora.models.causal import CausalCache
from ffasora.models.vae_arch import Decoder

# Spatial receptive radius of the decoder after ``mid``, in latent pixels: 4 convs at 1x (up2 blocks), the
# bilinear up-sampler and 3 convs at 2x, 4 convs at 2x (up1), 7 convs at 4x: 4 + 0.5 + 1.5 + 2 + 1.75 < 10;
# with margin. A halo this wide makes every tile's crop equal the whole-frame decode.
TILE_HALO = 12


@dataclass(frozen=True)
class DecodeStrategy:
    """``chunk``: latent frames per temporal chunk (None = whole clip; with chunks the 2x and 4x levels also run
    frame by frame: less memory, same result). ``tile``: spatial tile size in latent pixels (None = no tiling),
    decoded with ``tile_halo`` pixels of context and blended linearly over ``tile_overlap`` pixels."""

    chunk: int | None = None
    tile: int | None = None
    tile_overlap: int = 4
    tile_halo: int = TILE_HALO

    def __post_init__(self) -> None:
        if self.chunk is not None and self.chunk < 1:
            raise ValueError(f"decode chunk={self.chunk}: expected >= 1 latent frame")
        if self.tile is not None and not 0 <= self.tile_overlap < self.tile:
            raise ValueError(f"tile_overlap={self.tile_overlap} must be in [0, tile={self.tile})")
        if self.tile_halo < 0:
            raise ValueError(f"tile_halo={self.tile_halo}: expected >= 0")


def decode_in_pieces(
    decoder: Decoder,
    z: torch.Tensor,
    strategy: DecodeStrategy,
    scale: int,
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Latents (B, latent, t, h, w) -> pixels (B, n, 4(t-1)+1, scale*h, scale*w) as ``strategy`` says.

    The head runs once per chunk on whole frames. The rest then runs tile by tile, each tile through every
    chunk with its own causal cache, so only one tile's cache (the largest memory term at 512 x 512: two
    frames per convolution) is ever alive. ``progress(done, total)`` counts (tile, chunk) steps.
    """
    t, h, w = z.shape[2:]
    chunk = t if strategy.chunk is None else strategy.chunk
    head_cache, hidden = CausalCache(), []
    for start in range(0, t, chunk):
        head_cache.final = start + chunk >= t
        hidden.append(decoder.head(z[:, :, start : start + chunk], head_cache))
    windows = tile_windows(h, w, strategy.tile, strategy.tile_overlap)
    halo = strategy.tile_halo
    tiles: list[list[tuple[tuple[int, int], torch.Tensor]]] = [[] for _ in hidden]
    done, total = 0, len(windows) * len(hidden)
    for y0, x0, y1, x1 in windows:
        # `halo` latent pixels of real context on every side, cropped away after.
        ya, xa, yb, xb = max(0, y0 - halo), max(0, x0 - halo), min(h, y1 + halo), min(w, x1 + halo)
        dy, dx = (y0 - ya) * scale, (x0 - xa) * scale
        cache = CausalCache()
        for i, states in enumerate(hidden):
            cache.final = i == len(hidden) - 1
            part = _decode_tail(decoder, states[..., ya:yb, xa:xb], cache, frame_by_frame=chunk < t)
            crop = part[..., dy : dy + (y1 - y0) * scale, dx : dx + (x1 - x0) * scale]
            tiles[i].append(((y0 * scale, x0 * scale), crop))
            done += 1
            if progress is not None:
                progress(done, total)
    size = (h * scale, w * scale)
    chunks = [blend_tiles(parts, size, strategy.tile_overlap * scale) for parts in tiles]
    return chunks[0] if len(chunks) == 1 else torch.cat(chunks, dim=2)


def _decode_tail(
    decoder: Decoder, states: torch.Tensor, cache: CausalCache, frame_by_frame: bool
) -> torch.Tensor:
    """The decoder after its head; ``frame_by_frame`` runs the 2x and 4x levels one frame at a time, where one
    frame is the largest unit of memory (exact: the cache carries the context)."""
    h, l2, _ = decoder.coarse(states, cache)
    if not frame_by_frame or h.shape[2] <= 1:
        return decoder.fine(h, l2, cache)[0]
    # Copies, so that each frame's memory goes as soon as it is decoded (views would keep all of `h`).
    frames = [frame.clone() for frame in h.split(1, dim=2)]
    del h
    videos = []
    while frames:
        videos.append(decoder.fine(frames.pop(0), l2, cache)[0])
        l2 = l2[:, :, :0]  # handed over whole to the first frame; the decoder queues what it does not use
    return torch.cat(videos, dim=2)


def tile_windows(h: int, w: int, tile: int | None, overlap: int) -> list[tuple[int, int, int, int]]:
    """The kept region (y0, x0, y1, x1) of every tile in latent pixels; one window when not tiling."""
    if tile is None or (tile >= h and tile >= w):
        return [(0, 0, h, w)]
    return [
        (y0, x0, min(y0 + tile, h), min(x0 + tile, w))
        for y0 in tile_starts(h, tile, overlap)
        for x0 in tile_starts(w, tile, overlap)
    ]


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of length ``tile`` overlapping by ``overlap`` that cover ``[0, size)``."""
    if tile >= size:
        return [0]
    starts = list(range(0, size - tile, tile - overlap))
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
    if len(tiles) == 1:
        return tiles[0][1]
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
