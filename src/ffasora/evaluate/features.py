"""`train-features`: fit the in-domain encoder / findings classifier on a dataset's training split.

The model folder it writes (config.json + model.safetensors) records where it came from: dataset, split
sizes, epochs, seed, the loss curve, and the classifier's scores on the validation split.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ffasora.data.format import load_truth, read_info, read_manifest
from ffasora.evaluate.classifier import (
    choose_thresholds,
    finding_scores,
    multi_hot,
    onset_accuracy,
    onsets_from_truth,
)
from ffasora.evaluate.encoder import (
    EncoderConfig,
    TrainConfig,
    VideoEncoder,
    calibrate_findings,
    run_encoder,
    save_encoder,
    train_encoder,
)
from ffasora.evaluate.inputs import VideoItem, load_dataset_items, stack_clips

Stage = Callable[[str, int, int], None]


def item_onsets(root: str | Path, items: list[VideoItem]) -> list[dict[str, str]]:
    """Per item, code -> onset phase from its truth JSON ({} for cases without ground truth)."""
    out = []
    for item in items:
        try:
            _, truth = load_truth(root, item.name)
        except ValueError:
            truth = {}
        out.append(onsets_from_truth(truth))
    return out


def classifier_report(
    model: VideoEncoder, root: str | Path, items: list[VideoItem], calibrate: bool = False
) -> dict[str, Any]:
    """Finding P/R/F1 and onset accuracy of the classifier on real videos (the ceiling for generated ones).

    ``calibrate``: also choose per-code thresholds on these videos (``choose_thresholds``), move them into
    the model's findings head (``calibrate_findings``) and score with them; the scores at 0.5 before that
    are kept under ``uncalibrated``. Scores on the videos the thresholds were fitted to are optimistic: the
    ceiling that counts is the one ``ffasora evaluate`` measures on the test split.
    """
    cfg = model.config
    out = run_encoder(model, stack_clips(items, cfg.frames, cfg.size))
    truth = multi_hot([i.codes for i in items], cfg.codes)
    scores = finding_scores(out["findings"] >= 0.5, truth, cfg.codes)
    if calibrate:
        thresholds = choose_thresholds(out["findings"], truth)
        calibrate_findings(model, thresholds)
        uncalibrated = {k: scores[k] for k in ("micro", "macro", "exact_match")}
        scores = finding_scores(out["findings"] >= thresholds, truth, cfg.codes)
        scores["uncalibrated"] = uncalibrated
        scores["thresholds"] = {c: float(t) for c, t in zip(cfg.codes, thresholds, strict=True)}
    scores["onset_accuracy"] = onset_accuracy(out["onset"], item_onsets(root, items), cfg.codes, cfg.phases)
    return scores


def native_size(dataset: str | Path) -> int:
    """The frame side of a dataset (all videos share it in a finished dataset folder)."""
    records = read_manifest(dataset)
    if not records:
        raise ValueError(f"{dataset}: the manifest lists no videos")
    return int(max(records[0].height, records[0].width))


def train_features(
    dataset: str | Path,
    out: str | Path,
    config: EncoderConfig = EncoderConfig(),
    train: TrainConfig = TrainConfig(),
    limit: int | None = None,
    stage: Stage | None = None,
    calibrate: bool = True,
) -> dict[str, Any]:
    """Train the encoder on ``dataset``'s train split, score it on val (or test), save it to ``out``.

    ``calibrate``: choose per-code decision thresholds on the val split and fold them into the saved
    findings head (see ``classifier_report``); skipped when the dataset has no val split, since the test
    split must stay untouched for ``ffasora evaluate``.
    """
    start = time.perf_counter()

    def report(name: str) -> Callable[[int, int], None] | None:
        return (lambda done, total: stage(name, done, total)) if stage else None

    items = load_dataset_items(dataset, "train", limit, report("load train split"))
    codes_seen = sorted({c for i in items for c in i.codes})
    # the heads cover the codes the training split states; others cannot be learnt
    config = dataclasses.replace(
        config, codes=tuple(c for c in config.codes if c in codes_seen) or config.codes
    )
    clips = stack_clips(items, config.frames, config.size)
    model, losses = train_encoder(
        clips, [i.codes for i in items], item_onsets(dataset, items), config, train, report("train")
    )
    splits = {r.split for r in read_manifest(dataset)}
    holdout = "val" if "val" in splits else "test"
    held = load_dataset_items(dataset, holdout, limit) if holdout in splits else []
    scores = classifier_report(model, dataset, held, calibrate and holdout == "val") if held else None
    holdout_info: dict[str, Any] = {
        "split": holdout,
        "n": len(held),
        "micro_f1": scores["micro"]["f1"] if scores else None,
    }
    if scores and "thresholds" in scores:
        holdout_info["micro_f1_at_0.5"] = scores["uncalibrated"]["micro"]["f1"]
        holdout_info["thresholds"] = scores["thresholds"]
    provenance = {
        "trained_on": {
            "dataset": str(Path(dataset).resolve()),
            "created": read_info(dataset).get("created"),
            "n_train": len(items),
        },
        "training": {**dataclasses.asdict(train), "losses": [round(x, 5) for x in losses]},
        "holdout": holdout_info,
        "seconds": round(time.perf_counter() - start, 1),
    }
    save_encoder(model, out, provenance)
    return {
        "model": str(out),
        **provenance,
        "holdout_scores": scores,
        "final_loss": float(np.round(losses[-1], 5)),
    }
