"""Readers for clinical FFA exports: video files, folders of frames, and DICOM (multi-frame or a series).

Every reader returns a ``RawVideo``: grey frames as float32 in [0, 1] (so 8-, 12- and 16-bit sources meet on
one scale), the frame times in seconds when the source states them, and where those times came from. Anything
that cannot be read becomes a ``ValueError`` naming the file and the reason; ``ffasora prepare`` turns it into
one line of errors.jsonl and goes on.

Time sources, in the order ``prepare`` prefers them: ``index`` (the index file's ``frame_times``), ``dicom``
(FrameTimeVector / FrameTime, or AcquisitionTime / ContentTime across a series), ``sidecar`` (a ``times.csv``
inside a frame folder), ``filename`` (``..._t12.5s.png``, ``..._01m05.2s.png``), ``ocr`` (a caller-supplied
reader of the burned-in timer), ``container`` (video timestamps, which capture software usually writes at a
constant rate and so are only a last resort), and ``none``.
"""

from __future__ import annotations

import csv
import dataclasses
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ffasora.data.deid import dicom_identifiers
from ffasora.io.video import read_video

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
DICOM_SUFFIXES = (".dcm", ".dicom")
SIDECAR_NAMES = ("times.csv", "frame_times.csv")
TIME_SOURCES = ("index", "dicom", "sidecar", "filename", "ocr", "container", "none")

# Reads the burned-in timer of one frame (H, W) in [0, 1]; returns seconds or None when it cannot tell.
TimerReader = Callable[[np.ndarray], float | None]


@dataclasses.dataclass
class RawVideo:
    """A source video before standardisation.

    frames: (T, H, W) float32 in [0, 1]. times_s: (T,) seconds or None; as stated by a sidecar, file names or
    OCR (usually from dye injection), counted from the first frame for DICOM and container timestamps.
    bits: bit depth of the source samples (8, 10, 12, 16). kind: "video", "frames" or "dicom".
    """

    frames: np.ndarray
    times_s: np.ndarray | None
    time_source: str
    bits: int
    kind: str
    identifiers: tuple[tuple[str, str], ...] = ()  # (category, value) from DICOM attributes, for the scrubber


def natural_key(name: str) -> list[int | str]:
    """Sort key that orders ``frame2`` before ``frame10`` (capture software rarely zero-pads)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def is_dicom_file(path: Path) -> bool:
    """DICOM Part 10 files carry "DICM" after a 128-byte preamble, whatever their suffix."""
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    try:
        with open(path, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def source_kind(path: Path) -> str | None:
    """ "video", "frames", "dicom" or None (not something ``read_source`` understands)."""
    if path.is_dir():
        files = [p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")]
        if any(p.suffix.lower() in IMAGE_SUFFIXES for p in files):
            return "frames"
        if dicom_series(path)[0]:
            return "dicom"
        return None
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return "video"
    if suffix in IMAGE_SUFFIXES:
        return None
    return "dicom" if is_dicom_file(path) else None


def read_source(path: str | Path, ocr: TimerReader | None = None) -> RawVideo:
    """Read a video file, a frame folder or DICOM (one file or a folder of single-frame objects)."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: no such file or folder")
    if path.is_file() and path.stat().st_size == 0:
        raise ValueError(f"{path}: empty file")
    kind = source_kind(path)
    if kind == "video":
        raw = _read_video_file(path)
    elif kind == "frames":
        raw = read_frame_folder(path)
    elif kind == "dicom":
        raw = read_dicom(path)
    else:
        what = "folder holds no images or DICOM" if path.is_dir() else f"unknown format {path.suffix!r}"
        raise ValueError(f"{path}: {what}; expected {VIDEO_SUFFIXES}, a folder of {IMAGE_SUFFIXES}, or DICOM")
    if raw.times_s is None and ocr is not None:
        raw = _times_from_ocr(raw, ocr)
    return raw


def _read_video_file(path: Path) -> RawVideo:
    frames, times = read_video(path)
    return RawVideo(frames.astype(np.float32) / 255.0, times, "container", 8, "video")


def _times_from_ocr(raw: RawVideo, ocr: TimerReader) -> RawVideo:
    read = [ocr(frame) for frame in raw.frames]
    if any(t is None for t in read):
        return raw
    times = np.asarray(read, dtype=np.float64)
    return dataclasses.replace(raw, times_s=times, time_source="ocr")  # the timer counts from injection


# ---------------------------------------------------------------------------------------------- frames


def read_frame_folder(folder: Path) -> RawVideo:
    """Frames (png/jpg/tif/bmp, 8 or 16 bit) in natural name order; times from a sidecar or the names."""
    files = sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
        key=lambda p: natural_key(p.name),
    )
    images, depths = [], set()
    for file in files:
        array, bits = read_image(file)
        images.append(array)
        depths.add(bits)
    shapes = {a.shape for a in images}
    if len(shapes) > 1:
        raise ValueError(f"{folder}: frames differ in size {sorted(shapes)}")
    if len(depths) > 1:
        raise ValueError(f"{folder}: frames mix bit depths {sorted(depths)}")
    bits = depths.pop()
    frames = np.stack(images).astype(np.float32) / float(2**bits - 1)
    times, source = _sidecar_times(folder, [p.name for p in files])
    if times is None:
        times, source = filename_times([p.name for p in files]), "filename"
    if times is None:
        source = "none"
    return RawVideo(np.clip(frames, 0, 1), times, source, bits, "frames")


def read_image(path: Path) -> tuple[np.ndarray, int]:
    """One image as a (H, W) integer array and its bit depth (8 or 16); colour is converted to luma."""
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode in ("I;16", "I;16B", "I;16L"):
                return np.asarray(image, dtype=np.uint16), 16
            if mode in ("L", "P", "RGB", "RGBA", "LA"):
                return np.asarray(image.convert("L")), 8
            if mode == "I":
                array = np.asarray(image)
                if array.min() >= 0 and array.max() < 2**16:
                    return array.astype(np.uint16), 16
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ValueError(f"{path}: cannot read image ({err})") from err
    raise ValueError(f"{path}: unsupported bit depth / mode {mode!r}; expected 8- or 16-bit grey or RGB")


def _sidecar_times(folder: Path, names: Sequence[str]) -> tuple[np.ndarray | None, str]:
    """Times from ``times.csv``: rows ``file,time_s`` (matched by name) or one time per line in order."""
    for sidecar in SIDECAR_NAMES:
        path = folder / sidecar
        if not path.is_file():
            continue
        rows = [r for r in csv.reader(read_text_file(path).splitlines()) if r and r[0].strip()]
        if rows and not _is_number(rows[0][-1]):
            rows = rows[1:]  # a header
        if len(rows) != len(names):
            raise ValueError(f"{path}: {len(rows)} times for {len(names)} frames")
        if len(rows[0]) >= 2:
            by_name = {r[0].strip(): float(r[1]) for r in rows}
            missing = [n for n in names if n not in by_name]
            if missing:
                raise ValueError(f"{path}: no time for frame(s) {missing[:3]}")
            return np.asarray([by_name[n] for n in names], dtype=np.float64), "sidecar"
        return np.asarray([float(r[0]) for r in rows], dtype=np.float64), "sidecar"
    return None, "none"


def read_text_file(path: Path) -> str:
    """A UTF-8 text file; any other encoding is a ``ValueError`` naming the file, the line and the byte."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise ValueError(f"{path}: line {line}, byte {column}: not UTF-8 ({err.reason})") from err


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


_MIN_SEC = re.compile(r"(\d+)m(\d+(?:\.\d+)?)s", re.IGNORECASE)
_SECONDS = re.compile(r"(?:^|[_\-\s.])t?(\d+(?:\.\d+)?)s(?=$|[_\-\s.])", re.IGNORECASE)


def filename_times(names: Sequence[str]) -> np.ndarray | None:
    """Times stated in every file name (``img_t12.5s.png``, ``img_01m05.2s.tif``), else None."""
    times = []
    for name in names:
        stem = Path(name).stem
        if match := _MIN_SEC.search(stem):
            times.append(60 * int(match[1]) + float(match[2]))
        elif match := _SECONDS.search(stem):
            times.append(float(match[1]))
        else:
            return None
    return np.asarray(times, dtype=np.float64)


# ----------------------------------------------------------------------------------------------- DICOM


# SOP classes of DICOM objects that hold no image: structured reports, presentation states, key objects.
_NON_IMAGE_SOP = {
    "1.2.840.10008.5.1.4.1.1.88": "DICOM structured report, not an image series",
    "1.2.840.10008.5.1.4.1.1.11": "DICOM presentation state, not an image series",
    "1.2.840.10008.5.1.4.1.1.104": "encapsulated document in DICOM, not an image series",
}


def dicom_role(path: Path) -> tuple[str, str]:
    """What one DICOM file is: ("frame", series uid), ("multiframe", ""), ("other", reason) or ("bad", reason)."""
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception as err:  # pydicom raises several unrelated types for damaged files
        return "bad", f"not readable as DICOM ({err})"
    sop = str(getattr(ds, "SOPClassUID", ""))
    for prefix, reason in _NON_IMAGE_SOP.items():
        if sop.startswith(prefix):
            return "other", reason
    if "Rows" not in ds:
        return "other", "DICOM object without an image"
    if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1:
        return "multiframe", ""
    return "frame", f"{getattr(ds, 'StudyInstanceUID', '')}/{getattr(ds, 'SeriesInstanceUID', '')}"


def dicom_series(folder: Path) -> tuple[list[Path], dict[Path, str]]:
    """The files of a folder that form one series, and why each other DICOM file is not part of it.

    A folder is a series only when its single-frame image objects all belong to one acquisition (one
    Study and Series Instance UID) and there are at least two of them; otherwise it holds no series and
    each DICOM file stands on its own.
    """
    roles = {
        p: dicom_role(p)
        for p in sorted(folder.iterdir())
        if p.is_file() and not p.name.startswith(".") and is_dicom_file(p)
    }
    frames = [p for p, (role, _) in roles.items() if role == "frame"]
    series = {roles[p][1] for p in frames}
    members = frames if len(frames) >= 2 and len(series) == 1 else []
    others = {p: reason for p, (role, reason) in roles.items() if role == "other"}
    return members, others


def read_dicom(path: Path) -> RawVideo:
    """A multi-frame DICOM object, or a folder holding a series of single-frame objects (by InstanceNumber)."""
    import pydicom

    files = [path] if path.is_file() else dicom_series(path)[0]
    if not files:
        raise ValueError(f"{path}: no DICOM series (single-frame image objects of one acquisition)")
    datasets = []
    for file in files:
        try:
            datasets.append(pydicom.dcmread(file))
        except Exception as err:  # pydicom raises several unrelated types for damaged files
            raise ValueError(f"{file}: not readable as DICOM ({err})") from err
    if len(datasets) == 1:
        ds = datasets[0]
        frames, bits = _dicom_pixels(ds, files[0])
        if frames.ndim == 2:
            frames = frames[None]
        times = _frame_time_vector(ds, len(frames))
        source = "dicom" if times is not None else "none"
        return RawVideo(frames, times, source, bits, "dicom", _identifiers(datasets))
    order = sorted(range(len(datasets)), key=lambda i: (int(datasets[i].get("InstanceNumber", 0) or 0), i))
    stack, depths = [], set()
    for i in order:
        frames, bits = _dicom_pixels(datasets[i], files[i])
        if frames.ndim != 2:
            raise ValueError(f"{files[i]}: a series member holds {len(frames)} frames; expected one")
        stack.append(frames)
        depths.add(bits)
    if len({f.shape for f in stack}) > 1:
        raise ValueError(f"{path}: series frames differ in size")
    times = _series_times([datasets[i] for i in order])
    source = "dicom" if times is not None else "none"
    return RawVideo(np.stack(stack), times, source, max(depths), "dicom", _identifiers(datasets))


def _identifiers(datasets: Sequence[object]) -> tuple[tuple[str, str], ...]:
    """The identifying attributes of every object, for the report scrubber (they are never stored)."""
    return tuple(dict.fromkeys(item for ds in datasets for item in dicom_identifiers(ds)))


def _dicom_pixels(ds: object, file: Path) -> tuple[np.ndarray, int]:
    """Pixels scaled to [0, 1] by BitsStored; MONOCHROME1 inverted; colour converted to luma."""
    if "PixelData" not in ds:  # type: ignore[operator]
        raise ValueError(f"{file}: DICOM object has no pixel data")
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    try:
        pixels = np.asarray(ds.pixel_array)  # type: ignore[attr-defined]
    except Exception as err:  # missing codec plugins raise RuntimeError/NotImplementedError
        raise ValueError(
            f"{file}: unsupported or damaged pixel data (transfer syntax {syntax}): {err}"
        ) from err
    bits = int(getattr(ds, "BitsStored", 8) or 8)
    if bits not in (8, 10, 12, 14, 16):
        raise ValueError(f"{file}: unsupported BitsStored {bits}; expected 8, 10, 12, 14 or 16")
    if int(getattr(ds, "SamplesPerPixel", 1) or 1) == 3:
        pixels = pixels.astype(np.float32) @ np.asarray([0.299, 0.587, 0.114], np.float32)
    frames = pixels.astype(np.float32) / float(2**bits - 1)
    if getattr(ds, "PhotometricInterpretation", "") == "MONOCHROME1":
        frames = 1.0 - frames
    return np.clip(frames, 0, 1), bits


def _frame_time_vector(ds: object, n: int) -> np.ndarray | None:
    """FrameTimeVector holds each frame's increment from the previous one (ms); FrameTime a constant one."""
    vector = getattr(ds, "FrameTimeVector", None)
    if vector is not None and len(vector) == n:
        increments = np.asarray([float(v) for v in vector], dtype=np.float64)
        times = np.cumsum(increments) / 1000.0
        return times - times[0]
    frame_time = getattr(ds, "FrameTime", None)
    if frame_time is not None and n > 1:
        return np.arange(n, dtype=np.float64) * float(frame_time) / 1000.0
    return None


def _series_times(datasets: Sequence[object]) -> np.ndarray | None:
    """Acquisition (else content) time of each object, in seconds from the first."""
    for tag in ("AcquisitionTime", "ContentTime"):
        values = [getattr(ds, tag, None) for ds in datasets]
        if all(values):
            seconds = np.asarray([dicom_time_s(str(v)) for v in values], dtype=np.float64)
            return seconds - seconds[0]
    return None


def dicom_time_s(value: str) -> float:
    """Seconds since midnight of a DICOM TM value ``HHMMSS.ffffff`` (also ``HH:MM:SS`` of older files)."""
    text = value.strip().replace(":", "")
    match = re.fullmatch(r"(\d{2})(\d{2})?(\d{2})?(\.\d+)?", text)
    if not match:
        raise ValueError(f"DICOM time {value!r} is not HHMMSS.ffffff")
    hours, minutes, seconds = (int(match[i] or 0) for i in (1, 2, 3))
    return 3600 * hours + 60 * minutes + seconds + float(match[4] or 0)
