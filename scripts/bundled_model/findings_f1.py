"""Findings micro-F1 of a folder of generated videos, for quick checks between runs (docs/bundled-model.md).

    .venv/bin/python scripts/bundled_model/generate_split.py runs/sim2400 --model pretrained \
        --out runs/check-g4 --split val --n 48 --guidance 4
    .venv/bin/python scripts/bundled_model/findings_f1.py runs/check-g4 runs/sim2400 --encoder runs/eval_encoder

``--against BASE`` adds the paired difference to a second folder made from the same records; ``--also GEN BASE
--also-dataset DATASET`` pools the videos of another dataset (a second cohort of the same mix) into both sides.

Truth is the finding codes of each video's source record (``source_id``, written by ``generate_split.py``);
predictions are the classifier's decisions. The same number ``ffasora evaluate`` reports, without the
rest of the suite, so a mid-run checkpoint or a guidance scale can be compared in under a minute.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ffasora.data.format import read_manifest
from ffasora.evaluate.classifier import finding_scores, multi_hot
from ffasora.evaluate.encoder import load_encoder, run_encoder
from ffasora.evaluate.inputs import load_generated, stack_clips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("generated", type=Path)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--encoder", type=Path, required=True)
    parser.add_argument("--per-code", action="store_true", help="also print each code's F1, by support")
    parser.add_argument(
        "--against",
        type=Path,
        help="a second folder generated from the same source records (e.g. the base model): also print the "
        "paired difference of micro-F1 (this folder minus that one) with a bootstrap 95 %% interval over records",
    )
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for --against")
    parser.add_argument(
        "--also",
        nargs=2,
        action="append",
        default=[],
        metavar=("GENERATED", "AGAINST"),
        help="pool another dataset's videos (give it with --also-dataset, in the same order): this model's folder "
        "and the --against folder for it; repeatable",
    )
    parser.add_argument("--also-dataset", type=Path, action="append", default=[])
    args = parser.parse_args()
    if len(args.also) != len(args.also_dataset):
        raise SystemExit("give one --also-dataset per --also")

    model, _ = load_encoder(args.encoder)
    config = model.config

    def decisions(folder: Path, dataset: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Source ids (as DATASET/ID), truth and the classifier's decisions for one folder of generated videos."""
        records = {r.id: r for r in read_manifest(dataset)}
        items = load_generated(folder)
        missing = [i.name for i in items if i.source_id not in records]
        if missing:
            raise SystemExit(f"{folder}: no source record in {dataset} for {missing[:3]}")
        truth = multi_hot([records[str(i.source_id)].codes for i in items], config.codes)
        probs = run_encoder(model, stack_clips(items, config.frames, config.size))["findings"]
        return [f"{dataset.resolve()}/{i.source_id}" for i in items], truth, probs >= 0.5

    def pooled(folders: list[tuple[Path, Path]]) -> tuple[list[str], np.ndarray, np.ndarray]:
        """:func:`decisions` of several (folder, dataset) pairs, one after the other."""
        parts = [decisions(folder, dataset) for folder, dataset in folders]
        return (
            [i for p in parts for i in p[0]],
            np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]),
        )

    if args.also and args.against is None:
        raise SystemExit("--also needs --against")
    datasets = [args.dataset, *args.also_dataset]
    mine = [args.generated, *(Path(g) for g, _ in args.also)]
    ids, truth, predicted = pooled(list(zip(mine, datasets, strict=True)))
    scores = finding_scores(predicted, truth, config.codes)
    if args.per_code:
        by_support = sorted(scores["per_code"].items(), key=lambda kv: -kv[1]["support"])
        for code, s in by_support:
            if s["support"]:
                print(
                    f"{code:24s} n={s['support']:3d}  P {s['precision']:.2f}  R {s['recall']:.2f}  F1 {s['f1']:.2f}"
                )
    print(json.dumps({"videos": len(ids), **{k: round(v, 4) for k, v in scores["micro"].items()}}))
    if args.against is not None:
        theirs = [args.against, *(Path(a) for _, a in args.also)]
        other = pooled(list(zip(theirs, datasets, strict=True)))
        print(json.dumps(paired_difference(ids, truth, predicted, other, args.bootstrap)))


def micro_f1(predicted: np.ndarray, truth: np.ndarray) -> float:
    tp = float((predicted & truth).sum())
    return 2 * tp / max(float(predicted.sum() + truth.sum()), 1.0)


def paired_difference(
    ids: list[str],
    truth: np.ndarray,
    predicted: np.ndarray,
    other: tuple[list[str], np.ndarray, np.ndarray],
    resamples: int,
) -> dict[str, float | int]:
    """Micro-F1 of ``predicted`` minus ``other``'s on the records both folders have, with a bootstrap 95 %
    interval that resamples records (each record keeps its pair, so eye-to-eye variation cancels)."""
    other_ids, _, other_predicted = other
    where = {source: k for k, source in enumerate(other_ids)}
    common = [k for k, source in enumerate(ids) if source in where]
    if not common:
        raise SystemExit("--against: no source record in common")
    mine, theirs = predicted[common], other_predicted[[where[ids[k]] for k in common]]
    t = truth[common]
    rng = np.random.default_rng(0)
    draws = [
        micro_f1(mine[s], t[s]) - micro_f1(theirs[s], t[s])
        for s in (rng.integers(0, len(common), len(common)) for _ in range(resamples))
    ]
    low, high = np.percentile(draws, [2.5, 97.5])
    return {
        "paired_records": len(common),
        "f1_difference": round(micro_f1(mine, t) - micro_f1(theirs, t), 4),
        "ci95_low": round(float(low), 4),
        "ci95_high": round(float(high), 4),
    }


if __name__ == "__main__":
    main()
