"""Privacy audit by retrieval (reference §6): can a generated video be traced to a training video?

Three numbers only mean something together:

- Recall@K of generated videos against the training gallery, the target being the training video of the
  report that produced them, beside its chance level K / |gallery|;
- the same Recall@K for *held-out real* videos, each targeting the training video whose findings are most
  alike: what a generator that draws new eyes with the right findings scores with a findings-aware
  embedding (the realistic floor, often above chance);
- a positive control: lightly altered training videos (gain, gamma, noise, a small shift) must be found
  (Recall@1 near 1), or a low Recall@K only shows a blind embedding.

Nearest-neighbour similarity of generated vs held-out real videos to the training set completes it: a
memorising generator shows a high tail above the held-out distribution (Dar et al. arXiv 2307.01148).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ffasora.evaluate.retrieval import chance_recall, nearest_similarity, recall_at_k

KS = (5, 10, 50)


def lightly_altered(clips: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """(N, 1, T, H, W) in [-1, 1] -> the same videos after a mild re-acquisition: gain, gamma, noise, and a
    shift of 1/64 of the frame (1 px at 64 px, 8 px at 512 px)."""
    g = torch.Generator().manual_seed(seed)
    n = clips.shape[0]
    gain = 0.9 + 0.2 * torch.rand(n, 1, 1, 1, 1, generator=g)
    gamma = 0.9 + 0.2 * torch.rand(n, 1, 1, 1, 1, generator=g)
    x = ((clips + 1) / 2).clamp(0, 1) ** gamma * gain
    x = x + 0.02 * torch.randn(x.shape, generator=g)
    shift = max(1, clips.shape[-1] // 64)
    x = torch.roll(x, shifts=(shift, -shift), dims=(-2, -1))
    return (x * 2 - 1).clamp(-1, 1)


def vessel_descriptor(clips: torch.Tensor, out: int = 32) -> np.ndarray:
    """(N, 1, T, H, W) -> (N, out*out) unit vectors describing each eye's vessel tree: the biometric.

    The retinal vessel pattern identifies a person the way a fingerprint does, while the findings do not:
    two patients with the same disease share findings, not vessels. A memorising generator copies a
    training eye's vessels; an honest one draws new ones. Vesselness (Sato ridge filter) on the mean of the
    venous-to-mid frames, where every vessel is filled, downsampled and standardised per video.
    """
    from skimage.filters import sato
    from skimage.transform import resize

    frames = clips[:, 0].double().numpy()
    t = frames.shape[1]
    rows = []
    for video in frames:
        filled = video[t // 2 + 1 : max(t // 2 + 2, t - 4)].mean(axis=0)
        ridges = sato(filled, sigmas=(1, 2), black_ridges=False)
        v = resize(ridges, (out, out), anti_aliasing=True).ravel()
        v = v - v.mean()
        rows.append(v / max(float(np.linalg.norm(v)), 1e-12))
    return np.asarray(rows)


def most_alike(codes: Sequence[Sequence[str]], gallery_codes: Sequence[Sequence[str]]) -> np.ndarray:
    """(Q,) index of the gallery item whose code set has the highest Jaccard overlap (first on ties)."""
    sets = [set(c) or {"NORMAL"} for c in gallery_codes]
    out = np.zeros(len(codes), dtype=np.int64)
    for i, query in enumerate(codes):
        q = set(query) or {"NORMAL"}
        out[i] = int(np.argmax([len(q & s) / len(q | s) for s in sets]))
    return out


def _p_above_chance(recall: dict[int, float], n: int, gallery_size: int) -> dict[int, float]:
    """One-sided binomial p-value of each Recall@K against chance K/|gallery| (small p: above chance)."""
    from scipy.stats import binomtest

    return {
        k: float(binomtest(round(r * n), n, min(1.0, k / gallery_size), alternative="greater").pvalue)
        for k, r in recall.items()
    }


def _quantiles(x: np.ndarray) -> dict[str, float]:
    if len(x) == 0:
        return {}
    return {
        "mean": float(np.mean(x)),
        "median": float(np.median(x)),
        "p95": float(np.quantile(x, 0.95)),
        "max": float(np.max(x)),
    }


def privacy_audit(
    gallery: np.ndarray,
    generated: np.ndarray,
    generated_targets: Sequence[int | None],
    heldout: np.ndarray,
    heldout_targets: Sequence[int] | np.ndarray,
    control: np.ndarray,
    ks: Sequence[int] = KS,
) -> dict[str, Any]:
    """All privacy numbers from embeddings (rows: videos) of the training gallery (G, D), generated videos
    (N, D) with their source gallery index (None when not generated from a training report), held-out real
    videos (M, D) with their most-alike gallery index, and the positive control (G', D): altered copies of
    the first G' gallery videos."""
    ks = tuple(k for k in ks if k <= len(gallery)) or (len(gallery),)
    out: dict[str, Any] = {
        "gallery_size": int(len(gallery)),
        "ks": list(ks),
        "chance": chance_recall(len(gallery), ks),
    }
    paired = [i for i, t in enumerate(generated_targets) if t is not None]
    if paired:
        targets = np.array([generated_targets[i] for i in paired])
        recall = recall_at_k(generated[paired], gallery, targets, ks)
        out["generated"] = {
            "n": len(paired),
            "recall": recall,
            "p_above_chance": _p_above_chance(recall, len(paired), len(gallery)),
        }
    if len(heldout):
        recall = recall_at_k(heldout, gallery, np.asarray(heldout_targets), ks)
        out["heldout_real"] = {
            "n": int(len(heldout)),
            "recall": recall,
            "p_above_chance": _p_above_chance(recall, int(len(heldout)), len(gallery)),
        }
    if len(control):
        found = recall_at_k(control, gallery, np.arange(len(control)), (1, *ks))
        # "found": nine in ten altered copies rank their original among the first K (smallest K asked)
        out["positive_control"] = {"n": int(len(control)), "recall": found, "found": found[ks[0]] >= 0.9}
    out["nearest_similarity"] = {
        "generated": _quantiles(nearest_similarity(generated, gallery)) if len(generated) else {},
        "heldout_real": _quantiles(nearest_similarity(heldout, gallery)) if len(heldout) else {},
    }
    if len(generated) and len(heldout):
        threshold = float(np.quantile(nearest_similarity(heldout, gallery), 0.99))
        out["nearest_similarity"]["flagged_above_heldout_p99"] = float(
            np.mean(nearest_similarity(generated, gallery) > threshold)
        )
    return out
