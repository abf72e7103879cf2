"""Privacy audit: the positive control is found, held-out targets and Recall@K agree with brute force."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ffasora.evaluate.inputs import load_dataset_items, stack_clips
from ffasora.evaluate.privacy import lightly_altered, most_alike, privacy_audit, vessel_descriptor
from ffasora.evaluate.retrieval import cosine_similarity


def _brute_recall(q: np.ndarray, g: np.ndarray, targets: np.ndarray, k: int) -> float:
    hits = 0
    for i, row in enumerate(cosine_similarity(q, g)):
        better = sum(row[j] >= row[targets[i]] for j in range(len(row)) if j != targets[i])
        hits += better < k
    return hits / len(q)


def test_positive_control_is_found_in_the_training_gallery(sim_dataset):
    train = load_dataset_items(sim_dataset, "train")
    clips = stack_clips(train, 9, 64)
    gallery = vessel_descriptor(clips)
    altered = lightly_altered(clips[:20], seed=1)
    assert not torch.equal(altered, clips[:20])
    control = vessel_descriptor(altered)
    result = privacy_audit(gallery, gallery[:0], [], gallery[:0], [], control, ks=(5, 10))
    assert result["positive_control"]["found"], result["positive_control"]
    assert result["chance"] == {5: 5 / len(clips), 10: 10 / len(clips)}


def test_audit_recall_matches_brute_force_and_chance():
    rng = np.random.default_rng(0)
    gallery = rng.normal(size=(60, 6))
    generated = gallery[:30] + rng.normal(scale=2.0, size=(30, 6))
    targets = list(range(30))
    heldout = rng.normal(size=(25, 6))
    held_targets = rng.integers(0, 60, 25)
    result = privacy_audit(gallery, generated, targets, heldout, held_targets, gallery[:0], ks=(5, 10, 50))
    for k in (5, 10, 50):
        assert result["generated"]["recall"][k] == pytest.approx(
            _brute_recall(generated, gallery, np.arange(30), k)
        )
        assert result["heldout_real"]["recall"][k] == pytest.approx(
            _brute_recall(heldout, gallery, held_targets, k)
        )
    assert result["chance"][50] == pytest.approx(50 / 60)


def test_unpaired_generated_videos_have_no_recall_and_ks_fit_the_gallery():
    gallery = np.eye(4)
    result = privacy_audit(gallery, gallery, [None] * 4, gallery[:0], [], gallery[:0], ks=(5, 10))
    assert "generated" not in result and result["ks"] == [4]


def test_most_alike_and_vessel_descriptor_invariance():
    assert list(most_alike([["MA", "NPA"], []], [["NPA"], ["MA", "NPA", "NVD"], ["NORMAL"]])) == [1, 2]
    clips = torch.rand(3, 1, 9, 48, 48) * 2 - 1
    a = vessel_descriptor(clips)
    b = vessel_descriptor(clips * 0.5 + 0.1)  # gain and offset do not change it
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0)


def test_recall_comes_with_a_binomial_test_against_chance():
    rng = np.random.default_rng(1)
    gallery = rng.normal(size=(200, 8))
    copies = gallery[:40] + rng.normal(scale=0.01, size=(40, 8))
    unrelated = rng.normal(size=(40, 8))
    result = privacy_audit(
        gallery, copies, list(range(40)), unrelated, rng.integers(0, 200, 40), gallery[:0], ks=(5,)
    )
    assert result["generated"]["p_above_chance"][5] < 1e-6  # memorised copies: far above chance
    assert result["heldout_real"]["p_above_chance"][5] > 0.01  # unrelated videos: consistent with chance
