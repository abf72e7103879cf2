"""Findings micro-F1 of a folder of generated videos, for quick checks between runs (docs/bundled-model.md).

    .venv/bin/python scripts/bundled_model/generate_split.py runs/sim2400 --model pretrained \
        --out runs/check-g4 --split val --n 48 --guidance 4
    .venv/bin/python scripts/bundled_model/findings_f1.py runs/check-g4 runs/sim2400 --encoder runs/eval_encoder

Truth is the finding codes of each video's source record (``source_id``, written by ``generate_split.py``);
predictions are the classifier's decisions. The same number ``ffasora evaluate`` reports, without the
rest of the suite, so a mid-run checkpoint or a guidance scale can be compared in under a minute.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

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
    args = parser.parse_args()

    records = {r.id: r for r in read_manifest(args.dataset)}
    model, _ = load_encoder(args.encoder)
    config = model.config
    items = load_generated(args.generated)
    missing = [i.name for i in items if i.source_id not in records]
    if missing:
        raise SystemExit(f"{args.generated}: no source record in {args.dataset} for {missing[:3]}")
    truth = multi_hot([records[str(i.source_id)].codes for i in items], config.codes)
    probs = run_encoder(model, stack_clips(items, config.frames, config.size))["findings"]
    scores = finding_scores(probs >= 0.5, truth, config.codes)
    if args.per_code:
        by_support = sorted(scores["per_code"].items(), key=lambda kv: -kv[1]["support"])
        for code, s in by_support:
            if s["support"]:
                print(
                    f"{code:24s} n={s['support']:3d}  P {s['precision']:.2f}  R {s['recall']:.2f}  F1 {s['f1']:.2f}"
                )
    print(json.dumps({"videos": len(items), **{k: round(v, 4) for k, v in scores["micro"].items()}}))


if __name__ == "__main__":
    main()
