"""Dye kinetics: one plasma input curve and the per-structure curves and arrival times derived from it.

Design reference §6.3 ("Option B"): the free-dye plasma curve is a gamma-variate mixture already in
display-linear fluorescence units (peak arterial first pass = 1), so no saturation step is needed. Every
structure sees the same curve shifted to its own arrival time and smeared by a unit-area gamma kernel whose
mean is that structure's transit dispersion (arteries 0.3 s, capillaries 1 s, veins ``venous_MTT``, choroid).
All curves are tabulated once per case on a 0.05 s grid (§6.4 step 1) and looked up with ``np.interp``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.signal import fftconvolve, lfilter

DT = 0.05  # s, grid step of the tabulated curves (§6.4)
U_MAX = 720.0  # s, longest local time tabulated (a 10-min angiogram plus margin)


@dataclass(frozen=True)
class Timing:
    """The circulation times of one eye (§6.2, seconds unless stated)."""

    arm_retina_s: float  # T_ar: dye first seen in the retinal arteries at the disc
    choroid_lead_s: float  # how far the choroidal flush leads the arteries
    v_art_mm_s: float  # arterial front speed
    cap_transit_s: float
    av_passage_s: float  # AVP: arterio-venous passage
    venous_mtt_s: float  # venous mean transit time (dispersion of the venous curve)
    v_vein_mm_s: float
    lam_lag_s: float  # lag of the laminar core behind the wall stream

    def as_dict(self) -> dict[str, float]:
        return {k: round(float(v), 4) for k, v in asdict(self).items()}


def sample_timing(rng: np.random.Generator, arm_delay_s: float = 0.0) -> Timing:
    """Draw a normal eye's circulation times (§6.2); ``arm_delay_s`` lengthens T_ar (arteriosclerosis)."""
    t_ar = float(np.clip(rng.normal(12.0, 1.5), 8.0, 18.0)) + arm_delay_s
    return Timing(
        arm_retina_s=t_ar,
        choroid_lead_s=float(rng.uniform(0.8, 2.0)),
        v_art_mm_s=float(rng.uniform(6.0, 12.0)),
        cap_transit_s=float(np.clip(rng.normal(1.0, 0.3), 0.4, 1.8)),
        av_passage_s=float(np.clip(rng.normal(1.5, 0.5), 0.6, 3.0)),
        venous_mtt_s=float(np.clip(rng.normal(4.0, 1.0), 2.5, 6.0)),
        v_vein_mm_s=float(rng.uniform(3.0, 5.0)),
        lam_lag_s=float(rng.uniform(1.5, 3.5)),  # §6.2 says 2-5 s; shorter keeps the venous 50 % time <= 6 s
    )


def _gamma_variate(u: np.ndarray, a: float, tp: float) -> np.ndarray:
    """g(u; a, tp) = (u/tp)^a exp(a (1 - u/tp)) for u > 0: peak 1 at u = tp (§6.3 Option B)."""
    x = np.clip(u, 0.0, None) / tp
    return np.where(u > 0, x**a * np.exp(a * (1.0 - x)), 0.0)


def plasma_curve(u: np.ndarray) -> np.ndarray:
    """Free-dye plasma fluorescence Cp(u), first-pass peak 1, u = 0 at its 10 % leading edge (§6.3 B).

    First pass g(u; 3, 4 s), a recirculation pass 12 s later, and a slow plateau that washes out with a
    6-minute half-life (fluorescein plus its weakly fluorescent glucuronide, §1.1).
    """
    # g(u; 3, 4) reaches 10 % of its peak at u0; shift so that edge sits at u = 0
    u = np.asarray(u, dtype=np.float64) + _LEAD_EDGE
    first = _gamma_variate(u, 3.0, 4.0)
    second = 0.3 * _gamma_variate(u - 12.0, 2.0, 8.0)
    plateau = (
        0.35
        * (1.0 - np.exp(-np.clip(u, 0, None) / 20.0))
        * np.exp(-np.clip(u, 0, None) * math.log(2) / 360.0)
    )
    return np.where(u > 0, first + second + plateau, 0.0) / _PEAK


def _lead_edge() -> float:
    u = np.arange(0.0, 4.0, 0.001)
    return float(u[np.argmax(_gamma_variate(u, 3.0, 4.0) >= 0.1)])


_LEAD_EDGE = _lead_edge()
_PEAK = 1.0
_PEAK = float(plasma_curve(np.arange(0.0, 60.0, 0.01)).max())  # normalise the first-pass peak to 1


def gamma_kernel(mean_s: float, shape: float = 3.0) -> np.ndarray:
    """Unit-area gamma kernel with the given mean, sampled on the DT grid (the ⊗ k(·) of §6.3)."""
    scale = mean_s / shape
    t = np.arange(0.0, mean_s * 6.0 + DT, DT)
    k = t ** (shape - 1) * np.exp(-t / scale)
    return k / k.sum()


class Curves:
    """Tabulated structure curves of one case, each a function of that structure's local time u (s).

    ``art``, ``cap``, ``vein``, ``chor`` are Cp smeared by the structure's kernel; ``stroma`` is the slowly
    fading choroidal stromal extravasation E (E' = k_ex Cp - k_wo E); ``integral`` is ∫Cp, the dye delivered so
    far, which drives leakage, pooling and staining amplitudes.
    """

    def __init__(self, timing: Timing, k_ex: float = 0.012, k_wo: float = 0.006) -> None:
        self.u = np.arange(0.0, U_MAX, DT)
        cp = plasma_curve(self.u)
        self.cp = cp
        self.art = self._smear(cp, 0.3)
        self.cap = self._smear(cp, 1.0)
        # the venous transit's shifts (capillaries, AV passage, path) are arrival delays; the kernel keeps
        # the remaining dispersion, about half the mean transit time
        self.vein = self._smear(cp, 0.5 * timing.venous_mtt_s)
        self.chor = self._smear(cp, 1.0)
        # E' = k_ex Cp - k_wo E by explicit Euler (exact enough at DT = 0.05 s for rates near 0.01 /s)
        stroma = lfilter([0.0, DT * k_ex], [1.0, -(1.0 - DT * k_wo)], self.chor)
        self.stroma = stroma / max(float(stroma.max()), 1e-9)
        self.integral = np.cumsum(cp) * DT

    @staticmethod
    def _smear(cp: np.ndarray, mean_s: float) -> np.ndarray:
        return fftconvolve(cp, gamma_kernel(mean_s))[: len(cp)]

    def at(self, name: str, u: np.ndarray | float) -> np.ndarray:
        """The curve ``name`` at local times u (0 before arrival)."""
        table: np.ndarray = getattr(self, name)
        return np.interp(u, self.u, table, left=0.0, right=float(table[-1]))

    def saturating(self, u: np.ndarray | float, rate: float) -> np.ndarray:
        """1 - exp(-rate ∫Cp): a non-decreasing 0..1 fill fraction driven by delivered dye (leak, pool, stain)."""
        return 1.0 - np.exp(-rate * self.at("integral", u))


def phase_of(t: float, arm_retina_s: float) -> str:
    """Phase label (ontology PHASES) of a time after injection, anchored to T_ar (§1.2, §1.5)."""
    rel = t - arm_retina_s
    if rel < 0.0:
        return "choroidal"
    if rel < 1.5:
        return "arterial"
    if rel < 5.0:
        return "early_AV"
    if rel < 15.0:
        return "late_AV"
    if t < max(40.0, arm_retina_s + 25.0):
        return "venous"
    if t < 300.0:
        return "mid"
    return "late"


def timing_summary(timing: Timing, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The timing dict stored with a case (§6.7 ``timing``), plus derived figures."""
    out: dict[str, Any] = timing.as_dict()
    out["venous_complete_s"] = round(
        timing.arm_retina_s + timing.av_passage_s + timing.venous_mtt_s + timing.lam_lag_s + 4.0, 3
    )
    out.update(extra or {})
    return out
