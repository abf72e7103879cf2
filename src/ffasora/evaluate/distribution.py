"""Distances between two sets of video features: Fréchet distance, kernel distance, and their uncertainty.

FVD (Unterthiner et al., arXiv 1812.01717) is the Fréchet distance between Gaussians fitted to I3D features
of real and generated clips. FFA test sets are small (hundreds of videos) while features have hundreds of
dimensions, so the covariances are often singular: the trace of the matrix square root is taken from the
eigenvalues of the symmetric product S1^1/2 S2 S1^1/2 (``eigh``, float64), which stays finite and exact where
``scipy.linalg.sqrtm`` breaks down. The estimate is biased upwards roughly like 1/N, which is why every
number is reported beside a real-vs-real floor computed with the same sample size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


def _as_features(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name}: expected an (N, D) feature array, got shape {x.shape}")
    if x.shape[0] < 2:
        raise ValueError(f"{name}: need at least 2 samples to estimate a covariance, got {x.shape[0]}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name}: features contain NaN or infinity")
    return x


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) (divides by N - 1) in float64."""
    x = _as_features(features, "features")
    return x.mean(axis=0), np.cov(x, rowvar=False, ddof=1).reshape(x.shape[1], x.shape[1])


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    eigvals, eigvecs = np.linalg.eigh((matrix + matrix.T) / 2)
    return (eigvecs * np.sqrt(np.clip(eigvals, 0.0, None))) @ eigvecs.T


def frechet_distance_from_stats(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^1/2), with Tr (S1 S2)^1/2 = sum sqrt(eig(S1^1/2 S2 S1^1/2))."""
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"feature dimensions differ: {mu1.shape} vs {mu2.shape}")
    root1 = _psd_sqrt(sigma1)
    middle = root1 @ sigma2 @ root1
    eigvals = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_sqrt = float(np.sqrt(np.clip(eigvals, 0.0, None)).sum())
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt)


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two (N, D) feature sets (FVD when features are I3D's)."""
    a = _as_features(feats_a, "feats_a")
    b = _as_features(feats_b, "feats_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: {a.shape[1]} vs {b.shape[1]}")
    return frechet_distance_from_stats(*gaussian_stats(a), *gaussian_stats(b))


def kernel_distance(feats_a: np.ndarray, feats_b: np.ndarray, degree: int = 3, coef0: float = 1.0) -> float:
    """Unbiased squared MMD with the polynomial kernel (x.y / D + coef0)^degree (KID/KVD, Binkowski et al. 2018)."""
    a = _as_features(feats_a, "feats_a")
    b = _as_features(feats_b, "feats_b")
    dim = a.shape[1]

    def kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return (x @ y.T / dim + coef0) ** degree

    kaa, kbb, kab = kernel(a, a), kernel(b, b), kernel(a, b)
    n, m = len(a), len(b)
    term_a = (kaa.sum() - np.trace(kaa)) / (n * (n - 1))
    term_b = (kbb.sum() - np.trace(kbb)) / (m * (m - 1))
    return float(term_a + term_b - 2.0 * kab.mean())


@dataclass(frozen=True)
class Estimate:
    """A distance with a bootstrap confidence interval and the sample sizes behind it."""

    value: float
    low: float
    high: float
    n_a: int
    n_b: int
    warning: str | None = None


def bootstrap(
    metric: Callable[[np.ndarray, np.ndarray], float],
    feats_a: np.ndarray,
    feats_b: np.ndarray,
    rounds: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Bias-corrected percentile bootstrap over videos (both sets resampled with replacement).

    Resampling with replacement duplicates videos, which shrinks the fitted covariances and pushes every
    resampled Fréchet distance up: the plain percentile interval would sit above the point estimate (for two
    identical sets: 0 with an interval far from 0). The interval is therefore shifted by the bootstrap bias,
    mean(resampled) - estimate, so it measures the spread of the estimate around its own value.
    """
    a = _as_features(feats_a, "feats_a")
    b = _as_features(feats_b, "feats_b")
    rng = np.random.default_rng(seed)
    values = np.array(
        [
            metric(a[rng.integers(0, len(a), len(a))], b[rng.integers(0, len(b), len(b))])
            for _ in range(rounds)
        ]
    )
    value = metric(a, b)
    bias = float(values.mean()) - value
    tail = (1.0 - confidence) / 2.0
    return Estimate(
        value=value,
        low=float(np.quantile(values, tail)) - bias,
        high=float(np.quantile(values, 1.0 - tail)) - bias,
        n_a=len(a),
        n_b=len(b),
        warning=sample_size_warning(len(a), len(b), a.shape[1]),
    )


def sample_size_warning(n_a: int, n_b: int, dim: int) -> str | None:
    """A plain-words warning when the sample is too small for a stable Fréchet distance."""
    n = min(n_a, n_b)
    if n <= dim:
        return (
            f"only {n} samples for {dim}-dimensional features: covariances are singular and the distance is "
            "strongly biased upwards; compare only with a real-vs-real floor of the same size"
        )
    if n < 5 * dim:
        return f"{n} samples for {dim} dimensions: expect a sizeable upward bias; compare with the real-vs-real floor"
    return None


def real_vs_real_floor(
    reference: np.ndarray,
    size: int | None = None,
    metric: Callable[[np.ndarray, np.ndarray], float] = frechet_distance,
    rounds: int = 10,
    seed: int = 0,
    pool: np.ndarray | None = None,
) -> Estimate:
    """The metric real videos score against the reference: the best a generator can hope for.

    With a ``pool`` of other real videos (the training split), each round scores ``size`` pool videos
    against the whole reference set: exactly the sample sizes of a generated set of ``size`` videos, so the
    floor carries the same small-sample bias as the number it is compared with. Without a pool, two disjoint
    random halves of the reference of ``size`` each (default half the reference) are compared.
    """
    x = _as_features(reference, "reference")
    rng = np.random.default_rng(seed)
    values = []
    if pool is not None:
        p = _as_features(pool, "pool")
        n = size or len(x)
        if n > len(p):
            raise ValueError(f"pool has {len(p)} samples; a floor at size {n} needs at least that many")
        for _ in range(rounds):
            values.append(metric(p[rng.permutation(len(p))[:n]], x))
        n_a, n_b = n, len(x)
    else:
        half = size or len(x) // 2
        if 2 * half > len(x):
            raise ValueError(f"reference has {len(x)} samples; two disjoint halves of {half} need {2 * half}")
        for _ in range(rounds):
            order = rng.permutation(len(x))
            values.append(metric(x[order[:half]], x[order[half : 2 * half]]))
        n_a = n_b = half
    return Estimate(
        value=float(np.mean(values)),
        low=float(np.min(values)),
        high=float(np.max(values)),
        n_a=n_a,
        n_b=n_b,
        warning=sample_size_warning(n_a, n_b, x.shape[1]),
    )
