"""Contact sheets: a grid of cases x frames as one PNG, with a caption per row and a label under each frame."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# FFA is grey, so the sheet is a one-channel ("L") image: a third of the size of RGB as PNG.
BACKGROUND = 18
CAPTION = 235
FRAME_LABEL = 170


def contact_sheet(
    rows: Sequence[np.ndarray],
    row_labels: Sequence[str] | None = None,
    frame_labels: Sequence[Sequence[str]] | None = None,
    *,
    tile: int | None = None,
    title: str | None = None,
    gap: int = 4,
    font_size: int | None = None,
) -> Image.Image:
    """A grid image with one row per case.

    rows: per case, (T, H, W) uint8 grey frames (rows may differ in T; frames are resized to ``tile`` px wide,
        default: the first row's width). row_labels: per case a caption drawn above the row (wrapped to the
        sheet's width; newlines start new lines). frame_labels: per case, one short label per frame drawn
        under it (e.g. "12.4 s"). Returns a grey ("L") ``PIL.Image``.
    """
    if not rows:
        raise ValueError("contact_sheet: no rows given")
    for i, frames in enumerate(rows):
        if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim != 3:
            raise ValueError(
                f"contact_sheet: row {i} must be (T, H, W) uint8, got {getattr(frames, 'shape', None)}"
            )
    for name, labels in (("row_labels", row_labels), ("frame_labels", frame_labels)):
        if labels is not None and len(labels) != len(rows):
            raise ValueError(f"contact_sheet: {len(labels)} {name} for {len(rows)} rows")
    tile_w = tile or rows[0].shape[2]
    tile_h = max(int(round(tile_w * f.shape[1] / f.shape[2])) for f in rows)
    size = font_size or max(11, min(22, tile_w // 9))
    font = ImageFont.load_default(size=size)
    small = ImageFont.load_default(size=max(10, size - 2))
    line_h = size + 4
    ncols = max(len(f) for f in rows)
    width = gap + ncols * (tile_w + gap)
    chars = max(20, int(width / max(font.getlength("n"), 1)) - 2)

    captions = [_wrap(row_labels[i] if row_labels else "", chars) for i in range(len(rows))]
    label_h = (size + 2) if frame_labels is not None else 0
    title_h = line_h + gap if title else 0
    heights = [len(c) * line_h + gap + tile_h + label_h + 2 * gap for c in captions]
    sheet = Image.new("L", (width, title_h + gap + sum(heights)), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    y = gap
    if title:
        draw.text((gap, y), title, fill=CAPTION, font=font)
        y += title_h
    for i, frames in enumerate(rows):
        for line in captions[i]:
            draw.text((gap, y), line, fill=CAPTION, font=font)
            y += line_h
        y += gap // 2
        for j, frame in enumerate(frames):
            x = gap + j * (tile_w + gap)
            h = int(round(tile_w * frame.shape[0] / frame.shape[1]))
            image = Image.fromarray(frame, mode="L")
            if image.size != (tile_w, h):
                image = image.resize((tile_w, h), Image.Resampling.LANCZOS)
            sheet.paste(image, (x, y))
            if frame_labels is not None and j < len(frame_labels[i]):
                text = str(frame_labels[i][j])
                tx = x + (tile_w - small.getlength(text)) / 2
                draw.text((tx, y + tile_h + 1), text, fill=FRAME_LABEL, font=small)
        y += tile_h + label_h + gap + gap // 2 + gap
    return sheet


def _wrap(text: str, chars: int) -> list[str]:
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        lines.extend(textwrap.wrap(paragraph, chars, break_on_hyphens=False) or [""])
    return lines if text else []
