"""Utility of synthetic data: train the findings classifier on generated videos, test it on real ones.

TSTR (train on synthetic, test on real; Esteban et al. 2017, arXiv 1706.02633; Burlina et al., JAMA
Ophthalmology 2019 for retinal images) beside TRTR (the same classifier, recipe and budget trained on the real
videos of the same reports) and TRTS (the real-trained classifier tested on videos generated from held-out
reports, beside its score on the real videos of those reports). The TSTR/TRTR ratio says how much of the real
data's value the synthetic data carries; a learning curve over the number of synthetic videos, and synthetic
added to real, says whether more synthetic data helps.

The classifier is the in-domain encoder with its findings head (``encoder.train_encoder``: the recipe of
``ffasora evaluate train-features``), trained from scratch on each training set. Labels are the finding codes
of each video's report, for synthetic and real alike; the onset head is not trained (a generated video has no
ground-truth onset). Scores are threshold-free (AUROC) and at the fixed threshold 0.5 (F1), on the real test
split; confidence intervals resample test videos (the trained models held fixed).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from ffasora.evaluate.classifier import finding_scores, multi_hot
from ffasora.evaluate.encoder import EncoderConfig, TrainConfig, VideoEncoder, run_encoder, train_encoder
from ffasora.evaluate.inputs import VideoItem, stack_clips

Stage = Callable[[str, int, int], None]


@dataclass(frozen=True)
class UtilityConfig:
    """The one recipe and budget every classifier in the study is trained with."""

    frames: int = 21
    size: int = 64
    width: int = 16
    stages: int = 3
    epochs: int = 12
    batch_size: int = 16
    lr: float = 2e-3
    seed: int = 0
    threshold: float = 0.5
    min_support: int = (
        3  # per-code scores only for codes with this many positives (and negatives) in the test
    )
    bootstrap_rounds: int = 1000
    curve: tuple[int, ...] = ()  # numbers of synthetic videos for the learning curve (all of them is added)


def fit(
    items: Sequence[VideoItem], codes: Sequence[str], cfg: UtilityConfig, progress: Stage | None = None
) -> VideoEncoder:
    """The findings classifier trained on ``items`` (labels: their report codes) with ``cfg``'s recipe."""
    config = EncoderConfig(
        frames=cfg.frames, size=cfg.size, width=cfg.width, stages=cfg.stages, codes=tuple(codes)
    )
    train = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed)
    clips = stack_clips(items, cfg.frames, cfg.size)
    report = (lambda done, total: progress("train", done, total)) if progress else None
    model, _ = train_encoder(clips, [i.codes for i in items], [{} for _ in items], config, train, report)
    return model


def predict(model: VideoEncoder, items: Sequence[VideoItem]) -> np.ndarray:
    """(N, K) finding probabilities."""
    c = model.config
    return run_encoder(model, stack_clips(items, c.frames, c.size))["findings"]


def _auroc(probs: np.ndarray, truth: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    if truth.all() or not truth.any():
        return None
    return float(roc_auc_score(truth, probs))


def scores(
    probs: np.ndarray, truth: np.ndarray, names: Sequence[str], threshold: float = 0.5, min_support: int = 3
) -> dict[str, Any]:
    """Micro/macro F1 (at ``threshold``) and AUROC, and per code, of (N, K) probabilities against (N, K) truth.

    Macro averages run over the codes with at least ``min_support`` positives and as many negatives, the
    same codes for F1 and AUROC; micro AUROC pools every (video, code) pair of those codes.
    """
    probs, truth = np.asarray(probs, float), np.asarray(truth, bool)
    scored = [k for k in range(len(names)) if min(truth[:, k].sum(), (~truth[:, k]).sum()) >= min_support]
    f1 = finding_scores(probs[:, scored] >= threshold, truth[:, scored], [names[k] for k in scored])
    per_code = {
        names[k]: {
            "f1": f1["per_code"][names[k]]["f1"],
            "auroc": _auroc(probs[:, k], truth[:, k]),
            "support": int(truth[:, k].sum()),
        }
        for k in scored
    }
    aurocs = [v["auroc"] for v in per_code.values() if v["auroc"] is not None]
    return {
        "micro_f1": f1["micro"]["f1"],
        "macro_f1": f1["macro"]["f1"],
        "micro_auroc": _auroc(probs[:, scored].ravel(), truth[:, scored].ravel()) if scored else None,
        "macro_auroc": float(np.mean(aurocs)) if aurocs else None,
        "per_code": per_code,
        "n_videos": int(len(truth)),
    }


HEADLINE = ("micro_f1", "macro_f1", "micro_auroc", "macro_auroc")


def bootstrap_compare(
    probs_a: np.ndarray, probs_b: np.ndarray, truth: np.ndarray, names: Sequence[str], cfg: UtilityConfig
) -> dict[str, Any]:
    """Headline scores of two classifiers on the same test videos, and the ratio a / b, with percentile 95 %
    CIs from resampling test videos (paired: both classifiers see the same resample)."""
    rng = np.random.default_rng(cfg.seed)
    draws: dict[str, list[tuple[float, float]]] = {m: [] for m in HEADLINE}
    for _ in range(cfg.bootstrap_rounds):
        idx = rng.integers(0, len(truth), len(truth))
        a = scores(probs_a[idx], truth[idx], names, cfg.threshold, cfg.min_support)
        b = scores(probs_b[idx], truth[idx], names, cfg.threshold, cfg.min_support)
        for m in HEADLINE:
            if a[m] is not None and b[m] is not None:
                draws[m].append((a[m], b[m]))
    full_a = scores(probs_a, truth, names, cfg.threshold, cfg.min_support)
    full_b = scores(probs_b, truth, names, cfg.threshold, cfg.min_support)
    out: dict[str, Any] = {}
    for m in HEADLINE:
        d = np.array(draws[m]).reshape(-1, 2)
        ratio = d[:, 0] / np.clip(d[:, 1], 1e-12, None)
        va, vb = full_a[m], full_b[m]
        out[m] = {
            "a": _ci(va, d[:, 0]),
            "b": _ci(vb, d[:, 1]),
            "ratio": _ci(va / vb if va is not None and vb else None, ratio),
        }
    return out


def _ci(value: float | None, draws: np.ndarray) -> dict[str, float | None]:
    if value is None or not len(draws):
        return {"value": value, "low": None, "high": None}
    return {"value": value, "low": float(np.quantile(draws, 0.025)), "high": float(np.quantile(draws, 0.975))}


def utility_study(
    real_train: Sequence[VideoItem],
    synthetic: Sequence[VideoItem],
    real_test: Sequence[VideoItem],
    cfg: UtilityConfig = UtilityConfig(),
    synthetic_test: Sequence[VideoItem] = (),
    synthetic_test_sources: Sequence[VideoItem] = (),
    stage: Stage | None = None,
) -> dict[str, Any]:
    """TRTR, TSTR (and TRTS when videos generated from test reports are given with their real sources), the
    TSTR/TRTR ratio, and the learning curve: TSTR and TRTR on the first n videos of each set for each n of
    ``cfg.curve``, and real + the first n synthetic against real alone.

    ``real_train`` and ``synthetic`` should hold the same reports (the real video and the one generated from
    its report) so that the two training sets differ in their pixels only.
    """
    if not real_train or not synthetic or not real_test:
        raise ValueError(
            f"need real training, synthetic and real test videos, got {len(real_train)}, {len(synthetic)}, "
            f"{len(real_test)}"
        )
    if len(synthetic_test) != len(synthetic_test_sources):
        raise ValueError("each video generated from a test report needs its real source video")
    codes = sorted({c for item in (*real_train, *synthetic) for c in item.codes})
    if not codes:
        raise ValueError("the training videos state no finding codes: nothing to learn")
    truth = multi_hot([i.codes for i in real_test], codes)
    runs: dict[str, np.ndarray] = {}

    def run(name: str, items: Sequence[VideoItem]) -> np.ndarray:
        def progress(what: str, done: int, total: int) -> None:
            if stage:
                stage(f"{name} ({len(items)} videos): {what}", done, total)

        torch.manual_seed(cfg.seed)
        model = fit(items, codes, cfg, progress)
        runs[name] = predict(model, real_test)
        if name == "TRTR" and synthetic_test:
            runs["TRTS"] = predict(model, synthetic_test)
            runs["TRTR on TRTS sources"] = predict(model, synthetic_test_sources)
        return runs[name]

    trtr, tstr = run("TRTR", real_train), run("TSTR", synthetic)
    result: dict[str, Any] = {
        "codes": codes,
        "n": {"real_train": len(real_train), "synthetic": len(synthetic), "real_test": len(real_test)},
        "TRTR": scores(trtr, truth, codes, cfg.threshold, cfg.min_support),
        "TSTR": scores(tstr, truth, codes, cfg.threshold, cfg.min_support),
        "TSTR_vs_TRTR": bootstrap_compare(tstr, trtr, truth, codes, cfg),
    }
    if synthetic_test:
        sub = multi_hot([i.codes for i in synthetic_test], codes)
        result["TRTS"] = {
            "synthetic": scores(runs["TRTS"], sub, codes, cfg.threshold, cfg.min_support),
            "real_same_reports": scores(
                runs["TRTR on TRTS sources"], sub, codes, cfg.threshold, cfg.min_support
            ),
        }
    curve = []
    for n in sorted({n for n in cfg.curve if 0 < n < len(synthetic)}):
        row: dict[str, Any] = {"n": n}
        for name, items in (("TSTR", synthetic[:n]), ("TRTR", real_train[:n])):
            row[name] = scores(run(f"{name}@{n}", items), truth, codes, cfg.threshold, cfg.min_support)
        curve.append(row)
    curve.append({"n": len(synthetic), "TSTR": result["TSTR"], "TRTR": result["TRTR"]})
    result["learning_curve"] = curve
    mixed = []
    for n in sorted({*(n for n in cfg.curve if 0 < n < len(synthetic)), len(synthetic)}):
        probs = run(f"real+synthetic@{n}", [*real_train, *synthetic[:n]])
        mixed.append(
            {"n_synthetic": n, "scores": scores(probs, truth, codes, cfg.threshold, cfg.min_support)}
        )
    result["real_plus_synthetic"] = {
        "real_alone": result["TRTR"],
        "added": mixed,
        "largest_vs_real": bootstrap_compare(
            runs[f"real+synthetic@{len(synthetic)}"], trtr, truth, codes, cfg
        ),
    }
    result["protocol"] = {
        "config": asdict(cfg),
        "classifier": "in-domain encoder + findings head (encoder.train_encoder), trained from scratch per set",
        "labels": "finding codes of each video's report; onset head untrained",
        "ci": f"percentile bootstrap over the {len(real_test)} real test videos, {cfg.bootstrap_rounds} rounds, paired",
    }
    return result
