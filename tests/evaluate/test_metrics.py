"""The evaluation maths against independent references: scipy's sqrtm, scikit-image's SSIM, brute force."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg
from skimage.metrics import structural_similarity

from ffasora.evaluate.distribution import (
    bootstrap,
    frechet_distance,
    kernel_distance,
    real_vs_real_floor,
    sample_size_warning,
)
from ffasora.evaluate.paired import ms_ssim, psnr, ssim, video_metrics
from ffasora.evaluate.retrieval import chance_recall, recall_at_k


def _sqrtm_reference(a: np.ndarray, b: np.ndarray) -> float:
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_frechet_matches_scipy_sqrtm_when_well_conditioned():
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(16, 16))
    a = rng.normal(size=(2000, 16)) @ mix
    b = rng.normal(size=(1500, 16)) @ mix * 1.3 + 0.7
    ours, ref = frechet_distance(a, b), _sqrtm_reference(a, b)
    assert abs(ours - ref) <= 1e-6 * abs(ref)


def test_frechet_of_known_gaussians():
    # Same covariance, shifted mean: the distance is exactly ||shift||^2 for the population, close for samples.
    rng = np.random.default_rng(1)
    a = rng.normal(size=(20000, 4))
    b = rng.normal(size=(20000, 4)) + np.array([1.0, 2.0, 0.0, 0.0])
    assert frechet_distance(a, b) == pytest.approx(5.0, abs=0.1)


def test_frechet_finite_and_correct_when_fewer_samples_than_dimensions():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(30, 100))
    value = frechet_distance(a, a.copy())
    # identical sets: zero (relative to the total variance) despite singular covariances
    assert np.isfinite(value) and abs(value) < 1e-6 * np.trace(np.cov(a, rowvar=False))
    b = rng.normal(size=(30, 100)) + 3.0
    far = frechet_distance(a, b)
    assert np.isfinite(far) and far > 100 * 9 * 0.9  # the mean shift alone contributes 900
    assert sample_size_warning(30, 30, 100) is not None


def test_kernel_distance_is_unbiased_near_zero_for_same_distribution():
    rng = np.random.default_rng(3)
    same = kernel_distance(rng.normal(size=(400, 8)), rng.normal(size=(400, 8)))
    shifted = kernel_distance(rng.normal(size=(400, 8)), rng.normal(size=(400, 8)) + 1)
    assert abs(same) < 0.05 < shifted


def test_bootstrap_interval_contains_the_estimate_and_floor_is_small():
    rng = np.random.default_rng(4)
    ref = rng.normal(size=(200, 5))
    gen = rng.normal(size=(100, 5)) + 0.5
    est = bootstrap(frechet_distance, gen, ref, rounds=50)
    assert est.low <= est.value <= est.high
    floor = real_vs_real_floor(ref, size=100, rounds=5)
    assert floor.value < est.value


def test_ssim_equals_scikit_image():
    rng = np.random.default_rng(5)
    a = rng.integers(0, 256, size=(64, 80)).astype(np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 40, size=a.shape), 0, 255).astype(np.uint8)
    ref = structural_similarity(a, b, data_range=255)
    assert ssim(a, b) == pytest.approx(ref, abs=1e-10)
    ref_gauss = structural_similarity(
        a, b, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert ssim(a, b, gaussian_weights=True) == pytest.approx(ref_gauss, abs=1e-10)


def test_psnr_and_ms_ssim_order_by_noise():
    rng = np.random.default_rng(6)
    clean = rng.integers(0, 256, size=(128, 128)).astype(np.float64)
    light = np.clip(clean + rng.normal(0, 5, clean.shape), 0, 255)
    heavy = np.clip(clean + rng.normal(0, 40, clean.shape), 0, 255)
    assert psnr(clean, clean) == float("inf")
    assert psnr(clean, light) > psnr(clean, heavy)
    assert 1.0 >= ms_ssim(clean, light) > ms_ssim(clean, heavy)
    metrics = video_metrics(np.stack([clean, light]), np.stack([clean, heavy]))
    assert len(metrics["ssim"]) == 2 and metrics["ssim"][0] == pytest.approx(1.0)


def test_recall_at_k_equals_brute_force():
    rng = np.random.default_rng(7)
    gallery = rng.normal(size=(60, 12))
    queries = rng.normal(size=(25, 12))
    targets = rng.integers(0, 60, size=25)
    ks = (1, 5, 10, 50)
    got = recall_at_k(queries, gallery, targets, ks)
    g = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    for k in ks:
        hits = 0
        for i in range(len(q)):
            order = sorted(range(len(g)), key=lambda j, i=i: -float(q[i] @ g[j]))
            hits += targets[i] in order[:k]
        assert got[k] == pytest.approx(hits / len(q))


def test_positive_control_near_copies_are_found():
    rng = np.random.default_rng(8)
    gallery = rng.normal(size=(300, 32))
    targets = rng.choice(300, size=40, replace=False)
    copies = gallery[targets] * 1.1 + rng.normal(0, 0.05, size=(40, 32))  # lightly altered training items
    assert recall_at_k(copies, gallery, targets, (5,))[5] == 1.0
    unrelated = rng.normal(size=(40, 32))
    assert recall_at_k(unrelated, gallery, targets, (50,))[50] < 0.5
    assert chance_recall(300, (5, 50)) == {5: 5 / 300, 50: 50 / 300}


def test_ms_ssim_equals_pytorch_msssim_at_full_scale():
    import torch
    from pytorch_msssim import ms_ssim as reference
    from scipy import ndimage

    rng = np.random.default_rng(9)
    a = np.clip(ndimage.gaussian_filter(rng.integers(0, 256, (256, 256)).astype(float), 2) * 3, 0, 255)
    b = np.clip(a + rng.normal(0, 10, a.shape), 0, 255)
    ref = float(reference(torch.tensor(a)[None, None], torch.tensor(b)[None, None], data_range=255))
    assert ms_ssim(a, b) == pytest.approx(ref, abs=1e-5)


def test_bootstrap_interval_is_bias_corrected():
    # Resampling with replacement inflates the Fréchet distance; the corrected interval still covers the
    # estimate itself, here zero for a set compared with itself.
    rng = np.random.default_rng(10)
    feats = rng.normal(size=(80, 6))
    est = bootstrap(frechet_distance, feats, feats.copy(), rounds=100)
    assert abs(est.value) < 1e-9
    assert est.low <= est.value <= est.high


def test_floor_from_a_pool_has_the_generated_sample_sizes():
    rng = np.random.default_rng(11)
    reference, pool = rng.normal(size=(40, 5)), rng.normal(size=(300, 5))
    floor = real_vs_real_floor(reference, size=25, rounds=4, pool=pool)
    assert (floor.n_a, floor.n_b) == (25, 40)
    shifted = frechet_distance(rng.normal(size=(25, 5)) + 1.0, reference)
    assert floor.value < shifted
    with pytest.raises(ValueError, match="pool has 300"):
        real_vs_real_floor(reference, size=301, pool=pool)
