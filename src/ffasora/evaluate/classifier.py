"""The findings classifier's outputs turned into findings and scored: video -> finding codes + onset phase.

The classifier is the findings head of the in-domain encoder (``encoder.py``), trained on the reference
training split; its scores on real held-out videos are the ceiling every generated-video number is read
against (reference §4.2 (a), simulator §6.9: a CheXpert/RadGraph-style finding-level score).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def onsets_from_truth(truth: Mapping[str, Any]) -> dict[str, str]:
    """code -> onset phase from a simulated case's truth JSON (``findings.present[*].onset_phase``)."""
    findings = truth.get("findings") or {}
    present = findings.get("present", []) if isinstance(findings, Mapping) else findings
    out: dict[str, str] = {}
    for finding in present or []:
        if isinstance(finding, Mapping) and finding.get("code") and finding.get("onset_phase"):
            out[str(finding["code"])] = str(finding["onset_phase"])
    return out


def multi_hot(codes: Sequence[Sequence[str]], names: Sequence[str]) -> np.ndarray:
    """(N, K) 0/1 matrix of which of ``names`` each item lists."""
    index = {c: i for i, c in enumerate(names)}
    y = np.zeros((len(codes), len(names)), dtype=bool)
    for n, present in enumerate(codes):
        for code in present:
            if code in index:
                y[n, index[code]] = True
    return y


def decode_findings(
    probs: np.ndarray,
    onset_probs: np.ndarray,
    names: Sequence[str],
    phases: Sequence[str],
    threshold: float = 0.5,
) -> list[list[tuple[str, str]]]:
    """Per video, the (code, most likely onset phase) pairs whose probability reaches ``threshold``.

    probs: (N, K); onset_probs: (N, K, P).
    """
    out = []
    for p, onset in zip(probs, onset_probs, strict=True):
        out.append([(names[int(k)], phases[int(onset[k].argmax())]) for k in np.flatnonzero(p >= threshold)])
    return out


def choose_thresholds(
    probs: np.ndarray,
    truth: np.ndarray,
    grid: Sequence[float] = tuple(np.round(np.arange(0.05, 0.96, 0.05), 2)),
    min_support: int = 3,
    rounds: int = 2,
) -> np.ndarray:
    """Per-code decision thresholds (K,) that maximise micro-F1 of (N, K) probabilities against (N, K) truth.

    Coordinate ascent from 0.5: each code in turn takes the grid value that gives the best pooled F1 with the
    other codes' thresholds held. A head trained with positive weights (``encoder.train_encoder``) says
    "present" too readily at 0.5 (high recall, low precision); thresholds chosen on held-out real videos fix
    that, as CheXpert-style labellers tune per-finding operating points. Codes with fewer than
    ``min_support`` positives keep 0.5: a threshold fitted to one or two cases says nothing.
    """
    probs, truth = np.asarray(probs, float), np.asarray(truth, bool)
    if probs.shape != truth.shape or probs.ndim != 2:
        raise ValueError(f"probabilities {probs.shape} and truth {truth.shape} must both be (N, K)")
    thresholds = np.full(probs.shape[1], 0.5)
    tunable = np.flatnonzero(truth.sum(0) >= min_support)
    predicted = probs >= thresholds
    tp, fp, fn = ((predicted & truth).sum(0), (predicted & ~truth).sum(0), (~predicted & truth).sum(0))
    for _ in range(rounds):
        for k in tunable:
            rest = np.array([tp.sum() - tp[k], fp.sum() - fp[k], fn.sum() - fn[k]], float)
            best = (-1.0, thresholds[k])
            for t in grid:
                pred = probs[:, k] >= t
                counts = np.array([(pred & truth[:, k]).sum(), (pred & ~truth[:, k]).sum(), 0.0])
                counts[2] = truth[:, k].sum() - counts[0]
                f1 = _prf(*(rest + counts))["f1"]
                # ties go to the threshold nearest 0.5 (the least fitted one)
                if f1 > best[0] + 1e-12 or (abs(f1 - best[0]) <= 1e-12 and abs(t - 0.5) < abs(best[1] - 0.5)):
                    best = (f1, float(t))
            thresholds[k] = best[1]
            pred = probs[:, k] >= thresholds[k]
            tp[k], fp[k] = (pred & truth[:, k]).sum(), (pred & ~truth[:, k]).sum()
            fn[k] = truth[:, k].sum() - tp[k]
    return thresholds


def _prf(tp: float, fp: float, fn: float) -> dict[str, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def finding_scores(
    predicted: np.ndarray, truth: np.ndarray, names: Sequence[str], min_support: int = 1
) -> dict[str, Any]:
    """Finding-level precision / recall / F1 of (N, K) boolean predictions against (N, K) truth.

    micro: pooled over all (video, code) pairs; macro: mean over codes with at least ``min_support`` positives
    in ``truth`` (codes never stated say nothing about recall); per_code: each code's own numbers and support.
    """
    predicted, truth = np.asarray(predicted, bool), np.asarray(truth, bool)
    if predicted.shape != truth.shape or predicted.shape[1] != len(names):
        raise ValueError(
            f"predictions {predicted.shape} and truth {truth.shape} must both be (N, {len(names)})"
        )
    tp = (predicted & truth).sum(0)
    fp = (predicted & ~truth).sum(0)
    fn = (~predicted & truth).sum(0)
    per_code = {
        name: {**_prf(tp[k], fp[k], fn[k]), "support": int(truth[:, k].sum())} for k, name in enumerate(names)
    }
    supported = [per_code[n] for n in names if per_code[n]["support"] >= min_support]
    macro = {
        m: float(np.mean([c[m] for c in supported])) if supported else 0.0
        for m in ("precision", "recall", "f1")
    }
    exact = float((predicted == truth).all(axis=1).mean()) if len(truth) else 0.0
    return {
        "micro": _prf(float(tp.sum()), float(fp.sum()), float(fn.sum())),
        "macro": macro,
        "exact_match": exact,
        "per_code": per_code,
        "n_videos": int(len(truth)),
    }


def onset_accuracy(
    onset_probs: np.ndarray,
    truth_onsets: Sequence[Mapping[str, str]],
    names: Sequence[str],
    phases: Sequence[str],
) -> float | None:
    """Fraction of (video, stated code with a known onset) where the predicted onset phase is right."""
    index = {c: i for i, c in enumerate(names)}
    hits, total = 0, 0
    for onset, truth in zip(onset_probs, truth_onsets, strict=True):
        for code, phase in truth.items():
            if code in index and phase in phases:
                total += 1
                hits += phases[int(onset[index[code]].argmax())] == phase
    return hits / total if total else None
