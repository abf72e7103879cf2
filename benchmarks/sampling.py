"""Wall time and DiT forwards per video: the teacher, the teacher with the step cache, and few-step students.

    .venv/bin/python benchmarks/sampling.py --student runs/distill/pipe --reports 4 --rounds 2

Every variant generates the same reports with the same seeds, interleaved round by round so that a busy machine
slows all of them alike; the table gives per-video means and each variant's ratio to the teacher. Quality
(findings F1, FVD-FFA, vessel measures) comes from ``ffasora evaluate`` on folders written by
``scripts/bundled_model/generate_split.py`` with the same settings (docs/sampling.md).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch

from ffasora.data.format import read_manifest
from ffasora.io.bundled import bundled_model
from ffasora.pipeline import FFASoraPipeline

REPORTS = [
    "Left eye: arm-to-retina time 13 s. During the arterial phase, numerous MAs are noted over the posterior pole."
    " Impression: left eye severe non-proliferative diabetic retinopathy.",
    "Right eye: in the venous phase, a leak point over the macula enlarges in the late phase. Impression: acute "
    "central serous chorioretinopathy.",
    "Left eye: normal filling of the choroid, arteries and veins; no leakage. Impression: normal angiogram.",
    "Right eye: delayed venous filling, flame haemorrhages block fluorescence, capillary non-perfusion in the "
    "temporal periphery. Impression: branch retinal vein occlusion.",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", type=Path, default=None, help="pipeline folder [bundled]")
    parser.add_argument("--student", type=Path, default=None, help="distilled pipeline folder (optional)")
    parser.add_argument("--cache", type=float, nargs="*", default=[0.1, 0.2], help="cache thresholds")
    parser.add_argument(
        "--dataset", type=Path, default=None, help="take reports from this dataset's test split"
    )
    parser.add_argument("--reports", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    teacher = FFASoraPipeline.from_pretrained(args.teacher or bundled_model())
    variants: list[tuple[str, FFASoraPipeline, dict[str, Any]]] = [("teacher", teacher, {})]
    variants += [(f"teacher, cache {t}", teacher, {"cache_threshold": t}) for t in args.cache]
    if args.student is not None:
        student = FFASoraPipeline.from_pretrained(args.student)
        variants += [(f"student, {n} steps", student, {"steps": n, "guidance": 1.0}) for n in (4, 2, 1)]
    reports = REPORTS
    if args.dataset is not None:
        reports = [r.report for r in read_manifest(args.dataset) if r.split == "test"]
    reports = (reports * args.reports)[: args.reports]

    seconds: dict[str, list[float]] = {name: [] for name, _, _ in variants}
    forwards: dict[str, list[int]] = {name: [] for name, _, _ in variants}
    teacher("warm-up.", seed=0, steps=1)  # first-call allocations out of the timings
    for _ in range(args.rounds):
        for seed, report in enumerate(reports):
            for name, pipe, options in variants:
                started = time.perf_counter()
                video = pipe(report, seed=seed, **options)
                seconds[name].append(time.perf_counter() - started)
                forwards[name].append(int(video.metadata["network_evaluations"]))

    base = sum(seconds["teacher"]) / len(seconds["teacher"])
    print(
        f"{len(reports)} reports x {args.rounds} rounds, {args.threads} thread(s), 21x128x128 unless the model says"
    )
    print("| variant | DiT forwards per video | s per video | speed-up vs teacher |")
    print("|---|---:|---:|---:|")
    for name, _, _ in variants:
        mean = sum(seconds[name]) / len(seconds[name])
        print(
            f"| {name} | {sum(forwards[name]) / len(forwards[name]):.1f} | {mean:.2f} | {base / mean:.2f}x |"
        )


if __name__ == "__main__":
    main()
