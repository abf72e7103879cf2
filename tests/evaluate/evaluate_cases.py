"""A tiny stand-in for ``ffasora.simulate.simulate_case`` whose videos carry what evaluation measures.

Each eye has its own seeded background texture and vessel rows (an identity for the privacy audit); arteries
fill before veins; CSC has a leak that grows, dryAMD a window defect that fades, DR a non-perfused patch that
stays dark plus microaneurysm dots. Masks use the simulator's names (vessels_art, vessels_vein, lesion_<CODE>).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from scipy import ndimage

from ffasora.findings import Diagnosis, Finding, Findings

DIAGNOSES = ("normal", "CSC", "dryAMD", "DR")


@dataclasses.dataclass
class Case:
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

    def meta(self) -> dict[str, Any]:
        return {"simulator": "evaluate-test", "times_s": self.times_s}


def _sigmoid(t: np.ndarray, t0: float, width: float) -> np.ndarray:
    return 1 / (1 + np.exp(-(t - t0) / width))


def _disc(size: int, cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r**2


def simulate(
    seed: int,
    size: int = 32,
    frames: int = 9,
    sampler: str = "canonical",
    eye: str = "OD",
    diagnosis: str | None = None,
) -> Case:
    rng = np.random.default_rng(seed)
    diagnosis = diagnosis or str(rng.choice(DIAGNOSES))
    t = np.geomspace(8, 600, frames)
    t_ar = float(rng.uniform(10, 14))
    texture = ndimage.gaussian_filter(rng.normal(size=(size, size)), size / 10)
    background = 0.3 + 0.25 * texture / (np.abs(texture).max() + 1e-9)
    art, vein = np.zeros((size, size), bool), np.zeros((size, size), bool)
    for row in rng.choice(np.arange(2, size - 2), 4, replace=False)[:2]:
        art[row, :] = True
    for col in rng.choice(np.arange(2, size - 2), 2, replace=False):
        vein[:, col] = True
    vein &= ~art
    fill_a = _sigmoid(t, t_ar, 1.0) * np.exp(-t / 400)
    fill_v = _sigmoid(t, t_ar + 5, 1.5) * np.exp(-t / 400)
    choroid = _sigmoid(t, t_ar - 1, 1.5) * (0.6 + 0.4 * np.exp(-t / 200))
    video = choroid[:, None, None] * background[None] + 0.7 * (
        fill_a[:, None, None] * art[None] + fill_v[:, None, None] * vein[None]
    )
    masks = {"vessels_art": art, "vessels_vein": vein, "fov": np.ones((size, size), bool)}
    cx, cy = rng.uniform(0.3, 0.7, 2) * size
    present: list[Finding] = []
    if diagnosis == "CSC":
        lesion = _disc(size, cx, cy, size / 12)
        grow = np.clip((t - 30) / 300, 0, 1)
        for k in range(frames):
            video[k] += 0.6 * grow[k] * _disc(size, cx, cy, size / 12 * (1 + 0.5 * grow[k]))
        masks["lesion_CSC_LEAK"] = lesion
        present.append(Finding("CSC_LEAK", onset_phase="venous"))
    elif diagnosis == "dryAMD":
        lesion = _disc(size, cx, cy, size / 8)
        video += 0.5 * (choroid * np.exp(-t / 60))[:, None, None] * lesion[None]
        masks["lesion_WINDOW_DEFECT"] = lesion
        present.append(Finding("WINDOW_DEFECT", onset_phase="arterial"))
    elif diagnosis == "DR":
        lesion = _disc(size, cx, cy, size / 7)
        video[:, lesion] *= 0.2
        masks["lesion_NPA"] = lesion
        for y, x in rng.integers(2, size - 2, (6, 2)):
            video[:, y, x] += 0.5 * fill_a
        present += [Finding("NPA", onset_phase="arterial"), Finding("MA", onset_phase="arterial")]
    else:
        present.append(Finding("NORMAL"))
    video = video + rng.normal(0, 0.01, video.shape)
    frames_u8 = np.clip(video * 255, 0, 255).astype(np.uint8)
    findings = Findings(eye=eye, present=tuple(present), diagnoses=(Diagnosis(diagnosis),))
    names = ", ".join(f.code for f in present)
    return Case(
        frames=frames_u8,
        times_s=[float(x) for x in t],
        phases=["arterial" if x < t_ar + 3 else "venous" if x < 60 else "late" for x in t],
        findings=findings,
        report=f"{eye}: {diagnosis} with {names} (case {seed}).",
        report_zh="",
        masks=masks,
        kinetics={"arm_retina_s": t_ar},
        anatomy={"lesion_center_px": [float(cx), float(cy)]},
        eye=eye,
        seed=seed,
    )
