"""Unblinded analysis and export, and the `ffasora review` commands end to end."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from review_fixtures import make_sources
from typer.testing import CliRunner

from ffasora.cli import app
from ffasora.review import stats
from ffasora.review.report import write_report
from ffasora.review.store import Store


def _rate_everything(study: Path, seed: int = 0, skip: int = 1) -> None:
    """Fill in ratings: synthetic scores 1-3, real 1-2, real/synthetic calls at random; the last rater skips some."""
    st = Store(study)
    rng = random.Random(seed)
    kind = {v["id"]: v["kind"] for v in st.table("SELECT id, kind FROM videos")}
    raters = [r["id"] for r in st.table("SELECT id FROM raters ORDER BY id")]
    for rater in raters:
        for a in st.table("SELECT position, video_id FROM assignments WHERE rater_id = ?", (rater,)):
            if rater == raters[-1] and a["position"] <= skip:
                continue
            quality = rng.choice([1, 2, 2, 3]) if kind[a["video_id"]] == "synthetic" else rng.choice([1, 2])
            st.save_rating(rater, a["position"], quality, rng.choice(["real", "synthetic", None]), ["MA"], "")


def test_report_tables_agree_with_the_ratings(study_factory, tmp_path: Path) -> None:
    created = study_factory()
    _rate_everything(created.path)
    result = write_report(created.path, tmp_path / "out", n_boot=50)
    out = tmp_path / "out"
    for name in (
        "ratings.csv",
        "per_video.csv",
        "per_rater.csv",
        "agreement.csv",
        "turing.csv",
        "summary.json",
    ):
        assert (out / name).stat().st_size > 0
    ratings = list(csv.DictReader((out / "ratings.csv").open()))
    assert len(ratings) == result["counts"]["ratings"] == 3 * 6 - 1
    assert {r["kind"] for r in ratings} == {"real", "synthetic"}
    # The synthetic-video agreement equals the statistic computed directly from the exported ratings.
    uids = sorted({r["video"] for r in ratings if r["kind"] == "synthetic"})
    names = sorted({r["rater"] for r in ratings})
    m = np.full((len(uids), len(names)), np.nan)
    for r in ratings:
        if r["kind"] == "synthetic":
            m[uids.index(r["video"]), names.index(r["rater"])] = float(r["quality"])
    rows = {(a["videos"], a["statistic"]): a for a in result["agreement"]}
    assert rows[("synthetic", "Krippendorff alpha (ordinal)")]["value"] == pytest.approx(
        stats.krippendorff_alpha(m).coefficient
    )
    assert rows[("synthetic", "Gwet AC2 (quadratic)")]["value"] == pytest.approx(
        stats.gwet_ac2(m).coefficient
    )
    assert rows[("synthetic", "ICC(2,k)")]["n_units"] == int((~np.isnan(m)).all(axis=1).sum())
    syn_scores = [float(r["quality"]) for r in ratings if r["kind"] == "synthetic"]
    assert result["overall"]["synthetic"]["mean"] == pytest.approx(np.mean(syn_scores))
    pooled = next(t for t in result["turing"] if t["rater"] == "pooled")
    answered = [r for r in ratings if r["real_call"]]
    assert pooled["n"] == len(answered) and pooled["correct"] == sum(
        r["real_call"] == r["kind"] for r in answered
    )
    # Real videos come from a dataset whose records list MA, which every rating above checked.
    findings = {f["videos"]: f for f in result["findings"]}
    assert (
        set(findings) == {"real"}
        and findings["real"]["recall"] == 1.0
        and findings["real"]["precision"] == 1.0
    )
    assert findings["real"]["ratings"] == sum(r["kind"] == "real" for r in ratings)
    kappas = [a for a in result["agreement"] if a["statistic"].startswith("Cohen kappa")]
    assert {a["statistic"].split(") ")[1] for a in kappas} >= {"ana vs ben", "ana vs chen", "ben vs chen"}
    assert "fleiss_kappa" in result["turing_agreement"]
    summary = json.loads((out / "summary.json").read_text())
    assert "secret" not in summary["meta"] and summary["counts"]["submissions"] == len(ratings)
    with Image.open(out / "distributions.png") as im:
        assert im.width > 600 and im.height > 200


def test_review_commands_end_to_end(tmp_path: Path) -> None:
    runner = CliRunner()
    for args in (
        ["review", "--help"],
        ["review", "create", "--help"],
        ["review", "serve", "--help"],
        ["review", "stats", "--help"],
    ):
        assert runner.invoke(app, args).exit_code == 0
    syn, real = make_sources(tmp_path, n_synthetic=4, n_real=2)
    study = tmp_path / "study"
    created = runner.invoke(
        app,
        ["review", "create", str(study), "--videos", str(syn), "--real", str(real), "--real-share", "0.33",
         "--raters", "drA,drB", "--findings", "MA,NPA", "--base-url", "https://review.example"],
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    text = " ".join(created.output.split())  # rich wraps lines to the terminal width
    assert "https://review.example/r/" in text and "4 synthetic + 2 real" in text
    assert [c for c, _ in Store(study).findings()] == ["MA", "NPA"]
    _rate_everything(study, skip=0)
    analysed = runner.invoke(
        app, ["review", "stats", str(study), "--out", str(tmp_path / "out"), "--n-boot", "20"]
    )
    assert analysed.exit_code == 0, analysed.output
    assert (
        "12 of 12 assigned ratings stored" in " ".join(analysed.output.split())
        and (tmp_path / "out" / "distributions.png").is_file()
    )
    old = Store(study).table("SELECT token_hash FROM raters WHERE name = 'drB'")[0]["token_hash"]
    reset = runner.invoke(app, ["review", "reset-link", str(study), "drB"])
    assert reset.exit_code == 0 and "drB: http://127.0.0.1:8000/r/" in reset.output
    token = reset.output.strip().rsplit("/r/", 1)[1].strip("/")
    assert Store(study).rater_by_token(token).name == "drB"  # type: ignore[union-attr]
    assert Store(study).table("SELECT token_hash FROM raters WHERE name = 'drB'")[0]["token_hash"] != old
    assert runner.invoke(app, ["review", "reset-link", str(study), "nobody"]).exit_code != 0
    again = runner.invoke(app, ["review", "create", str(study), "--videos", str(syn), "--raters", "x"])
    assert again.exit_code != 0 and "not empty" in " ".join(again.output.split())
    bad = runner.invoke(
        app,
        [
            "review",
            "create",
            str(tmp_path / "s2"),
            "--videos",
            str(syn),
            "--raters",
            "x",
            "--findings",
            "NOPE",
        ],
    )
    assert bad.exit_code != 0
