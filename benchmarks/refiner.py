"""Wall time of the photograph-guided refiner beside the photo variant's own generation, in one run.

    .venv/bin/python benchmarks/refiner.py --eyes 3 --rounds 2 --threads 1

Simulates ``--eyes`` eyes with photographs (128 px, 21 frames), generates each from its photograph and report
with the bundled ``photo`` variant without the refiner, then refines the same video; rounds interleave the two
so a busy machine slows both alike. Prints per-video means and the refiner's share of the whole.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from ffasora.data.build import SimulateConfig, simulate_dataset
from ffasora.data.format import load_image, read_manifest
from ffasora.io.bundled import bundled_model
from ffasora.pipeline import FFASoraPipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="pipeline folder [bundled]")
    parser.add_argument("--variant", default="photo")
    parser.add_argument("--eyes", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipe = FFASoraPipeline.from_pretrained(args.model or bundled_model(), variant=args.variant)
    if pipe.refiner is None:
        raise SystemExit(f"variant {args.variant!r} has no refiner")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "eyes"
        simulate_dataset(root, SimulateConfig(n=args.eyes, size=128, frames=21, seed=11))
        eyes = [(r.report, load_image(root, r.id)) for r in read_manifest(root)]
    generate, refine = [], []
    for _ in range(args.rounds):
        for seed, (report, photo) in enumerate(eyes):
            started = time.perf_counter()
            frames = pipe(report, seed=seed, image=photo, refine=False).frames
            generate.append(time.perf_counter() - started)
            started = time.perf_counter()
            pipe.refine(frames, photo)
            refine.append(time.perf_counter() - started)
    g, r = sum(generate) / len(generate), sum(refine) / len(refine)
    print(f"| step | s / video ({args.threads} thread(s), {len(generate)} videos) |")
    print("| --- | --- |")
    print(f"| photo variant, DiT + VAE decode | {g:.2f} |")
    print(f"| refiner | {r:.2f} ({r / (g + r):.0%} of the whole) |")


if __name__ == "__main__":
    main()
