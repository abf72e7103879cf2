"""Memorisation and membership: planted copies are found, held-out videos are flagged no more often than the
stated rate, and the memorising control is caught by every attack while fresh eyes are not."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from evaluate_cases import simulate
from typer.testing import CliRunner

from ffasora.cli.app import app
from ffasora.data.build import SimulateConfig, simulate_dataset
from ffasora.evaluate.inputs import load_dataset_items
from ffasora.evaluate.leakage import LeakageConfig, leakage_audit
from ffasora.evaluate.membership import Memoriser, attack_summary, membership_inference
from ffasora.evaluate.memorisation import copy_detection, copy_threshold, dcr
from ffasora.io.video import write_mp4


def _population(n: int, rng: np.random.Generator, d: int = 24) -> np.ndarray:
    return rng.normal(size=(n, d))


def test_copy_detection_finds_planted_near_copies_and_keeps_its_false_positive_rate():
    rng = np.random.default_rng(0)
    gallery, heldout = _population(300, rng), _population(1000, rng)
    copies = gallery[:25] + 0.15 * rng.normal(size=(25, 24))  # near-copies of 25 training videos
    fresh = _population(75, rng)  # new draws from the same population
    generated = np.concatenate([copies, fresh])
    result = copy_detection(gallery, generated, heldout, fpr=0.05, sources=list(range(100)), k=3)
    flags = np.array([n["copy"] for n in result["nearest"]])
    assert flags[:25].all()
    assert [n["index"][0] for n in result["nearest"][:25]] == list(range(25))
    assert result["training_videos_copied"]["own_source_copied"] == 25
    assert flags[25:].mean() <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 75)
    # held-out videos the threshold never saw are called copies at about the stated rate
    held = result["heldout_flagged"]
    assert held["n"] == 1000 and held["rate"] <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 500)
    unseen = _population(2000, rng)
    unseen_nn = (unseen / np.linalg.norm(unseen, axis=1, keepdims=True)) @ (
        gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    ).T
    assert np.mean(unseen_nn.max(axis=1) > result["threshold"]) <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 2000)
    assert result["p_above_fpr"] < 1e-6


def test_copy_threshold_is_the_upper_quantile_and_rejects_bad_rates():
    assert copy_threshold(np.arange(100) / 100, 0.05) == pytest.approx(0.95)
    with pytest.raises(ValueError, match="fpr"):
        copy_threshold(np.ones(5), 0.0)


def test_dcr_share_is_a_half_for_fresh_draws_and_one_for_copies():
    rng = np.random.default_rng(1)
    gallery, heldout = _population(400, rng), _population(200, rng)
    fresh = dcr(gallery, _population(200, rng), heldout, rounds=10)
    copies = dcr(gallery, gallery[:200] + 0.1 * rng.normal(size=(200, 24)), heldout, rounds=10)
    assert abs(fresh["closer_to_training_share"] - 0.5) < 0.1
    # a copy counts only when its source is in the training subset (200 of 400): 0.5 * 0.5 + 0.5 = 0.75
    assert copies["closer_to_training_share"] == pytest.approx(0.75, abs=0.05)
    assert copies["generated"]["median"] < fresh["heldout_real"]["median"] / 5


def test_membership_attacks_separate_a_memorisers_members_and_not_an_honest_generator():
    rng = np.random.default_rng(2)
    members, nonmembers = _population(80, rng), _population(80, rng)
    leaky = membership_inference(
        members,
        members + 0.2 * rng.normal(size=members.shape),
        nonmembers,
        members[rng.integers(0, 80, 80)] + 0.2 * rng.normal(size=members.shape),  # copies of *members*
        rounds=200,
    )
    honest = membership_inference(members, _population(80, rng), nonmembers, _population(80, rng), rounds=200)
    for attack in ("nearest", "own_report"):
        assert leaky[attack]["low"] > 0.9, leaky[attack]["auc"]
        assert honest[attack]["low"] < 0.5 < honest[attack]["high"], honest[attack]
    assert attack_summary(np.ones(3), np.zeros(3), rounds=10)["tpr_at_1pct_fpr"] == 1.0


def _write_generated(folder: Path, items, memoriser: Memoriser | None = None) -> Path:
    folder.mkdir(parents=True)
    for seed, item in enumerate(items):
        frames = memoriser(item.report, item.codes, seed) if memoriser else item.frames
        write_mp4(frames, folder / f"{item.name}.mp4", lossless=True)
        meta = {"report": item.report, "seed": seed, "source_id": item.name}
        (folder / f"{item.name}.json").write_text(json.dumps(meta))
    return folder


@pytest.fixture(scope="module")
def sim64(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 toy cases at 64 px: the vessel descriptor needs a few pixels per vessel (the shared set is 32 px)."""
    root = tmp_path_factory.mktemp("leakage") / "ds"
    simulate_dataset(
        root, SimulateConfig(n=60, size=64, frames=9, seed=3, photos=False), simulate_fn=simulate
    )
    return root


def test_memoriser_is_caught_on_simulated_videos_and_the_report_is_written(sim64, tmp_path):
    sim_dataset = sim64
    train = load_dataset_items(sim_dataset, "train")
    test = load_dataset_items(sim_dataset, "test")
    memoriser = Memoriser(train, seed=1)
    assert memoriser.source(train[3].report, train[3].codes) == 3
    # the audited generator is the memoriser itself, asked for training and held-out reports
    gen_train = _write_generated(tmp_path / "gen-train", train[:12], memoriser)
    gen_test = _write_generated(tmp_path / "gen-test", test, memoriser)
    cfg = LeakageConfig(fpr=0.1, bootstrap_rounds=100, dcr_rounds=5, frames=9, size=64, fresh_pool="val")
    results, _ = leakage_audit([gen_train, gen_test], sim_dataset, cfg)
    block = next(iter(results["embeddings"].values()))
    audited = block["gen-train + gen-test"]
    assert audited["copies"]["generated_flagged"]["rate"] >= 0.85
    assert audited["copies"]["training_videos_copied"]["own_source_copied"] >= 11
    assert audited["membership"]["own_report"]["auc"] > 0.9
    assert (
        audited["dcr"]["closer_to_training_share"]
        > block["fresh eyes (negative control)"]["dcr"]["closer_to_training_share"]
    )
    control = block["memoriser (positive control)"]
    assert control["copies"]["generated_flagged"]["rate"] >= 0.85
    fresh = block["fresh eyes (negative control)"]
    assert fresh["copies"]["generated_flagged"]["rate"] < 0.5

    out = tmp_path / "report"
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "privacy",
            "-g",
            str(gen_train),
            "-g",
            str(gen_test),
            "-r",
            str(sim_dataset),
            "-o",
            str(out),
            "--fpr",
            "0.1",
            "--bootstrap",
            "50",
            "--examples",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "report.json").read_text())
    assert set(saved["embeddings"]) and (out / "privacy_0.png").is_file()
    assert "neighbours_" in (out / "report.html").read_text()


def test_privacy_command_names_a_missing_folder(tmp_path, sim_dataset):
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "privacy",
            "-g",
            str(tmp_path / "nope"),
            "-r",
            str(sim_dataset),
            "-o",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 2 and "no such folder" in result.output


def test_fresh_eyes_hands_out_each_pool_video_once_before_repeating():
    from ffasora.evaluate.inputs import VideoItem
    from ffasora.evaluate.membership import FreshEyes

    pool = [
        VideoItem(f"p{i}", np.full((3, 4, 4), i, np.uint8), "", ["MA"] if i < 2 else ["NPA"])
        for i in range(4)
    ]
    fresh = FreshEyes(pool)
    firsts = [int(fresh("r", ["MA"])[0, 0, 0]) for _ in range(4)]
    assert firsts[:2] == [0, 1] and sorted(firsts) == [0, 1, 2, 3]  # alike first, then the rest
    assert int(fresh("r", ["NPA"])[0, 0, 0]) == 2  # a new round once all were used
