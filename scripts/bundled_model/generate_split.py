"""Generate one video per report of a dataset split, for ``ffasora evaluate`` (docs/bundled-model.md).

    .venv/bin/python scripts/bundled_model/generate_split.py DATASET --model pretrained --out runs/gen_test \
        --split test --n 200

Each video is ``<out>/<id>.mp4`` with its provenance JSON, which also names ``source_id`` (the reference video
of the same report) so evaluation pairs them exactly, even for multi-line reports that a ``--batch`` file of
``ffasora generate`` cannot hold. Seeds are the row numbers; finished videos are skipped (resumable).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ffasora.data.format import read_manifest
from ffasora.pipeline import FFASoraPipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--model", type=Path, default=Path("pretrained"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument(
        "--variant", default=None, help="a variant the model folder lists (default: standard)"
    )
    parser.add_argument("--guidance", type=float, default=None, help="CFG scale [default: the pipeline's]")
    parser.add_argument("--cache", type=float, default=0.0, help="step-cache threshold (0 = off)")
    args = parser.parse_args()

    pipe = FFASoraPipeline.from_pretrained(args.model, variant=args.variant)
    records = [r for r in read_manifest(args.dataset) if r.split == args.split][: args.n]
    args.out.mkdir(parents=True, exist_ok=True)
    seconds = []
    for i, record in enumerate(records):
        path = args.out / f"{record.id}.mp4"
        if path.with_suffix(".json").is_file():
            continue
        started = time.perf_counter()
        video = pipe(
            record.report, seed=i, steps=args.steps, guidance=args.guidance, cache_threshold=args.cache
        )
        video.metadata["source_id"] = record.id
        video.save(path)
        seconds.append(time.perf_counter() - started)
        print(f"{i + 1}/{len(records)} {path.name} {seconds[-1]:.1f} s", flush=True)
    if seconds:
        videos = [p for p in args.out.glob("*.json") if p.with_suffix(".mp4").is_file()]  # not timing.json
        forwards = [json.loads(p.read_text())["network_evaluations"] for p in videos]
        summary = {
            "videos": len(seconds),
            "mean_seconds": sum(seconds) / len(seconds),
            "mean_network_evaluations": sum(forwards) / max(len(forwards), 1),
        }
        (args.out / "timing.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
