"""Videos per minute of ``ffasora prepare`` at 512x512, with 1 and 2 worker processes.

    .venv/bin/python benchmarks/prepare.py                       # 8 mp4 videos, 768x768 source, 31 frames
    .venv/bin/python benchmarks/prepare.py --n 16 --source 1024 --format frames --workers 1 2 4

Inputs are generated first (the corpus generator of tests/data/prepare_corpus.py: a circular field with a vessel
tree, dye kinetics and a burned-in label, irregular clinical times given in the index) and are not timed. Each
row prepares all of them into a fresh dataset folder: read, field detection, crop, resize, 21 frames by time,
vesselness, report scrubbing and the atomic write. Worker processes are spawned, so their start-up (importing
numpy, scipy, scikit-image, PyAV) is inside the time; it matters only for small runs.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "data"))

from prepare_corpus import angiogram, clinical_times, write_frames  # noqa: E402

from ffasora.data.prepare import PrepareConfig, prepare_dataset  # noqa: E402
from ffasora.data.standardise import to_uint8  # noqa: E402
from ffasora.io.video import write_mp4  # noqa: E402

REPORT = "Mr. John Smith, MRN 00123456. Microaneurysms at the posterior pole; late leakage; no NVD."


def make_inputs(root: Path, n: int, side: int, frames: int, fmt: str) -> Path:
    videos = root / "videos"
    rows = []
    for k in range(n):
        times = clinical_times(frames, seed=k)
        series = angiogram(times, h=side, w=side + side // 8, seed=k)
        if fmt == "mp4":
            write_mp4(to_uint8(series), videos / f"v{k}.mp4", lossless=True)
            name = f"v{k}.mp4"
        else:
            write_frames(videos / f"v{k}", series, times, ext=".png", sidecar=True)
            name = f"v{k}"
        times_text = ";".join(f"{t:.2f}" for t in times) if fmt == "mp4" else ""
        rows.append(
            {
                "video": name,
                "patient_id": f"P{k // 2}",
                "eye": ["OD", "OS"][k % 2],
                "report": REPORT,
                "frame_times": times_text,
            }
        )
    index = root / "index.csv"
    with open(index, "w", newline="") as f:
        table = csv.DictWriter(f, fieldnames=list(rows[0]))
        table.writeheader()
        table.writerows(rows)
    return index


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=8, help="videos")
    parser.add_argument("--source", type=int, default=768, help="source frame height in pixels")
    parser.add_argument("--source-frames", type=int, default=31)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--format", choices=("mp4", "frames"), default="mp4")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    cfg = PrepareConfig(size=args.size, frames=21, min_vessel_ratio=0.0)  # time every video, drop none
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        index = make_inputs(root, args.n, args.source, args.source_frames, args.format)
        print(
            f"{args.n} {args.format} videos, {args.source_frames} frames of {args.source}x{args.source + args.source // 8}"
            f" -> 21x{args.size}x{args.size}"
        )
        print(f"{'workers':>8} {'seconds':>9} {'videos/min':>11} {'s/video':>8}")
        for workers in args.workers:
            out = root / f"ds{workers}"
            start = time.perf_counter()
            summary = prepare_dataset(root / "videos", index, out, cfg, workers=workers)
            seconds = time.perf_counter() - start
            assert summary.counts["kept"] == args.n, summary.errors_path.read_text()
            print(f"{workers:>8} {seconds:>9.1f} {60 * args.n / seconds:>11.1f} {seconds / args.n:>8.2f}")
            shutil.rmtree(out)
            shutil.rmtree(out.with_name(out.name + ".private"))


if __name__ == "__main__":
    main()
