"""Paired frame metrics between a generated video and the real video of the same report: PSNR, SSIM, MS-SSIM.

SSIM follows Wang et al. (2004) with scikit-image's conventions (7x7 uniform window and sample covariance by
default, or the 11x11 Gaussian window with sigma 1.5), so numbers match the most common reference
implementation exactly. Videos are (T, H, W) arrays in a known ``data_range`` (255 for uint8).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

K1, K2 = 0.01, 0.03


def _check_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired metrics need equal shapes, got {a.shape} and {b.shape}")
    return a, b


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB (inf for identical inputs)."""
    a, b = _check_pair(a, b)
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else float(10.0 * np.log10(data_range**2 / mse))


def _ssim_terms(
    a: np.ndarray, b: np.ndarray, data_range: float, gaussian_weights: bool, win_size: int | None
) -> tuple[float, float]:
    """Mean SSIM and mean contrast-structure term (the luminance factor left out) over the valid region."""
    if gaussian_weights:
        sigma, truncate = 1.5, 3.5
        win_size = win_size or 2 * int(truncate * sigma + 0.5) + 1

        def smooth(x: np.ndarray) -> np.ndarray:
            return ndimage.gaussian_filter(x, sigma=sigma, truncate=truncate)

        cov_norm = 1.0  # the Gaussian-window convention uses the population covariance
    else:
        win_size = win_size or 7

        def smooth(x: np.ndarray) -> np.ndarray:
            return ndimage.uniform_filter(x, size=win_size)

        cov_norm = win_size**2 / (win_size**2 - 1.0)
    if min(a.shape) < win_size:
        raise ValueError(f"images of shape {a.shape} are smaller than the {win_size}x{win_size} SSIM window")
    mu_a, mu_b = smooth(a), smooth(b)
    var_a = cov_norm * (smooth(a * a) - mu_a * mu_a)
    var_b = cov_norm * (smooth(b * b) - mu_b * mu_b)
    cov_ab = cov_norm * (smooth(a * b) - mu_a * mu_b)
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    cs = (2 * cov_ab + c2) / (var_a + var_b + c2)
    s = (2 * mu_a * mu_b + c1) / (mu_a**2 + mu_b**2 + c1) * cs
    pad = (win_size - 1) // 2
    valid = (slice(pad, -pad), slice(pad, -pad))
    return float(s[valid].mean()), float(cs[valid].mean())


def ssim(
    a: np.ndarray,
    b: np.ndarray,
    data_range: float = 255.0,
    gaussian_weights: bool = False,
    win_size: int | None = None,
) -> float:
    """Mean SSIM of two 2-D images (same value as ``skimage.metrics.structural_similarity``)."""
    a, b = _check_pair(a, b)
    if a.ndim != 2:
        raise ValueError(f"ssim takes 2-D images, got shape {a.shape}")
    return _ssim_terms(a, b, data_range, gaussian_weights, win_size)[0]


MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def ms_ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Multi-scale SSIM (Wang et al. 2003): contrast-structure at every scale, full SSIM at the coarsest.

    Gaussian 11x11 window and the standard five weights. Frames too small to be halved four times (128 px)
    use the scales that fit, with their weights renormalised, so numbers are comparable within one size.
    """
    a, b = _check_pair(a, b)
    if a.ndim != 2:
        raise ValueError(f"ms_ssim takes 2-D images, got shape {a.shape}")
    scales = 1
    while scales < len(MS_SSIM_WEIGHTS) and min(a.shape) // (2**scales) >= 11:
        scales += 1
    weights = np.array(MS_SSIM_WEIGHTS[:scales]) / sum(MS_SSIM_WEIGHTS[:scales])
    result = 1.0
    for level, weight in enumerate(weights):
        s, cs = _ssim_terms(a, b, data_range, True, None)
        value = s if level == scales - 1 else cs
        result *= max(value, 0.0) ** weight  # negative cs (anti-correlated) counts as no similarity
        h, w = (a.shape[0] // 2) * 2, (a.shape[1] // 2) * 2
        a = a[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
        b = b[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    return float(result)


def video_metrics(
    generated: np.ndarray, reference: np.ndarray, data_range: float = 255.0
) -> dict[str, list[float]]:
    """Per-frame PSNR, SSIM and MS-SSIM of two (T, H, W) videos."""
    g, r = _check_pair(generated, reference)
    if g.ndim != 3:
        raise ValueError(f"videos must be (T, H, W), got shape {g.shape}")
    return {
        "psnr": [psnr(x, y, data_range) for x, y in zip(g, r, strict=True)],
        "ssim": [ssim(x, y, data_range) for x, y in zip(g, r, strict=True)],
        "ms_ssim": [ms_ssim(x, y, data_range) for x, y in zip(g, r, strict=True)],
    }
