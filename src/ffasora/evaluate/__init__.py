"""Evaluation of generated FFA videos: distribution, paired, alignment, physiology and privacy metrics.

The maths are pure functions on arrays (importable without torch models); ``suite.evaluate_videos`` runs
everything for ``ffasora evaluate`` and ``report.write_report`` renders it.
"""

from ffasora.evaluate.alignment import BertScorer, vqa_style_scores
from ffasora.evaluate.classifier import finding_scores
from ffasora.evaluate.distribution import (
    Estimate,
    bootstrap,
    frechet_distance,
    kernel_distance,
    real_vs_real_floor,
    sample_size_warning,
)
from ffasora.evaluate.paired import ms_ssim, psnr, ssim, video_metrics
from ffasora.evaluate.physiology import physiology_checks
from ffasora.evaluate.privacy import privacy_audit
from ffasora.evaluate.retrieval import chance_recall, cosine_similarity, nearest_similarity, recall_at_k

__all__ = [
    "BertScorer",
    "Estimate",
    "bootstrap",
    "chance_recall",
    "cosine_similarity",
    "finding_scores",
    "frechet_distance",
    "kernel_distance",
    "ms_ssim",
    "nearest_similarity",
    "physiology_checks",
    "privacy_audit",
    "psnr",
    "real_vs_real_floor",
    "recall_at_k",
    "sample_size_warning",
    "ssim",
    "video_metrics",
    "vqa_style_scores",
]
