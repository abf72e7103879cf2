"""Paired PSNR / SSIM / vessel retention of photograph-conditioned generation on a simulated split.

    .venv/bin/python scripts/bundled_model/photo_eval.py DATASET --image-model runs/pipe_image \
        --report-model pretrained --split test --n 24 --out runs/photo_eval.json

Conditions per eye: ``report+image`` and ``image`` (and ``report``: the image model without the photograph)
from ``--image-model``, ``report (text-only model)`` from ``--report-model``, and the model-free baselines of
:mod:`ffasora.evaluate.photo`. Seeds are the eye's row number, the same for every condition. Prints a
markdown table and writes every row and the summary to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from ffasora.data.format import VideoRecord, read_manifest
from ffasora.evaluate.photo import evaluate_photo_generation, summarise
from ffasora.pipeline import FFASoraPipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--image-model", type=Path, required=True)
    parser.add_argument("--report-model", type=Path, default=None)
    parser.add_argument("--split", default="test")
    parser.add_argument("--n", type=int, default=24)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    image_pipe = FFASoraPipeline.from_pretrained(args.image_model)
    seeds = {r.id: i for i, r in enumerate(read_manifest(args.dataset))}
    seconds: dict[str, list[float]] = {}

    def timed(name: str, pipe: FFASoraPipeline, with_report: bool, with_image: bool) -> Any:
        def run(record: VideoRecord, photo: np.ndarray) -> np.ndarray:
            started = time.perf_counter()
            report = record.report if with_report else ""
            video = pipe(report, seed=seeds[record.id], steps=args.steps, image=photo if with_image else None)
            seconds.setdefault(name, []).append(time.perf_counter() - started)
            return video.frames

        return run

    generators = {
        "report+image": timed("report+image", image_pipe, True, True),
        "image": timed("image", image_pipe, False, True),
        "report (image model, no image)": timed("report (image model, no image)", image_pipe, True, False),
    }
    if args.report_model is not None:
        report_pipe = FFASoraPipeline.from_pretrained(args.report_model)
        generators["report (text-only model)"] = timed("report (text-only model)", report_pipe, True, False)

    def progress(done: int, total: int) -> None:
        print(f"{done}/{total} eyes", flush=True)

    rows = evaluate_photo_generation(
        args.dataset, generators, split=args.split, limit=args.n, progress=progress
    )
    table = summarise(rows)
    print("| condition | eyes | PSNR (dB) | SSIM | vessel retention | CPU s / video |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, entry in table.items():
        cells = [f"{entry[m][0]:.3f} ± {entry[m][1]:.3f}" for m in ("psnr", "ssim", "vessel_retention")]
        took = f"{np.median(seconds[name]):.1f}" if name in seconds else "-"
        print(f"| {name} | {entry['n']} | {' | '.join(cells)} | {took} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows, "summary": table, "seconds": seconds}, indent=1))


if __name__ == "__main__":
    main()
