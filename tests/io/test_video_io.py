"""mp4 / gif write -> read round trips, metadata, and refusals."""

from __future__ import annotations

import numpy as np
import pytest

from ffasora.io.video import read_metadata, read_video, write_gif, write_mp4


def _frames(t: int = 5, h: int = 32, w: int = 48, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    smooth = np.linspace(0, 255, w)[None, None, :] * np.linspace(0.2, 1, t)[:, None, None]
    return np.clip(smooth + rng.normal(0, 4, (t, h, w)), 0, 255).astype(np.uint8)


def test_lossless_mp4_round_trip_with_metadata(tmp_path):
    frames = _frames()
    path = write_mp4(
        frames,
        tmp_path / "a.mp4",
        fps=2,
        metadata={"comment": "synthetic", "ffasora_seed": "7"},
        lossless=True,
    )
    back, times = read_video(path)
    assert back.tobytes() == frames.tobytes()
    assert np.allclose(times, [0, 0.5, 1.0, 1.5, 2.0])
    tags = read_metadata(path)
    assert tags["comment"] == "synthetic" and tags["ffasora_seed"] == "7"


def test_default_mp4_is_close_and_odd_sizes_are_padded(tmp_path):
    frames = _frames(h=31, w=47)
    back, _ = read_video(write_mp4(frames, tmp_path / "b.mp4", fps=4))
    assert back.shape == (5, 32, 48)
    assert np.abs(back[:, :31, :47].astype(float) - frames).mean() < 3


def test_gif_round_trip_is_exact(tmp_path):
    frames = _frames(t=3)
    back, times = read_video(write_gif(frames, tmp_path / "c.gif", fps=5))
    assert np.array_equal(back, frames)
    assert np.allclose(times, [0, 0.2, 0.4])


def test_bad_input_is_refused(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        write_mp4(np.zeros((2, 8, 8), np.float32), tmp_path / "x.mp4")
    with pytest.raises(ValueError, match="no such"):
        read_video(tmp_path / "missing.mp4")
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(ValueError, match="unsupported"):
        read_video(tmp_path / "x.txt")


def test_avi_is_read(tmp_path):
    import av

    frames = _frames(t=4)
    with av.open(str(tmp_path / "d.avi"), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 48, 32, "yuv420p"
        for frame in frames:
            for packet in stream.encode(
                av.VideoFrame.from_ndarray(np.stack([frame] * 3, -1), format="rgb24")
            ):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    back, times = read_video(tmp_path / "d.avi")
    assert back.shape == (4, 32, 48) and np.allclose(times, [0, 0.1, 0.2, 0.3])
    assert np.abs(back.astype(float) - frames).mean() < 8
