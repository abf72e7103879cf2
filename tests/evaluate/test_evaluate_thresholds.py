"""Per-code decision thresholds: chosen on held-out videos for micro-F1, folded into the findings head."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ffasora.evaluate.classifier import choose_thresholds, finding_scores
from ffasora.evaluate.encoder import EncoderConfig, VideoEncoder, calibrate_findings, run_encoder


def _micro_f1(probs: np.ndarray, truth: np.ndarray, thresholds: np.ndarray | float) -> float:
    names = [str(k) for k in range(truth.shape[1])]
    return finding_scores(probs >= thresholds, truth, names)["micro"]["f1"]


def test_thresholds_raise_micro_f1_of_an_overconfident_head():
    rng = np.random.default_rng(0)
    truth = rng.random((200, 4)) < 0.2
    # positives score 0.6-1.0, negatives 0.3-0.75: at 0.5 many false positives, above 0.75 none
    probs = np.where(truth, rng.uniform(0.6, 1.0, truth.shape), rng.uniform(0.3, 0.75, truth.shape))
    thresholds = choose_thresholds(probs, truth)
    assert thresholds.shape == (4,)
    assert (thresholds > 0.5).all() and (thresholds <= 0.8).all()
    assert _micro_f1(probs, truth, thresholds) > _micro_f1(probs, truth, 0.5) + 0.1


def test_rare_codes_keep_the_default_threshold():
    truth = np.zeros((50, 2), bool)
    truth[:20, 0] = True
    truth[0, 1] = True  # one positive: too few to fit a threshold to
    probs = np.where(truth, 0.9, 0.7)
    thresholds = choose_thresholds(probs, truth, min_support=3)
    assert thresholds[1] == 0.5 and thresholds[0] > 0.7
    with pytest.raises(ValueError, match="must both be"):
        choose_thresholds(probs, truth[:, :1])


def test_calibrated_head_decides_at_one_half_where_the_old_one_decided_at_t():
    torch.manual_seed(0)
    config = EncoderConfig(frames=5, size=32, width=8, codes=("MA", "NPA", "NORMAL"))
    model = VideoEncoder(config)
    clips = torch.rand(16, 1, 5, 32, 32) * 2 - 1
    with torch.no_grad():  # standardise the logits per code: probabilities spread over (0, 1)
        head = model.findings_head
        logits = head(model.features(clips))
        mean, std = logits.mean(0), logits.std(0)
        head.weight.div_(std[:, None])
        head.bias.sub_(mean).div_(std)
    before = run_encoder(model, clips)["findings"]
    thresholds = np.quantile(before, [0.3, 0.5, 0.77], axis=0).diagonal()  # per code, between two scores
    calibrate_findings(model, thresholds)
    after = run_encoder(model, clips)["findings"]
    assert ((after >= 0.5) == (before >= thresholds)).all()
    assert not np.allclose(before, after)
    with pytest.raises(ValueError, match="3 values"):
        calibrate_findings(model, [0.5, 1.0, 0.5])
