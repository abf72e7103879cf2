"""Contact sheet of generated videos beside the simulated videos of the same reports (docs/bundled-model.md).

    .venv/bin/python scripts/bundled_model/compare_sheet.py DATASET --model pretrained \
        --out docs/images/bundled_vs_simulated.png --n 8 --split test

Picks ``n`` videos of ``split`` with distinct diagnoses first, generates each report once (seed = its row
number) and draws the simulated clip above the generated one. Also writes the generated clips and a JSON of
per-video generation seconds next to the PNG (``<out>_videos/``) for the model card's timing table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from ffasora.data.format import VideoRecord, load_video, read_manifest
from ffasora.io.sheet import contact_sheet
from ffasora.pipeline import FFASoraPipeline


def pick(records: list[VideoRecord], n: int) -> list[VideoRecord]:
    """The first record of each diagnosis (manifest order), then the rest in order, ``n`` in all."""
    first: list[VideoRecord] = []
    rest: list[VideoRecord] = []
    seen: set[str | None] = set()
    for r in records:
        key = r.diagnoses[0].get("code") if r.diagnoses else "none"
        (rest if key in seen else first).append(r)
        seen.add(key)
    return (first + rest)[:n]


def frames_at(video: np.ndarray, k: int) -> np.ndarray:
    """``k`` evenly spaced frames of a (T, H, W) clip."""
    idx = np.linspace(0, len(video) - 1, k).round().astype(int)
    return video[idx]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--model", type=Path, default=Path("pretrained"))
    parser.add_argument("--out", type=Path, default=Path("docs/images/bundled_vs_simulated.png"))
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--split", default="test")
    parser.add_argument("--frames", type=int, default=7, help="frames per row")
    parser.add_argument("--steps", type=int, default=None)
    args = parser.parse_args()

    pipe = FFASoraPipeline.from_pretrained(args.model)
    records = [r for r in read_manifest(args.dataset) if r.split == args.split]
    rows: list[np.ndarray] = []
    labels: list[str] = []
    timings: list[dict[str, object]] = []
    videos = args.out.parent / f"{args.out.stem}_videos"
    for i, record in enumerate(pick(records, args.n)):
        started = time.perf_counter()
        out = pipe(record.report, seed=i, steps=args.steps)
        timings.append({"id": record.id, "seconds": round(time.perf_counter() - started, 2)})
        out.save(videos / f"{record.id}.mp4")
        real = load_video(args.dataset, record.id)
        short = record.report if len(record.report) < 160 else record.report[:157] + "..."
        rows += [frames_at(real, args.frames), frames_at(out.frames, args.frames)]
        labels += [f"{record.id} simulated: {short}", f"{record.id} generated (seed {i})"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(rows, labels, tile=128).save(args.out)
    (videos / "timings.json").write_text(json.dumps(timings, indent=2) + "\n")
    print(f"wrote {args.out}; generation seconds: {[t['seconds'] for t in timings]}")


if __name__ == "__main__":
    main()
