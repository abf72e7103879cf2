"""A small stand-in for ``ffasora.simulate.simulate_case`` with the same signature and result attributes.

It lets the dataset tests run without the simulator (and fast): the frames are a seeded blob whose brightness
follows a dye-like curve, so every case differs and the same seed gives the same bytes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ffasora.findings import Diagnosis, Finding, Findings

DIAGNOSES = {
    "DR": ("MA", "NPA"),
    "BRVO": ("VEIN_DILATED_TORTUOUS",),
    "CSC": ("CSC_LEAK",),
    "normal": ("NORMAL",),
}


@dataclasses.dataclass
class FakeCase:
    frames: np.ndarray
    times_s: list[float]
    phases: list[str]
    findings: Findings
    report: str
    report_zh: str
    masks: dict[str, np.ndarray]
    kinetics: dict[str, Any]
    anatomy: dict[str, Any]
    eye: str
    seed: int
    sampler: str = "canonical"
    photo: np.ndarray | None = None  # (H, W, 3) uint8 stand-in colour photograph when asked for

    def meta(self) -> dict[str, Any]:
        return {"simulator": "fake", "times_s": self.times_s}


def fake_simulate_case(
    seed: int,
    size: int = 32,
    frames: int = 5,
    sampler: str = "canonical",
    eye: str = "OD",
    diagnosis: str | None = None,
    photo: bool = False,
) -> FakeCase:
    rng = np.random.default_rng(seed)
    if diagnosis is None:
        diagnosis = str(rng.choice(sorted(DIAGNOSES)))
    times = np.sort(rng.uniform(8, 600, frames)).round(2)
    curve = 1 - np.exp(-(times - 6) / 15)
    yy, xx = np.mgrid[:size, :size] / size
    cx, cy = rng.uniform(0.3, 0.7, 2)
    blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.05)
    video = (curve[:, None, None] * blob[None] * 230 + rng.integers(0, 20, (frames, size, size))).astype(
        np.uint8
    )
    codes = DIAGNOSES[diagnosis]
    findings = Findings(
        eye=eye,
        present=tuple(Finding(c) for c in codes),
        absent=frozenset({"NVD"} if diagnosis == "DR" else set()),
        diagnoses=(Diagnosis(diagnosis),),
    )
    return FakeCase(
        frames=video,
        times_s=times.tolist(),
        phases=["arterial" if t < 15 else "venous" if t < 60 else "late" for t in times],
        findings=findings,
        report=f"{eye}: {diagnosis} with {', '.join(codes)}.",
        report_zh=f"{eye}：{diagnosis}",
        masks={"blob": blob > 0.5, "fov": np.ones((size, size), bool)},
        kinetics={"arm_retina_s": float(rng.uniform(8, 14)), "curve": curve},
        anatomy={"disc_center_px": [int(cx * size), int(cy * size)]},
        eye=eye,
        seed=seed,
        photo=(
            np.stack([200 - 60 * blob, 90 + 0 * blob, 40 + 0 * blob], -1).astype(np.uint8) if photo else None
        ),
    )
