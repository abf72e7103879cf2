"""Contact sheet: test eyes' photographs, their true angiograms and the videos generated from the photograph.

    .venv/bin/python scripts/bundled_model/photo_sheet.py DATASET --model pretrained --variant photo --n 3 \
        --out sheet.png

Rows per eye: the true video, the video from photograph + report, the video from the photograph alone; the
photograph heads each row. When the model has a photograph-guided refiner, the photograph + report video
appears twice: as the decoder returns it and refined (the refined one is what ``generate`` gives). Frames 3,
6, 12 and 20 of 21 (arterial to late).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ffasora.data.format import load_image, load_video, read_manifest
from ffasora.pipeline import FFASoraPipeline

FRAMES = (3, 6, 12, 20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--variant", default=None, help="a variant of the model folder, e.g. photo")
    parser.add_argument("--split", default="test")
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    pipe = FFASoraPipeline.from_pretrained(args.model, variant=args.variant)
    records = [r for r in read_manifest(args.dataset) if r.split == args.split and r.image][: args.n]
    rows = []
    for seed, record in enumerate(records):
        photo = load_image(args.dataset, record.id)
        decoded = pipe(record.report, seed=seed, image=photo, refine=False).frames
        videos = {"true FFA": load_video(args.dataset, record.id)}
        if pipe.refiner is not None:
            videos["photo + report, decoder only"] = decoded
            videos["photo + report, refined"] = pipe.refine(decoded, photo)
        else:
            videos["photo + report"] = decoded
        videos["photo only"] = pipe("", seed=seed, image=photo).frames
        for name, video in videos.items():
            tiles = [photo if name == "true FFA" else np.full_like(photo, 255)]
            tiles += [np.repeat(video[i][..., None], 3, -1) for i in FRAMES]
            row = Image.fromarray(np.concatenate(tiles, axis=1))
            ImageDraw.Draw(row).text(
                (photo.shape[1] + 4, 4), f"{record.primary_diagnosis}: {name}", fill=(255, 255, 0)
            )
            rows.append(np.asarray(row))
    Image.fromarray(np.concatenate(rows, axis=0)).save(args.out, optimize=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
