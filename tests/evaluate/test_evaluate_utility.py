"""TSTR / TRTR: synthetic data with the right labels trains a classifier that works on real videos; the same
videos with wrong labels do not."""

from __future__ import annotations

import numpy as np
import pytest

from ffasora.evaluate.inputs import VideoItem
from ffasora.evaluate.utility import UtilityConfig, scores, utility_study


def _toy(n: int, seed: int, wrong: bool = False) -> list[VideoItem]:
    """(5, 16, 16) videos: finding A brightens late (a leak), B flickers frame to frame (the classifier pools
    over space, so the two differ in time, not place); ``wrong`` labels each video with the findings it lacks."""
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n):
        codes = [c for c, on in (("A", rng.random() < 0.5), ("B", rng.random() < 0.5)) if on]
        frames = rng.normal(120, 12, size=(5, 16, 16))
        if "A" in codes:
            frames += np.linspace(-60, 60, 5)[:, None, None]
        if "B" in codes:
            frames += np.array([50, -50, 50, -50, 50])[:, None, None]
        labels = [c for c in ("A", "B") if c not in codes] if wrong else codes
        items.append(
            VideoItem(f"v{seed}-{i}", frames.clip(0, 255).astype(np.uint8), " ".join(labels), labels)
        )
    return items


CFG = UtilityConfig(frames=5, size=16, width=4, stages=2, epochs=12, batch_size=8, bootstrap_rounds=50)


def test_tstr_with_wrong_synthetic_labels_scores_worse_than_with_right_ones():
    real, test = _toy(32, 0), _toy(40, 1)
    right = utility_study(real, _toy(32, 2), test, CFG)
    wrong = utility_study(real, _toy(32, 2, wrong=True), test, CFG)
    assert right["TSTR"]["macro_auroc"] > 0.8
    assert wrong["TSTR"]["macro_auroc"] < 0.3
    assert right["TSTR_vs_TRTR"]["macro_auroc"]["ratio"]["value"] > 0.8
    low = right["TSTR_vs_TRTR"]["macro_auroc"]["ratio"]["low"]
    assert wrong["TSTR_vs_TRTR"]["macro_auroc"]["ratio"]["high"] < low
    # TRTR is the same model in both studies: the control does not move
    assert right["TRTR"]["macro_auroc"] == pytest.approx(wrong["TRTR"]["macro_auroc"])


def test_learning_curve_trts_and_mixed_sets_are_reported():
    real, test = _toy(24, 0), _toy(24, 1)
    gen_test, sources = _toy(12, 5), _toy(12, 5)
    result = utility_study(
        real, _toy(24, 2), test, CFG.__class__(**{**CFG.__dict__, "curve": (8, 16)}), gen_test, sources
    )
    assert [r["n"] for r in result["learning_curve"]] == [8, 16, 24]
    assert [r["n_synthetic"] for r in result["real_plus_synthetic"]["added"]] == [8, 16, 24]
    assert set(result["TRTS"]) == {"synthetic", "real_same_reports"}


def test_scores_match_hand_counts_and_skip_rare_codes():
    truth = np.array([[1, 0, 1], [1, 1, 0], [0, 0, 1], [0, 1, 0], [1, 0, 0], [0, 1, 1]], bool)
    probs = np.array(
        [[0.9, 0.2, 0.1], [0.8, 0.4, 0.3], [0.3, 0.1, 0.9], [0.2, 0.7, 0.6], [0.6, 0.3, 0.1], [0.4, 0.9, 0.2]]
    )
    out = scores(probs, truth, ["A", "B", "C"], 0.5, min_support=3)
    assert out["per_code"]["A"]["auroc"] == 1.0 and out["per_code"]["A"]["f1"] == 1.0
    assert out["per_code"]["B"]["f1"] == pytest.approx(0.8)  # tp 2, fn 1, fp 0
    assert out["per_code"]["C"]["auroc"] == pytest.approx(4.5 / 9)  # one tie: half a win
    only_a = scores(probs, truth, ["A", "B", "C"], 0.5, min_support=4)
    assert only_a["per_code"] == {}


def test_utility_command_writes_the_report(sim_dataset, tmp_path):
    import json

    from typer.testing import CliRunner

    from ffasora.cli.app import app
    from ffasora.evaluate.inputs import load_dataset_items
    from ffasora.io.video import write_mp4

    synthetic = tmp_path / "synthetic"
    synthetic.mkdir()
    for seed, item in enumerate(load_dataset_items(sim_dataset, "train")[:12]):
        write_mp4(item.frames, synthetic / f"{item.name}.mp4", lossless=True)
        meta = {"report": item.report, "seed": seed, "source_id": item.name}
        (synthetic / f"{item.name}.json").write_text(json.dumps(meta))
    out = tmp_path / "report"
    args = ["evaluate", "utility", "-r", str(sim_dataset), "-s", str(synthetic), "-o", str(out)]
    result = CliRunner().invoke(
        app, [*args, "--size", "16", "--frames", "5", "--epochs", "1", "--curve", "6", "--bootstrap", "5"]
    )
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "report.json").read_text())
    assert saved["n"]["synthetic"] == saved["n"]["real_train"] == 12
    assert (out / "learning_curve.png").is_file() and "TSTR / TRTR" in (out / "report.html").read_text()
    bad = CliRunner().invoke(app, [*args, "--curve", "six"])
    assert bad.exit_code == 2 and "--curve" in bad.output
