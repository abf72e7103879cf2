"""Tiny studies for the review tests: a few 5-frame 32x32 clips, synthetic as mp4/gif files, real as a dataset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ffasora.review import media
from ffasora.review.study import StudyOptions, create_study

FINDINGS = (("MA", "microaneurysms"), ("LEAK_FOCAL", "focal leakage"), ("NPA", "capillary non-perfusion"))


def _clip(seed: int, size: int = 32, frames: int = 5) -> np.ndarray:
    """(T, H, W) uint8: a bright disc that fills in over time, different per seed."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    cy, cx = rng.uniform(8, size - 8, 2)
    disc = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 40.0)
    ramp = np.linspace(0.2, 1.0, frames)[:, None, None]
    return (255 * np.clip(ramp * disc + 0.05 * rng.random((frames, size, size)), 0, 1)).astype(np.uint8)


def make_sources(root: Path, n_synthetic: int = 4, n_real: int = 2) -> tuple[Path, Path]:
    """A folder of synthetic clips (mp4 and one gif) and a dataset folder of real clips."""
    syn = root / "generated"
    syn.mkdir(parents=True)
    for i in range(n_synthetic):
        frames = _clip(i)
        if i == 0:
            images = [Image.fromarray(f) for f in frames]
            images[0].save(syn / "case_000.gif", save_all=True, append_images=images[1:], duration=100, loop=0)
        else:
            media.write_mp4(syn / f"case_{i:03d}.mp4", frames, fps=7)
    real = root / "realset"
    (real / "videos").mkdir(parents=True)
    records = []
    for i in range(n_real):
        vid = f"r{i:03d}"
        np.savez_compressed(real / "videos" / f"{vid}.npz", frames=_clip(100 + i))
        records.append({"id": vid, "report": f"report {i}", "codes": ["MA"]})
    (real / "manifest.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return syn, real


@pytest.fixture(scope="session")
def study_factory(tmp_path_factory: pytest.TempPathFactory):
    """Builds a small study: 4 synthetic + 2 real videos (share 1/3), 3 raters, findings checklist."""

    def build(raters: tuple[str, ...] = ("ana", "ben", "chen"), **kw):
        root = tmp_path_factory.mktemp("study")
        syn, real = make_sources(root)
        options = StudyOptions(real_share=kw.pop("real_share", 1 / 3), findings=FINDINGS, seed=3, **kw)
        return create_study(root / "study", [syn], list(raters), real=[real], options=options)

    return build
