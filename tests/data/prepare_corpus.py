"""A generated corpus of clinical-style FFA exports for the ``prepare`` tests.

``angiogram`` draws a small FFA-like series: a circular fundus field with a bright vessel tree and disc, dye
that arrives and fades with time, and a burned-in "patient label" outside the field (which de-identification
must remove). The writers export a series as every format ``prepare`` reads; ``build_corpus`` adds the bad
cases of issue 6 and an index naming them.
"""

from __future__ import annotations

import csv
import datetime as dt
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pydicom
from PIL import Image, ImageDraw
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from ffasora.io.video import write_mp4

LABEL_VALUE = 250  # grey of the burned-in label: brighter than any fundus pixel, so a leak is detectable


def clinical_times(n: int, seed: int) -> np.ndarray:
    """Irregular acquisition times (s): dense early (arterial phase), sparse late, like a clinical series."""
    rng = np.random.default_rng(seed)
    gaps = np.concatenate([rng.uniform(0.8, 2.5, n // 2), rng.uniform(15, 90, n - n // 2 - 1)])
    return np.round(np.concatenate([[rng.uniform(8, 14)], gaps]).cumsum(), 2)


def field_geometry(h: int, w: int) -> tuple[float, float, float]:
    return (h - 1) / 2, (w - 1) / 2 + 3, 0.46 * h


def angiogram(times: np.ndarray, h: int = 72, w: int = 88, seed: int = 0, label: bool = True) -> np.ndarray:
    """(T, H, W) float in [0, 1]: vessels fill with dye (fast rise, slow decay), background flush follows."""
    rng = np.random.default_rng(seed)
    cy, cx, r = field_geometry(h, w)
    yy, xx = np.mgrid[:h, :w]
    inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2
    vessels = np.zeros((h, w), np.float32)
    disc = (cy + rng.uniform(-4, 4), cx + rng.uniform(4, 10))
    for angle in np.linspace(0, 2 * np.pi, 7, endpoint=False) + rng.uniform(0, 1):
        y, x, heading = disc[0], disc[1], angle
        for _ in range(60):
            heading += rng.normal(0, 0.12)
            y, x = y + np.sin(heading), x + np.cos(heading)
            iy, ix = int(round(y)), int(round(x))
            if 0 <= iy < h and 0 <= ix < w:
                vessels[max(iy - 1, 0) : iy + 1, max(ix - 1, 0) : ix + 1] = 1.0
    disc_mask = (yy - disc[0]) ** 2 + (xx - disc[1]) ** 2 <= (0.12 * h) ** 2
    t = np.asarray(times, dtype=np.float64) - times[0]
    dye = (1 - np.exp(-t / 3.0)) * np.exp(-t / 600.0)
    flush = 0.25 * (1 - np.exp(-t / 20.0))
    frames = 0.08 + flush[:, None, None] + 0.6 * dye[:, None, None] * vessels[None]
    frames = frames + 0.3 * dye[:, None, None] * disc_mask[None]
    frames = np.where(inside[None], np.clip(frames, 0, 0.95), 0.0).astype(np.float32)
    if label:
        frames = burn_label(frames)
    return frames


def burn_label(frames: np.ndarray, text: str = "DOE J 12345678") -> np.ndarray:
    """Draw a name/id label in the top-left corner (outside the field), as capture software does."""
    canvas = Image.new("L", frames.shape[:0:-1], 0)
    ImageDraw.Draw(canvas).text((0, 0), text, fill=255)
    mark = np.asarray(canvas) > 0
    mark[:, 18:] = False  # keep it inside the corner, clear of the field
    out = frames.copy()
    out[:, mark] = LABEL_VALUE / 255.0
    return out


def to_bits(frames: np.ndarray, bits: int) -> np.ndarray:
    top = 2**bits - 1
    return np.rint(frames * top).astype(np.uint8 if bits == 8 else np.uint16)


# --------------------------------------------------------------------------------------------- writers


def write_video(path: Path, frames: np.ndarray, fps: float = 4.0) -> Path:
    """mp4 through ffasora.io (lossless H.264); avi/mov/mkv through FFV1 / MPEG-4 at top quality."""
    frames8 = to_bits(frames, 8)
    if path.suffix == ".mp4":
        return write_mp4(frames8, path, fps=fps, lossless=True)
    codec, pix_fmt = ("ffv1", "gray") if path.suffix in (".avi", ".mkv") else ("mpeg4", "yuv420p")
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(100))
        stream.width, stream.height, stream.pix_fmt = frames8.shape[2], frames8.shape[1], pix_fmt
        if codec == "mpeg4":
            stream.options = {"qscale": "1"}
        for frame in frames8:
            picture = av.VideoFrame.from_ndarray(frame, format="gray").reformat(format=pix_fmt)
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_frames(
    folder: Path,
    frames: np.ndarray,
    times: np.ndarray | None = None,
    ext: str = ".png",
    bits: int = 8,
    times_in_names: bool = False,
    sidecar: bool = False,
) -> Path:
    """A frame folder, names unpadded (frame2 before frame10 only by natural sort)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(to_bits(frames, bits)):
        name = f"frame{i}_t{times[i]:.2f}s{ext}" if times_in_names and times is not None else f"frame{i}{ext}"
        Image.fromarray(frame).save(folder / name)
    if sidecar and times is not None:
        names = sorted(
            (p.name for p in folder.iterdir()), key=lambda s: int(s[5:].split("_")[0].split(".")[0])
        )
        with open(folder / "times.csv", "w", newline="") as f:
            table = csv.writer(f)
            table.writerow(["file", "time_s"])
            table.writerows([n, f"{t:.3f}"] for n, t in zip(names, times, strict=True))
    return folder


def _dicom_base(sop_class: str) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID, ds.Modality = "Doe^Jane", "MRN12345678", "OP"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    return ds


def write_dicom_multiframe(path: Path, frames: np.ndarray, times: np.ndarray) -> Path:
    """A 12-bit multi-frame secondary-capture object with a FrameTimeVector (ms increments)."""
    ds = _dicom_base("1.2.840.10008.5.1.4.1.1.7.3")
    pixels = to_bits(frames, 12)
    ds.NumberOfFrames, ds.Rows, ds.Columns = len(pixels), pixels.shape[1], pixels.shape[2]
    ds.FrameIncrementPointer = pydicom.tag.Tag("FrameTimeVector")
    ds.FrameTimeVector = [0.0, *np.round(np.diff(times) * 1000, 3).tolist()]
    ds.PixelData = pixels.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_dicom_series(folder: Path, frames: np.ndarray, times: np.ndarray) -> Path:
    """Single-frame objects, one per frame, with AcquisitionTime; files named in shuffled order."""
    folder.mkdir(parents=True, exist_ok=True)
    start = dt.datetime(2024, 3, 1, 9, 30, 0)
    pixels = to_bits(frames, 12)
    study, series = generate_uid(), generate_uid()  # frames of one acquisition share these
    for i in np.random.default_rng(1).permutation(len(pixels)):
        ds = _dicom_base("1.2.840.10008.5.1.4.1.1.7")
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.Rows, ds.Columns, ds.InstanceNumber = pixels.shape[1], pixels.shape[2], int(i) + 1
        ds.AcquisitionTime = (start + dt.timedelta(seconds=float(times[i]))).strftime("%H%M%S.%f")
        ds.PixelData = pixels[i].tobytes()
        ds.save_as(folder / f"IM{(int(i) * 7919) % 1000:04d}", enforce_file_format=True)
    return folder


# ----------------------------------------------------------------------------------------------- corpus

REPORT = "Mr. John Smith, MRN 00123456, seen 2024-03-01. Microaneurysms and capillary non-perfusion. No NVD."


def build_corpus(root: Path, n_frames: int = 9) -> tuple[Path, Path, dict[str, str]]:
    """Every supported format plus every bad case; returns (videos dir, index csv, expected status by video)."""
    videos = root / "videos"
    good: dict[str, tuple[object, ...]] = {}
    expected: dict[str, str] = {}
    rows: list[dict[str, str]] = []

    def add(video: str, patient: str, eye: str, status: str, diagnosis: str = "DR", times: str = "") -> None:
        rows.append(
            {
                "video": video,
                "patient_id": patient,
                "eye": eye,
                "report": REPORT,
                "frame_times": times,
                "diagnosis": diagnosis,
                "exam_date": "2024-03-01",
            }
        )
        expected[video] = status

    for k, (name, writer) in enumerate(
        {
            "p1/od.mp4": lambda p, f, t: write_video(p, f),
            "p1/os.avi": lambda p, f, t: write_video(p, f),
            "p2/od.mov": lambda p, f, t: write_video(p, f),
            "p2/os.mkv": lambda p, f, t: write_video(p, f),
            "p3/od_png": lambda p, f, t: write_frames(p, f, t, ".png", 8, times_in_names=True),
            "p3/os_jpg": lambda p, f, t: write_frames(p, f, t, ".jpg", 8, sidecar=True),
            "p4/od_tif16": lambda p, f, t: write_frames(p, f, t, ".tif", 16),
            "p4/os.dcm": write_dicom_multiframe,
            "p5/od_series": write_dicom_series,
        }.items()
    ):
        times = clinical_times(n_frames, seed=k)
        writer(videos / name, angiogram(times, seed=k), times)
        good[name] = ()
        add(
            name,
            f"MRN-{name.split('/')[0]}",
            "OD" if "od" in name else "OS",
            "kept",
            diagnosis=["DR", "normal"][k % 2],
        )
    rows[3]["frame_times"] = ";".join(f"{t:.2f}" for t in clinical_times(n_frames, seed=3))  # p2/os.mkv
    # bad cases
    (videos / "bad").mkdir(parents=True)
    (videos / "bad/corrupt.mp4").write_bytes(np.random.default_rng(0).bytes(4000))
    (videos / "bad/empty.avi").write_bytes(b"")
    write_frames(videos / "bad/one_frame", angiogram(np.array([10.0]), seed=9))
    bad_images = write_frames(videos / "bad/unreadable", angiogram(clinical_times(5, 1), seed=9))
    (bad_images / "frame3.png").write_bytes(b"\x89PNG not really")
    float_dir = videos / "bad/float32"
    float_dir.mkdir()
    for i in range(5):
        Image.fromarray(np.full((40, 40), 0.5, np.float32), mode="F").save(float_dir / f"f{i}.tif")
    (videos / "bad/notes.xyz").write_text("not a video")
    blank = np.random.default_rng(3).uniform(0.3, 0.32, (n_frames, 72, 88)).astype(np.float32)
    write_frames(videos / "bad/washed_out", blank)
    write_video(videos / "orphan.mp4", angiogram(clinical_times(5, 7), seed=7))
    for name, status in {
        "bad/corrupt.mp4": "failed",
        "bad/empty.avi": "failed",
        "bad/one_frame": "failed",
        "bad/unreadable": "failed",
        "bad/float32": "failed",
        "bad/notes.xyz": "failed",
        "bad/washed_out": "dropped",
        "missing/nothing.mp4": "failed",
    }.items():
        add(name, "MRN-bad", "OD", status)
    add("p5/od_series", "MRN-p5", "X", "failed")  # bad row (eye), and a duplicate of a good row
    expected["p5/od_series"] = "kept"
    expected["orphan.mp4"] = "failed"
    index = root / "index.csv"
    with open(index, "w", newline="") as f:
        table = csv.DictWriter(f, fieldnames=list(rows[0]))
        table.writeheader()
        table.writerows(rows)
    return videos, index, expected
