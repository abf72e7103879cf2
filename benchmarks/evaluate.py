"""Time `ffasora evaluate` on N videos of a simulated dataset (per stage), and `train-features` on its train split.

    .venv/bin/python benchmarks/evaluate.py --dataset DS [--n 200] [--epochs 12] [--size 64] [--frames 21]

The "generated" videos are the dataset's own videos (``--generated-split all``, first N), scored against its
test split; the encoder is trained first when DS/evaluate-encoder does not exist. Prints a table of seconds.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from ffasora.evaluate.encoder import EncoderConfig, TrainConfig
from ffasora.evaluate.features import train_features
from ffasora.evaluate.report import headline, write_report
from ffasora.evaluate.suite import EvaluateConfig, evaluate_videos


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--frames", type=int, default=21)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    encoder = args.dataset / "evaluate-encoder"
    rows = []
    if not (encoder / "config.json").is_file():
        start = time.perf_counter()
        result = train_features(
            args.dataset,
            encoder,
            EncoderConfig(frames=args.frames, size=args.size),
            TrainConfig(epochs=args.epochs),
        )
        rows.append(
            (
                "train-features",
                f"{time.perf_counter() - start:.1f}",
                f"{result['trained_on']['n_train']} videos",
            )
        )
    cfg = EvaluateConfig(split="test", generated_split="all", limit=args.n)
    start = time.perf_counter()
    evaluation = evaluate_videos(args.dataset, args.dataset, encoder, cfg)
    total = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as out:
        write_report(evaluation, out)
    protocol = evaluation.results["protocol"]
    for stage, seconds in protocol["seconds"].items():
        rows.append((f"evaluate: {stage}", f"{seconds:.1f}", ""))
    rows.append(("evaluate: total", f"{total:.1f}", f"{protocol['n_generated']} generated videos"))
    print(f"{'step':32s} {'seconds':>8s}  note")
    for step, seconds, note in rows:
        print(f"{step:32s} {seconds:>8s}  {note}")
    print()
    for metric, generated, compare in headline(evaluation.results):
        print(f"| {metric} | {generated} | {compare} |")


if __name__ == "__main__":
    main()
