"""Privacy by retrieval: can a generated video be traced back to the training video of its report?

Recall@K (as in FFA Sora) counts a query as a hit when the gallery item it came from is among its K nearest
neighbours by cosine similarity. The number means nothing without its chance level K / |gallery| and a
positive control showing the embedding does find near-copies, so both travel with it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _normalise(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name}: expected (N, D) embeddings, got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.clip(norms, 1e-12, None)


def cosine_similarity(queries: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """(Q, G) cosine similarities."""
    q = _normalise(queries, "queries")
    g = _normalise(gallery, "gallery")
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"embedding sizes differ: queries {q.shape[1]} vs gallery {g.shape[1]}")
    return q @ g.T


def recall_at_k(
    queries: np.ndarray,
    gallery: np.ndarray,
    targets: Sequence[int] | np.ndarray,
    ks: Sequence[int] = (5, 10, 50),
) -> dict[int, float]:
    """Fraction of queries whose source gallery index ``targets[i]`` is among their top-K by cosine similarity.

    Ties are broken against the query (a target tied with others counts as ranked after them), so a
    degenerate embedding cannot score hits by accident.
    """
    sims = cosine_similarity(queries, gallery)
    targets = np.asarray(targets, dtype=np.int64)
    if targets.shape != (sims.shape[0],):
        raise ValueError(f"targets: expected {sims.shape[0]} indices, got shape {targets.shape}")
    if len(targets) and (targets.min() < 0 or targets.max() >= sims.shape[1]):
        raise ValueError(f"targets must index the gallery of {sims.shape[1]} items")
    target_sim = sims[np.arange(len(targets)), targets]
    # rank = number of gallery items at least as similar as the target, the target itself excluded
    rank = (sims >= target_sim[:, None]).sum(axis=1) - 1
    return {int(k): float(np.mean(rank < k)) for k in ks}


def chance_recall(gallery_size: int, ks: Sequence[int] = (5, 10, 50)) -> dict[int, float]:
    """Recall@K of a random ranking: K / |gallery|."""
    if gallery_size <= 0:
        raise ValueError("gallery must not be empty")
    return {int(k): min(1.0, k / gallery_size) for k in ks}


def nearest_similarity(queries: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """(Q,) similarity of each query to its nearest gallery item (memorisation shows as a high tail)."""
    return cosine_similarity(queries, gallery).max(axis=1)
