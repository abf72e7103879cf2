"""Round trip: an irregular clinical series, exported as mp4, as frames + a CSV of times, and as DICOM, comes
back from ``prepare`` as the frames a direct standardisation of the simulator's output gives.

Stated tolerance: at most 1 grey level (of 255) on any pixel and below 0.1 on average, for all three exports
(mp4 is written losslessly, DICOM at 12 bits, the frames as 8-bit PNG). The series comes from
``ffasora.simulate.simulate_case(sampler="clinical")`` when the simulator is installed and from the corpus
generator's irregular series otherwise; both paths are kept so the test runs either way.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from prepare_corpus import angiogram, clinical_times, write_dicom_multiframe, write_dicom_series, write_frames

from ffasora.data.format import load_video, read_manifest
from ffasora.data.prepare import PrepareConfig, prepare_dataset
from ffasora.data.standardise import crop_to_field, detect_field, resample_time, to_uint8
from ffasora.io.video import write_mp4
from ffasora.simulate import simulate_case

N_CASES, SOURCE_FRAMES = 6, 13  # 13 = 1 + 4k, which the simulator may require
CFG = PrepareConfig(size=48, frames=9, min_vessel_ratio=0.0)


def clinical_series(seed: int, source: str) -> tuple[np.ndarray, np.ndarray]:
    """(T, H, W) uint8 frames and their true times (s) of one irregular clinical series."""
    if source == "simulator":
        case = simulate_case(seed=seed, size=64, frames=SOURCE_FRAMES, sampler="clinical")
        return np.asarray(case.frames, np.uint8), np.asarray(case.times_s, np.float64)
    times = clinical_times(SOURCE_FRAMES, seed)
    return to_uint8(angiogram(times, seed=seed)), times


def expected(frames: np.ndarray, times: np.ndarray) -> np.ndarray:
    """The simulator's frames standardised in memory, at their true times."""
    x = frames.astype(np.float32) / 255
    cropped = crop_to_field(x, detect_field(x), CFG.size)
    return to_uint8(resample_time(cropped, times - times[0], CFG.frames, "time")[0])


def export(root: Path, fmt: str, name: str, frames: np.ndarray, times: np.ndarray) -> tuple[str, str]:
    """Write one export; returns (index path, index frame_times or "")."""
    if fmt == "mp4":
        write_mp4(frames, root / f"{name}.mp4", fps=1.0, lossless=True)
        return f"{name}.mp4", ";".join(f"{t:.3f}" for t in times)  # mp4 keeps no irregular times
    if fmt == "frames":
        write_frames(root / name, frames.astype(np.float32) / 255, times, sidecar=True)
        return name, ""
    if fmt == "dicom-series":
        write_dicom_series(root / name, frames.astype(np.float32) / 255, times)
        return name, ""
    write_dicom_multiframe(root / f"{name}.dcm", frames.astype(np.float32) / 255, times)
    return f"{name}.dcm", ""


@pytest.mark.parametrize("source", ["corpus", "simulator"])
def test_exports_round_trip_to_the_simulator_frames_with_identical_splits(
    tmp_path: Path, source: str
) -> None:
    cases = [clinical_series(seed, source) for seed in range(N_CASES)]
    splits = {}
    for fmt in ("mp4", "frames", "dicom", "dicom-series"):
        videos = tmp_path / fmt / "videos"
        rows = []
        for k, (frames, times) in enumerate(cases):
            path, frame_times = export(videos, fmt, f"case{k}", frames, times)
            rows.append(
                {
                    "video": path,
                    "patient_id": f"H{k // 2}",
                    "eye": "OD" if k % 2 else "OS",
                    "report": "Microaneurysms.",
                    "frame_times": frame_times,
                    "diagnosis": "DR" if k < 4 else "normal",
                }
            )
        index = tmp_path / fmt / "index.csv"
        with open(index, "w", newline="") as f:
            table = csv.DictWriter(f, fieldnames=list(rows[0]))
            table.writeheader()
            table.writerows(rows)
        out = tmp_path / fmt / "ds"
        summary = prepare_dataset(
            videos, index, out, CFG, private_dir=tmp_path / "private", write_mapping=True
        )
        assert summary.counts["kept"] == N_CASES, summary.errors_path.read_text()
        with open(tmp_path / "private" / "mapping.csv") as f:
            mapping = {r["video"]: r["video_id"] for r in csv.DictReader(f)}
        records = {r.id: r for r in read_manifest(out)}
        for k, (frames, times) in enumerate(cases):
            video_id = mapping[rows[k]["video"]]
            got = load_video(out, video_id).astype(int)
            error = np.abs(got - expected(frames, times))
            assert error.max() <= 1 and error.mean() < 0.1, (fmt, k, error.max(), error.mean())
            record = records[video_id]
            assert record.interpolation == "time"
            start = times[0] if record.extra["time_zero"] == "stated" else 0.0  # DICOM: from the first frame
            target = np.linspace(start, start + times[-1] - times[0], CFG.frames)
            assert np.allclose(record.frame_times_s, target, atol=2e-3)
        splits[fmt] = {r.patient_id: r.split for r in records.values()}
        assert json.loads((out / "dataset.json").read_text())["counts"] == {
            s: sum(r.split == s for r in records.values()) for s in ("train", "val", "test")
        }
    assert splits["mp4"] == splits["frames"] == splits["dicom"] == splits["dicom-series"]
