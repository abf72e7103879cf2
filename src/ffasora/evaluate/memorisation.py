"""Memorisation audit: is a generated video a copy of a training video, and does the set sit too close to it?

Copy detection (Carlini et al. 2023, arXiv 2301.13188; Dar et al. 2024, arXiv 2307.01148, who found up to
20-42 % of small medical training sets memorised) calls a generated video a copy when its nearest training
video is more similar than a held-out real video's nearest training video almost ever is. The threshold is
the (1 - fpr) quantile of the held-out videos' nearest-neighbour similarity, so a fresh real eye is called a
copy at the stated false-positive rate; the rate actually reached is measured by cross-fitting (calibrate on
one half of the held-out videos, count flags on the other half).

Distance to closest record (DCR, SDMetrics' ``DCROverfittingProtection``): the share of generated videos
whose closest record, among the training videos and as many held-out ones, is a training video. A generator
that draws new eyes from the same population sits as close to held-out as to training videos (share 0.5);
one that memorises sits closer to its training set (share towards 1).

Everything here works on embeddings (rows: videos; cosine similarity), so any embedding serves: the
vessel-tree descriptor (anatomy: what identifies a patient) and the in-domain encoder (findings-aware).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import binomtest

from ffasora.evaluate.retrieval import cosine_similarity


def copy_threshold(heldout_similarity: np.ndarray, fpr: float) -> float:
    """The similarity above which at most ``fpr`` of held-out real videos lie: the (1 - fpr) quantile of
    their nearest-training-video similarities (the higher order statistic, so the rate is not exceeded on
    the calibration videos themselves)."""
    values = np.asarray(heldout_similarity, dtype=np.float64)
    if values.ndim != 1 or not len(values):
        raise ValueError(f"need at least one held-out similarity, got shape {values.shape}")
    if not 0.0 < fpr < 1.0:
        raise ValueError(f"fpr must be in (0, 1), got {fpr}")
    return float(np.quantile(values, 1.0 - fpr, method="higher"))


def _rate(flags: np.ndarray) -> dict[str, Any]:
    """A proportion with its exact (Clopper-Pearson) 95 % interval."""
    n, k = int(len(flags)), int(np.sum(flags))
    if not n:
        return {"rate": None, "n": 0}
    ci = binomtest(k, n).proportion_ci(0.95)
    return {"rate": k / n, "count": k, "n": n, "low": float(ci.low), "high": float(ci.high)}


def crossfit_false_positive_rate(heldout_similarity: np.ndarray, fpr: float, seed: int = 0) -> dict[str, Any]:
    """Flags among held-out videos not used to set the threshold: split them in two, calibrate on each half
    and count on the other. What a fresh eye's chance of being called a copy really is."""
    values = np.asarray(heldout_similarity, dtype=np.float64)
    if len(values) < 4:
        raise ValueError(
            f"need at least 4 held-out videos to check the false-positive rate, got {len(values)}"
        )
    order = np.random.default_rng(seed).permutation(len(values))
    halves = order[: len(order) // 2], order[len(order) // 2 :]
    flags = np.concatenate([values[b] > copy_threshold(values[a], fpr) for a, b in (halves, halves[::-1])])
    return _rate(flags)


def nearest(queries: np.ndarray, gallery: np.ndarray, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Indices (Q, k) and cosine similarities (Q, k) of each query's k most similar gallery items."""
    sims = cosine_similarity(queries, gallery)
    k = min(k, sims.shape[1])
    index = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return index, np.take_along_axis(sims, index, axis=1)


def copy_detection(
    gallery: np.ndarray,
    generated: np.ndarray,
    heldout: np.ndarray,
    fpr: float = 0.01,
    sources: list[int | None] | None = None,
    k: int = 3,
    seed: int = 0,
) -> dict[str, Any]:
    """Copies among generated videos (N, D) of a training gallery (G, D), the threshold set on held-out real
    videos (M, D) at false-positive rate ``fpr``.

    ``sources``: per generated video, the gallery index of the training video of its report (None when its
    report is not a training report); then "copied" also says how many of those source videos were copied.
    Returns the threshold, the generated videos' copy rate beside the held-out rate (cross-fitted), the share
    of training videos copied, and per generated video its k nearest training videos.
    """
    held_nn = cosine_similarity(heldout, gallery).max(axis=1)
    threshold = copy_threshold(held_nn, fpr)
    index, sims = nearest(generated, gallery, k)
    flagged = sims[:, 0] > threshold
    copied = sorted({int(i) for i in index[flagged, 0]})
    expected = (
        binomtest(int(flagged.sum()), len(flagged), fpr, alternative="greater") if len(flagged) else None
    )
    out: dict[str, Any] = {
        "fpr": fpr,
        "threshold": threshold,
        "n_gallery": int(len(gallery)),
        "n_heldout": int(len(heldout)),
        "heldout_flagged": crossfit_false_positive_rate(held_nn, fpr, seed),
        "generated_flagged": _rate(flagged),
        "p_above_fpr": float(expected.pvalue) if expected else None,
        "training_videos_copied": {"count": len(copied), "share_of_gallery": len(copied) / len(gallery)},
        "heldout_similarity": [float(s) for s in held_nn],
        "nearest": [
            {"index": [int(i) for i in row_i], "similarity": [float(s) for s in row_s], "copy": bool(f)}
            for row_i, row_s, f in zip(index, sims, flagged, strict=True)
        ],
    }
    if sources is not None:
        if len(sources) != len(generated):
            raise ValueError(f"sources: expected {len(generated)} entries, got {len(sources)}")
        used = {s for s in sources if s is not None}
        hit = {int(i) for i, f, s in zip(index[:, 0], flagged, sources, strict=True) if f and i == s}
        out["training_videos_copied"]["sources_used"] = len(used)
        out["training_videos_copied"]["own_source_copied"] = len(hit)
    return out


def dcr(
    gallery: np.ndarray, generated: np.ndarray, heldout: np.ndarray, rounds: int = 20, seed: int = 0
) -> dict[str, Any]:
    """Distance to closest record (1 - cosine) of generated videos to the training gallery, beside held-out real
    videos' own DCR, and the SDMetrics overfitting share: among the held-out videos plus an equally large
    random subset of the gallery (``rounds`` draws, averaged), how often a generated video's closest record is
    a training one (0.5: no closer to training than to fresh eyes; 1: every video hugs the training set)."""
    if len(heldout) > len(gallery):
        raise ValueError(
            f"the gallery ({len(gallery)}) must be at least as large as held-out ({len(heldout)})"
        )
    gen_train = cosine_similarity(generated, gallery)
    gen_held = cosine_similarity(generated, heldout).max(axis=1)
    rng = np.random.default_rng(seed)
    shares = []
    for _ in range(rounds):
        subset = rng.choice(len(gallery), len(heldout), replace=False)
        shares.append(float(np.mean(gen_train[:, subset].max(axis=1) > gen_held)))
    held_dcr = 1.0 - cosine_similarity(heldout, gallery).max(axis=1)
    gen_dcr = 1.0 - gen_train.max(axis=1)
    return {
        "generated": _summary(gen_dcr),
        "heldout_real": _summary(held_dcr),
        "closer_to_training_share": float(np.mean(shares)),
        "closer_to_training_share_range": [float(np.min(shares)), float(np.max(shares))],
        "rounds": rounds,
    }


def _summary(x: np.ndarray) -> dict[str, float]:
    return {
        "median": float(np.median(x)),
        "p5": float(np.quantile(x, 0.05)),
        "min": float(np.min(x)),
        "mean": float(np.mean(x)),
    }
