"""Building blocks of the review tests: tiny source videos, and the app served in its own process."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import av
import numpy as np
from PIL import Image

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


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_SERVE = (
    "import sys, uvicorn; from ffasora.review.server import create_app; "
    "uvicorn.run(create_app(sys.argv[1]), host='127.0.0.1', port=int(sys.argv[2]), access_log=False, "
    "log_level='warning')"
)


class ServerProcess:
    """``create_app(study)`` under uvicorn in its own process on 127.0.0.1 (killable, restartable)."""

    def __init__(self, study: Path) -> None:
        self.study = study
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        self.proc = subprocess.Popen([sys.executable, "-c", _SERVE, str(self.study), str(self.port)])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/", timeout=1):
                    return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"server exited with {self.proc.returncode}") from None
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("server did not start within 60 s")

    def stop(self, hard: bool = False) -> None:
        if self.proc is not None and self.proc.poll() is None:
            if hard:
                self.proc.kill()
            else:
                self.proc.terminate()
            self.proc.wait(timeout=20)
        self.proc = None
