"""Alignment scores: the VQAScore-style mean, finding P/R/F1, and BERTScore against the bert-score package."""

from __future__ import annotations

import numpy as np
import pytest

from ffasora.evaluate.alignment import BertScorer, bertscore_package, report_from_codes, vqa_style_scores
from ffasora.evaluate.classifier import decode_findings, finding_scores, multi_hot, onset_accuracy


def test_vqa_style_score_uses_p_for_stated_and_one_minus_p_for_negated():
    names = ("MA", "NPA", "NVD")
    probs = np.array([[0.9, 0.2, 0.1], [0.5, 0.5, 0.5]])
    scores = vqa_style_scores(probs, [["MA", "NPA"], []], [["NVD"], []], names)
    assert scores[0] == pytest.approx((0.9 + 0.2 + 0.9) / 3)
    assert np.isnan(scores[1])  # a report that states nothing the classifier knows


def test_finding_scores_against_hand_counts():
    names = ("A", "B", "C")
    truth = multi_hot([["A"], ["A", "B"], ["C"]], names)
    pred = multi_hot([["A"], ["B"], ["A"]], names)
    s = finding_scores(pred, truth, names)
    # tp: A(1) B(1) = 2; fp: A(1) = 1; fn: A(1) C(1) = 2
    assert s["micro"]["precision"] == pytest.approx(2 / 3)
    assert s["micro"]["recall"] == pytest.approx(2 / 4)
    assert s["per_code"]["C"]["f1"] == 0.0 and s["per_code"]["B"]["f1"] == 1.0
    assert s["exact_match"] == pytest.approx(1 / 3)


def test_decode_and_onset_accuracy():
    names, phases = ("A", "B"), ("arterial", "venous")
    probs = np.array([[0.8, 0.1]])
    onset = np.array([[[0.2, 0.8], [0.9, 0.1]]])
    assert decode_findings(probs, onset, names, phases) == [[("A", "venous")]]
    assert onset_accuracy(onset, [{"A": "venous", "B": "venous"}], names, phases) == pytest.approx(0.5)


def test_report_from_codes_names_the_findings():
    text = report_from_codes(["MA"])
    assert "microaneurysm" in text.lower()


def test_bertscore_equals_the_bert_score_package():
    scorer = BertScorer.load()
    cands = [
        report_from_codes(["MA", "NPA"]),
        "Late leakage from the optic disc.",
        "no abnormal fluorescence",
    ]
    refs = [
        "OD: microaneurysms and capillary non-perfusion.",
        "Disc leakage in the late phase.",
        "Normal study.",
    ]
    ours = scorer.score(cands, refs)
    theirs = bertscore_package(cands, refs, scorer.model_dir, scorer.num_layers)
    for key in ("precision", "recall", "f1"):
        np.testing.assert_allclose(ours[key], theirs[key], atol=1e-5)  # the package works in float32
    same = scorer.score(["Disc leakage in the late phase."], ["Disc leakage in the late phase."])
    assert same["f1"][0] == pytest.approx(1.0, abs=1e-6) and ours["f1"].max() < 0.999
    assert "layer 6" in scorer.label and "minilm" in scorer.label.lower()
