"""Study creation: blinded, randomised, balanced orders; real videos mixed in; nothing in the files gives them away."""

from __future__ import annotations

import csv
import stat
from collections import Counter
from pathlib import Path

import av
import numpy as np
import pytest
from review_fixtures import make_sources

from ffasora.review.store import Store, hash_token
from ffasora.review.study import StudyOptions, create_study, plan, scan_sources


def test_plan_is_seeded_shuffled_and_mixes_real_at_the_share() -> None:
    a = plan(40, 20, 3, StudyOptions(real_share=0.2, seed=1))
    assert a == plan(40, 20, 3, StudyOptions(real_share=0.2, seed=1))
    assert a != plan(40, 20, 3, StudyOptions(real_share=0.2, seed=2))
    used_syn, used_real, orders = a
    assert len(used_syn) == 40 and len(used_real) == 10  # 10 / 50 = 0.2
    assert all(sorted(o) == sorted(orders[0]) for o in orders)  # fully crossed
    assert len({tuple(o) for o in orders}) == 3  # but each rater has their own order
    assert all(len(set(o)) == len(o) == 50 for o in orders)


def test_plan_per_rater_subsets_are_balanced() -> None:
    _, _, orders = plan(30, 10, 7, StudyOptions(real_share=0.25, per_rater=12, seed=0))
    assert all(len(o) == len(set(o)) == 12 for o in orders)
    assert all(sum(k == "real" for k, _ in o) == 3 for o in orders)
    seen = Counter(item for o in orders for item in o if item[0] == "synthetic")
    assert max(seen.values()) - min(seen.values()) <= 1
    with pytest.raises(ValueError, match="real_share"):
        plan(3, 3, 1, StudyOptions(real_share=1.0))


def test_scan_finds_files_and_dataset_records(tmp_path: Path) -> None:
    syn, real = make_sources(tmp_path, n_synthetic=3, n_real=2)
    files = scan_sources([syn])
    assert [v.label for v in files] == ["case_000.gif", "case_001.mp4", "case_002.mp4"]
    records = scan_sources([real])
    assert [v.label for v in records] == ["realset/r000", "realset/r001"] and records[0].codes == ("MA",)
    assert records[0].frames().shape == (5, 32, 32) and records[0].height() == 32
    assert files[0].frames().shape == (5, 32, 32)  # the gif
    with pytest.raises(ValueError, match="not a video"):
        scan_sources([tmp_path / "missing"])


def test_created_study_is_blinded(study_factory) -> None:
    created = study_factory()
    st = Store(created.path)
    videos = st.table("SELECT uid, kind, source, media FROM videos")
    assert Counter(v["kind"] for v in videos) == {"synthetic": 4, "real": 2}
    shapes, tags = set(), []
    for v in videos:
        path = created.path / v["media"]
        assert path.name == f"{v['uid']}.mp4" and Path(v["source"]).stem not in path.name
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            shapes.add((stream.codec_context.name, stream.width, stream.height, stream.average_rate))
            tags.append(dict(container.metadata))
    assert len(shapes) == 1  # one codec, size and frame rate for real and synthetic alike
    assert all(t == tags[0] for t in tags)
    assert "synthetic" not in str(tags[0]) and "ffasora_seed" not in tags[0]
    sources = [Path(v["source"]) for v in videos if v["source"].endswith(".mp4")]
    with av.open(str(sources[0])) as container:
        assert container.metadata.get("comment") == "synthetic"  # the source did carry the mark
    # Tokens: only hashes in the database, the links in a file only the owner can read.
    raters = st.table("SELECT name, token_hash FROM raters")
    assert {r["token_hash"] for r in raters} == {hash_token(t) for t in created.tokens.values()}
    links = created.path / "raters.csv"
    assert stat.S_IMODE(links.stat().st_mode) == 0o600
    rows = list(csv.DictReader(links.open()))
    assert {r["rater"]: r["path"] for r in rows} == {n: f"/r/{t}/" for n, t in created.tokens.items()}
    assert st.meta()["ask_real"] is True


def test_create_refuses_to_overwrite_and_bad_names(tmp_path: Path) -> None:
    syn, _ = make_sources(tmp_path, n_synthetic=2, n_real=1)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    with pytest.raises(ValueError, match="not empty"):
        create_study(tmp_path / "taken", [syn], ["a"])
    for names in (["a", "a"], ["../x"], []):
        with pytest.raises(ValueError, match="raters"):
            create_study(tmp_path / "s", [syn], names)
    assert not (tmp_path / "s").exists()
    with pytest.raises(ValueError, match="no videos"):
        create_study(tmp_path / "s", [tmp_path / "taken"], ["a"])
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # nothing half-made left behind


def test_videos_are_resized_to_one_height(tmp_path: Path) -> None:
    syn, _ = make_sources(tmp_path, n_synthetic=2, n_real=1)
    big = np.zeros((5, 48, 48), np.uint8)
    from ffasora.review import media

    media.write_mp4(syn / "big.mp4", big, fps=7)
    created = create_study(tmp_path / "s", [syn], ["a"], options=StudyOptions(fps=5))
    heights = set()
    for v in Store(created.path).table("SELECT media FROM videos"):
        heights.add(media.probe_height(created.path / v["media"]))
    assert heights == {32}
