"""Building blocks of the review tests: tiny source videos, and the app served in its own process."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
from PIL import Image

from served_app import ServedApp, serve_code

FINDINGS = (("MA", "microaneurysms"), ("LEAK_FOCAL", "focal leakage"), ("NPA", "capillary non-perfusion"))


def _clip(seed: int, size: int = 32, frames: int = 5) -> np.ndarray:
    """(T, H, W) uint8: a bright disc that fills in over time, different per seed."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    cy, cx = rng.uniform(8, size - 8, 2)
    disc = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 40.0)
    ramp = np.linspace(0.2, 1.0, frames)[:, None, None]
    return (255 * np.clip(ramp * disc + 0.05 * rng.random((frames, size, size)), 0, 1)).astype(np.uint8)


def _write_tagged_mp4(path: Path, frames: np.ndarray) -> None:
    """An mp4 like a generated video: a different size and codec settings, and a "synthetic" container tag."""
    with av.open(str(path), mode="w", format="mp4", options={"movflags": "use_metadata_tags"}) as container:
        container.metadata["comment"] = "synthetic"
        container.metadata["ffasora_seed"] = "7"
        stream = container.add_stream("libx264", rate=4)
        stream.height, stream.width = frames.shape[1:]
        stream.pix_fmt = "yuv420p"
        for array in frames:
            frame = av.VideoFrame.from_ndarray(array, format="gray").reformat(format="yuv420p")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def make_sources(root: Path, n_synthetic: int = 4, n_real: int = 2) -> tuple[Path, Path]:
    """A folder of synthetic clips (mp4 and one gif) and a dataset folder of real clips."""
    syn = root / "generated"
    syn.mkdir(parents=True)
    for i in range(n_synthetic):
        frames = _clip(i)
        if i == 0:
            images = [Image.fromarray(f) for f in frames]
            images[0].save(
                syn / "case_000.gif", save_all=True, append_images=images[1:], duration=100, loop=0
            )
        else:
            _write_tagged_mp4(syn / f"case_{i:03d}.mp4", frames)
    real = root / "realset"
    (real / "videos").mkdir(parents=True)
    records = []
    for i in range(n_real):
        vid = f"r{i:03d}"
        np.savez_compressed(real / "videos" / f"{vid}.npz", frames=_clip(100 + i))
        records.append({"id": vid, "report": f"report {i}", "codes": ["MA"]})
    (real / "manifest.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return syn, real


def ServerProcess(study: Path) -> ServedApp:  # noqa: N802 (kept as the name the tests use)
    """``create_app(study)`` of the review app in its own process (killable, restartable)."""
    return ServedApp(serve_code("ffasora.review.server"), study, timeout_s=60)
