"""Contact sheet of simulated colour fundus photographs beside their angiograms, one row per diagnosis.

OMP_NUM_THREADS=1 .venv/bin/python scripts/docs/cfp_sheet.py --out docs/images/cfp_vs_ffa.png
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image, ImageDraw

from ffasora.findings import DIAGNOSIS_CODES
from ffasora.simulate import simulate_case

FRAMES = (3, 6, 12, 20)  # of 21: arterial, arteriovenous, venous/recirculation, late


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True)
    ap.add_argument("--size", type=int, default=192, help="simulated size (px)")
    ap.add_argument("--tile", type=int, default=144, help="tile size in the sheet (px)")
    ap.add_argument("--seed", type=int, default=100)
    args = ap.parse_args()
    label_w, tile = 120, args.tile
    rows = []
    for k, dx in enumerate(DIAGNOSIS_CODES):
        case = simulate_case(args.seed + k, size=args.size, frames=21, diagnosis=dx, photo=True)
        assert case.photo is not None
        tiles = [case.photo] + [np.repeat(case.frames[i][..., None], 3, -1) for i in FRAMES]
        row = Image.new("RGB", (label_w + len(tiles) * (tile + 2), tile + 2), (255, 255, 255))
        draw = ImageDraw.Draw(row)
        draw.text((4, 4), f"{dx} ({case.eye})", fill=(0, 0, 0))
        codes = sorted({f.code for f in case.findings.present})
        for j in range(0, len(codes), 1):
            draw.text((4, 18 + 10 * j), codes[j][:19].lower(), fill=(90, 90, 90))
        for j, t in enumerate(tiles):
            im = Image.fromarray(t).resize((tile, tile), Image.Resampling.LANCZOS)
            row.paste(im, (label_w + j * (tile + 2), 1))
            if j:
                s = float(case.times_s[FRAMES[j - 1]])
                ImageDraw.Draw(row).text((label_w + j * (tile + 2) + 4, 4), f"{s:.0f} s", fill=(255, 255, 0))
        rows.append(row)
    head = Image.new("RGB", (rows[0].width, 16), (255, 255, 255))
    ImageDraw.Draw(head).text(
        (label_w + 4, 2),
        "colour photograph   |   FFA frames of the same eye (time after injection)",
        fill=(0, 0, 0),
    )
    sheet = Image.new("RGB", (rows[0].width, head.height + sum(r.height for r in rows)), (255, 255, 255))
    sheet.paste(head, (0, 0))
    y = head.height
    for r in rows:
        sheet.paste(r, (0, y))
        y += r.height
    sheet.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(args.out, optimize=True)
    print(f"wrote {args.out} ({sheet.width}x{sheet.height})")


if __name__ == "__main__":
    main()
