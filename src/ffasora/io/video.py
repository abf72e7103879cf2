"""Grey video files: write mp4 (PyAV) and gif (Pillow); read mp4 / avi / gif back as (T, H, W) uint8 frames.

Datasets store frames losslessly in .npz (ffasora.data.format); these files are for people and for ingesting
clinical exports, which arrive as mp4 or avi.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageSequence

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".gif")


def _check(frames: np.ndarray) -> np.ndarray:
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim != 3 or not len(frames):
        shape = getattr(frames, "shape", None)
        raise ValueError(f"expected (T, H, W) uint8 frames with T >= 1, got shape {shape}")
    return frames


def _encoder() -> str:
    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def write_mp4(
    frames: np.ndarray,
    path: str | Path,
    fps: float = 4.0,
    metadata: Mapping[str, str] | None = None,
    lossless: bool = False,
) -> Path:
    """Write (T, H, W) uint8 grey frames to an mp4 (H.264 when available, else MPEG-4 Part 2).

    metadata: container tags, e.g. ``{"comment": "synthetic"}``; custom keys are kept (mov ``use_metadata_tags``).
    lossless: H.264 at qp 0 in full range, so grey values read back exactly; otherwise crf 18 (visually lossless).
    Odd sizes are padded by one edge row/column, since 4:2:0 chroma needs even sides.
    """
    frames = _check(frames)
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w)), mode="edge")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    codec = _encoder()
    with av.open(str(path), mode="w", options={"movflags": "use_metadata_tags"}) as container:
        for key, value in (metadata or {}).items():
            container.metadata[str(key)] = str(value)
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        # Full-range 4:2:0 keeps all 256 grey levels (limited range would squeeze them into 16..235).
        pix_fmt = "yuvj420p" if codec == "libx264" else "yuv420p"
        stream.pix_fmt = pix_fmt
        if codec == "libx264":
            stream.options = {"qp": "0"} if lossless else {"crf": "18", "preset": "medium"}
        else:
            stream.options = {"qscale": "1" if lossless else "3"}
        for frame in frames:
            picture = av.VideoFrame.from_ndarray(frame, format="gray").reformat(format=pix_fmt)
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_gif(frames: np.ndarray, path: str | Path, fps: float = 4.0, loop: bool = True) -> Path:
    """Write (T, H, W) uint8 grey frames to an animated gif (256 grey levels, so lossless for uint8)."""
    frames = _check(frames)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(frame, mode="L") for frame in frames]
    duration = max(int(round(1000 / fps)), 20)
    images[0].save(
        path,
        save_all=True,
        append_images=images[1:],
        duration=duration,
        loop=0 if loop else 1,
        optimize=False,
    )
    return path


def read_video(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Frames (T, H, W) uint8 (grey; colour is converted to luma) and their times in seconds (T,) float64.

    Reads mp4/avi/mov/mkv with PyAV and gif with Pillow. Times come from the presentation timestamps (gif: the
    cumulative frame durations), counted from the first frame.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such video file")
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"{path}: unsupported video type {path.suffix!r}; expected one of {VIDEO_SUFFIXES}")
    if path.suffix.lower() == ".gif":
        return _read_gif(path)
    frames, times = [], []
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format="gray"))
                times.append(float(frame.time) if frame.time is not None else float(len(times)))
    except av.error.FFmpegError as err:
        raise ValueError(f"{path}: cannot decode ({err})") from err
    if not frames:
        raise ValueError(f"{path}: holds no video frames")
    t = np.asarray(times, dtype=np.float64)
    return np.stack(frames), t - t[0]


def _read_gif(path: Path) -> tuple[np.ndarray, np.ndarray]:
    frames, durations = [], []
    with Image.open(path) as image:
        for frame in ImageSequence.Iterator(image):
            frames.append(np.asarray(frame.convert("L")))
            durations.append(frame.info.get("duration", 100) / 1000.0)
    times = np.concatenate([[0.0], np.cumsum(durations[:-1])])
    return np.stack(frames), times


def read_metadata(path: str | Path) -> dict[str, str]:
    """The container-level metadata tags of a video file (e.g. ``comment``)."""
    with av.open(str(path)) as container:
        return dict(container.metadata)
