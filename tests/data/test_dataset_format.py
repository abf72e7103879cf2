"""The dataset folder: write -> read round trip, crash-safe files, resume, refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ffasora.data.format import (
    FORMAT_VERSION,
    DatasetWriter,
    VideoRecord,
    load_truth,
    load_video,
    npz_bytes,
    read_info,
    read_manifest,
    video_path,
)


def _record(i: int, patient: str, frames: int = 5, size: int = 16, diagnosis: str = "DR") -> VideoRecord:
    return VideoRecord(
        id=f"v{i:03d}",
        patient_id=patient,
        eye="OD" if i % 2 else "OS",
        frames=frames,
        height=size,
        width=size,
        report=f"report {i}: 微血管瘤",
        source="simulator",
        frame_times_s=[float(t) for t in range(frames)],
        phases=["arterial"] * frames,
        codes=["MA"],
        negated=["NVD"],
        diagnoses=[{"code": diagnosis, "grade": None}],
        seed=i,
        extra={"future_field": {"kept": True}},
    )


def _frames(i: int, frames: int = 5, size: int = 16) -> np.ndarray:
    return np.random.default_rng(i).integers(0, 256, (frames, size, size), dtype=np.uint8)


def _write(root, n: int = 6) -> DatasetWriter:
    writer = DatasetWriter(root, creator="test", source="simulator", config={"n": n})
    for i in range(n):
        masks = {"lesion": _frames(100 + i) > 128}
        writer.write(
            _record(i, f"p{i // 2}"), _frames(i), masks=masks, truth={"seed": i, "k": np.float32(0.5)}
        )
    return writer


def test_round_trip_keeps_bytes_records_and_truth(tmp_path):
    writer = _write(tmp_path)
    info = writer.finalize(split_seed=0)
    assert read_info(tmp_path) == info
    assert info["format_version"] == FORMAT_VERSION and info["complete"]
    assert (info["n_videos"], info["n_patients"], info["frames"], info["height"]) == (6, 3, 5, 16)
    assert sum(info["counts"].values()) == 6
    records = read_manifest(tmp_path)
    assert [r.id for r in records] == [f"v{i:03d}" for i in range(6)]
    for i, r in enumerate(records):
        assert load_video(tmp_path, r.id).tobytes() == _frames(i).tobytes()
        assert r.report == f"report {i}: 微血管瘤" and r.extra == {"future_field": {"kept": True}}
        assert r.split in ("train", "val", "test")
        masks, truth = load_truth(tmp_path, r.id)
        assert np.array_equal(masks["lesion"], _frames(100 + i) > 128)
        assert truth == {"seed": i, "k": 0.5}
    # A patient's eyes share a split.
    assert {r.patient_id: r.split for r in records} == {r.patient_id: r.split for r in reversed(records)}


def test_npz_bytes_are_deterministic_and_loadable(tmp_path):
    arrays = {"frames": _frames(0), "mask": _frames(1) > 3}
    assert npz_bytes(arrays) == npz_bytes(arrays)
    (tmp_path / "a.npz").write_bytes(npz_bytes(arrays))
    with np.load(tmp_path / "a.npz") as data:
        assert np.array_equal(data["frames"], arrays["frames"]) and data["mask"].dtype == bool


def test_writer_refuses_bad_frames_and_duplicates(tmp_path):
    writer = DatasetWriter(tmp_path, creator="test", source="prepare")
    with pytest.raises(ValueError, match="shape"):
        writer.write(_record(0, "p"), _frames(0, size=8))
    with pytest.raises(ValueError, match="1 \\+ 4k"):
        writer.write(_record(0, "p", frames=6), _frames(0, frames=6))
    writer.write(_record(0, "p"), _frames(0))
    with pytest.raises(ValueError, match="already"):
        writer.write(_record(0, "p"), _frames(0))
    with pytest.raises(ValueError, match="write the files first"):
        writer.append(_record(1, "p"))


def test_resume_recovers_from_a_crash_mid_write(tmp_path):
    _write(tmp_path, n=3)
    # A crash can leave a temp file, a record whose video was never moved into place, and half a line.
    (tmp_path / "videos" / ".v009.npz.123.tmp").write_bytes(b"partial")
    with open(tmp_path / "manifest.jsonl", "a") as f:
        f.write(_record(7, "p9").to_json() + "\n")
        f.write(_record(8, "p9").to_json()[:40])
    writer = DatasetWriter(tmp_path, creator="test", source="simulator", config={"n": 3})
    assert [r.id for r in writer.records] == ["v000", "v001", "v002"]
    assert not list(tmp_path.glob("videos/.*.tmp"))
    assert len(read_manifest(tmp_path)) == 3  # the manifest was rewritten without the broken lines
    assert writer.has("v001") and not writer.has("v007")


def test_resume_with_other_settings_is_refused(tmp_path):
    _write(tmp_path, n=2)
    with pytest.raises(ValueError, match="different settings"):
        DatasetWriter(tmp_path, creator="test", source="simulator", config={"n": 99})


def test_reader_rejects_unknown_version_and_missing_fields(tmp_path):
    _write(tmp_path, n=1).finalize()
    info = json.loads((tmp_path / "dataset.json").read_text())
    (tmp_path / "dataset.json").write_text(json.dumps({**info, "format_version": 99}))
    with pytest.raises(ValueError, match="format_version 99"):
        read_info(tmp_path)
    with pytest.raises(ValueError, match="lacks required"):
        VideoRecord.from_dict({"id": "x", "eye": "OD"})
    assert video_path(tmp_path, "v000").is_file()
