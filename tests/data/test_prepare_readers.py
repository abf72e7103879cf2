"""Readers of ``ffasora prepare``: every supported format reads back its frames, depth and times."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from prepare_corpus import (
    angiogram,
    clinical_times,
    to_bits,
    write_dicom_multiframe,
    write_dicom_series,
    write_frames,
    write_video,
)

from ffasora.data.ingest import dicom_time_s, filename_times, natural_key, read_source


@pytest.fixture(scope="module")
def series() -> tuple[np.ndarray, np.ndarray]:
    times = clinical_times(7, seed=3)
    return angiogram(times, seed=3), times


@pytest.mark.parametrize("suffix", [".mp4", ".avi", ".mov", ".mkv"])
def test_video_files_read_back_grey_frames(tmp_path: Path, series, suffix: str) -> None:
    frames, _ = series
    raw = read_source(write_video(tmp_path / f"v{suffix}", frames))
    assert raw.frames.shape == frames.shape and raw.kind == "video" and raw.time_source == "container"
    tolerance = (
        6 / 255 if suffix == ".mov" else 1 / 255
    )  # mov: lossy MPEG-4 (sharp label edges); others lossless
    error = float(np.abs(raw.frames - to_bits(frames, 8) / 255).mean())
    assert error < tolerance
    assert np.allclose(np.diff(raw.times_s), 0.25)


@pytest.mark.parametrize(("ext", "bits"), [(".png", 8), (".png", 16), (".tif", 16), (".jpg", 8)])
def test_frame_folders_scale_8_and_16_bit_to_one_range(tmp_path: Path, series, ext: str, bits: int) -> None:
    frames, _ = series
    raw = read_source(write_frames(tmp_path / "f", frames, ext=ext, bits=bits))
    assert raw.bits == bits and raw.kind == "frames" and raw.time_source == "none" and raw.times_s is None
    quantum = 0.51 / (2**bits - 1)  # half a step of the stored depth
    error = np.abs(raw.frames - frames)
    if ext == ".jpg":  # lossy: judge the mean, the label's sharp edges ring
        assert float(error.mean()) < 0.01
    else:
        assert float(error.max()) < quantum


def test_frame_folder_uses_natural_order_and_times_from_names_or_sidecar(tmp_path: Path, series) -> None:
    frames, times = series
    # 7 frames: frame10 would sort before frame2 alphabetically; use 12 to make that happen
    times12 = clinical_times(12, seed=5)
    frames12 = angiogram(times12, seed=5)
    raw = read_source(write_frames(tmp_path / "names", frames12, times12, times_in_names=True))
    assert raw.time_source == "filename"
    assert np.allclose(raw.times_s, times12, atol=0.006)
    assert float(np.abs(raw.frames - frames12).max()) < 0.51 / 255  # order restored by natural sort
    side = read_source(write_frames(tmp_path / "side", frames, times, ext=".jpg", sidecar=True))
    assert side.time_source == "sidecar" and np.allclose(side.times_s, times, atol=0.001)
    assert sorted(["frame10", "frame2", "frame1"], key=natural_key) == ["frame1", "frame2", "frame10"]


def test_dicom_multiframe_and_series_give_frames_and_times(tmp_path: Path, series) -> None:
    frames, times = series
    multi = read_source(write_dicom_multiframe(tmp_path / "a.dcm", frames, times))
    assert multi.bits == 12 and multi.time_source == "dicom" and multi.frames.shape == frames.shape
    assert np.allclose(multi.times_s, times - times[0], atol=1e-3)
    assert np.abs(multi.frames - frames).max() < 0.51 / 4095
    one_by_one = read_source(write_dicom_series(tmp_path / "series", frames, times))
    assert one_by_one.time_source == "dicom"
    assert np.allclose(one_by_one.times_s, times - times[0], atol=1e-3)
    assert np.abs(one_by_one.frames - frames).max() < 0.51 / 4095  # InstanceNumber order, not file order


def test_time_parsers() -> None:
    assert dicom_time_s("093015.250000") == pytest.approx(9 * 3600 + 30 * 60 + 15.25)
    assert dicom_time_s("09:30:15") == 9 * 3600 + 30 * 60 + 15
    assert filename_times(["a_t1.5s.png", "a_01m05.2s.png"]).tolist() == [1.5, 65.2]
    assert filename_times(["frame1.png", "frame_t2s.png"]) is None
    with pytest.raises(ValueError, match="HHMMSS"):
        dicom_time_s("late")


def test_bad_sources_raise_value_errors_naming_the_file(tmp_path: Path, series) -> None:
    frames, _ = series
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "junk.mp4").write_bytes(b"\x00" * 300)
    (tmp_path / "x.xyz").write_text("?")
    mixed = write_frames(tmp_path / "mixed", frames[:3], bits=8)
    Image.fromarray(to_bits(frames[0], 16)).save(mixed / "frame9.png")
    for path, message in [
        ("empty.mp4", "empty file"),
        ("junk.mp4", "cannot decode"),
        ("x.xyz", "unknown format"),
        ("mixed", "bit depths"),
        ("nowhere", "no such file"),
    ]:
        with pytest.raises(ValueError, match=message) as info:
            read_source(tmp_path / path)
        assert path in str(info.value)


def test_compressed_or_damaged_dicom_is_reported_not_fatal(tmp_path: Path, series) -> None:
    from pydicom.uid import JPEGBaseline8Bit

    frames, times = series
    import pydicom

    path = write_dicom_multiframe(tmp_path / "c.dcm", frames, times)
    from pydicom.encaps import encapsulate

    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit  # JPEG fragments that are not JPEG: cannot be decoded
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = encapsulate([b"\xff\xd8 not a jpeg"] * len(frames))
    ds.save_as(tmp_path / "jpeg.dcm")
    with pytest.raises(ValueError, match="unsupported or damaged pixel data"):
        read_source(tmp_path / "jpeg.dcm")
    (tmp_path / "junk.dcm").write_bytes(b"\x01" * 500)
    with pytest.raises(ValueError, match="not readable as DICOM"):
        read_source(tmp_path / "junk.dcm")
