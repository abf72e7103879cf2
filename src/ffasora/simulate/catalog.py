"""One builder per finding code: geometry and kinetic constants of each lesion (design reference §6.5).

``build_lesion(ctx, code, params)`` returns the ``Lesion`` of one planned sign. Builders that depend on
another sign read it from ``ctx.state`` (NVE and IRMA sit on the border of non-perfusion, a CSC leak sits in
its detachment), so the case planner orders signs accordingly (``cases.ORDER``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from ffasora.simulate.anatomy import DD_MM, Anatomy, band_noise
from ffasora.simulate.kinetics import Timing
from ffasora.simulate.lesions import (
    INTRA,
    PRE,
    RETINA,
    SUB,
    Additive,
    Delay,
    Leak,
    Lesion,
    Pool,
    blob,
    dots,
    ellipse,
    front_from_point,
    polar,
    random_curve,
    random_points,
    ring_of,
    sector_point,
    smokestack_front,
    tuft,
)
from ffasora.simulate.vessels import QUADRANTS

VISIBLE = 0.15  # vessel weight above which a vessel pixel belongs to a vessel territory
COUNTS = {"single": (1, 1), "few": (2, 5), "multiple": (6, 20), "numerous": (21, 80)}


@dataclass
class Ctx:
    an: Anatomy
    rng: np.random.Generator
    timing: Timing
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def t_ar(self) -> float:
        return self.timing.arm_retina_s

    def px(self, mm: float) -> float:
        return mm * self.an.to_px


def _n(ctx: Ctx, params: dict[str, Any], default: str) -> int:
    lo, hi = COUNTS[params.get("count_bucket", default)]
    return int(ctx.rng.integers(lo, hi + 1))


def _quads(params: dict[str, Any], default: tuple[str, ...]) -> list[int]:
    return [QUADRANTS.index(s) for s in params.get("sectors", default)]


def _cap_arrival(ctx: Ctx, c: np.ndarray) -> float:
    px = np.clip(ctx.an.mm_to_px(c).astype(int), 0, ctx.an.size - 1)
    return ctx.t_ar + float(ctx.an.cap_delay_s[px[1], px[0]]) + ctx.timing.cap_transit_s


# --------------------------------------------------------------------------------------- intravascular (IV)


def microaneurysms(ctx: Ctx, p: dict[str, Any]) -> Lesion:
    n = _n(ctx, p, "multiple")
    npa = ctx.state.get("npa")
    pts = random_points(ctx.rng, n, 0.6, 3.6, temporal_bias=0.5)
    if npa is not None and n > 4:  # some sit on the border of non-perfusion (§6.5 placement rule)
        border = np.argwhere(ring_of(npa, 2))
        if len(border):
            pick = border[ctx.rng.integers(0, len(border), n // 3)]
            pts[: n // 3] = (pick[:, ::-1] - ctx.an.fovea_px) / ctx.an.to_px
    w = np.clip(dots(ctx.an, pts, 0.03) * 1.6, 0, 1.6)
    leaky = ctx.rng.random(n) < 0.3
    les = Lesion("MA", "IV", w > 0.3, _cap_arrival(ctx, np.zeros(2)), attrs={"count": n})
    les.additive.append(Additive(weight=w, curve="cap", arrival_s=les.onset_s))
    if leaky.any():
        src = np.clip(dots(ctx.an, pts[leaky], 0.03), 0, 1)
        les.leaks.append(
            Leak(source=src, onset_s=ctx.t_ar + 20.0, amp=0.35, rate=0.08, sigma0_mm=0.03, d_mm2_min=0.002)
        )
    return les


def macroaneurysm(ctx: Ctx, p: dict[str, Any]) -> Lesion:
    an = ctx.an
    seen = (an.art.weight > VISIBLE) & an.fov
    cand = np.argwhere(seen & (an.art.s > 2.0) & (an.art.s < 5.0))
    if len(cand) == 0:
        cand = np.argwhere(seen | an.fov)
    i, j = cand[ctx.rng.integers(len(cand))]
    c = (np.array([j, i]) - an.fovea_px) / an.to_px
    r = ctx.rng.uniform(0.12, 0.2)
    sac = ellipse(an, c, r, r * 0.85)
    ring = ellipse(an, c, r * 3.0, r * 2.6) * (1 - sac)
    onset = ctx.t_ar + float(an.art.s[i, j]) / ctx.timing.v_art_mm_s
    les = Lesion("MACROANEURYSM", "IV", (sac + ring) > 0.4, onset)
    les.additive.append(Additive(weight=sac * 1.3, curve="art", arrival_s=onset))
    les.block[INTRA] = 1.0 - 0.75 * ring
    les.leaks.append(
        Leak(source=sac, onset_s=onset + 5.0, amp=0.5, rate=0.05, sigma0_mm=0.08, d_mm2_min=0.01)
    )
    return les


def irma(ctx: Ctx, p: dict[str, Any]) -> Lesion:
    npa = ctx.state.get("npa")
    w = np.zeros((ctx.an.size,) * 2, np.float32)
    border = np.argwhere(ring_of(npa, 3)) if npa is not None else np.zeros((0, 2))
    for _ in range(int(ctx.rng.integers(3, 8))):
        if len(border):
            i, j = border[ctx.rng.integers(len(border))]
            start = (np.array([j, i]) - ctx.an.fovea_px) / ctx.an.to_px
        else:
            start = random_points(ctx.rng, 1, 2.5, 4.5)[0]
        w = np.maximum(w, random_curve(ctx.an, ctx.rng, start, ctx.rng.uniform(0.6, 1.5), 0.5))
    les = Lesion("IRMA", "IV", w > 0.25, _cap_arrival(ctx, np.zeros(2)))
    les.additive.append(Additive(weight=w * 0.9, curve="cap", arrival_s=les.onset_s))
    return les


def _vessel_territory(ctx: Ctx, code: str, kind: str, quads: list[int], onset: float) -> Lesion:
    vm = ctx.an.vein if kind == "vein" else ctx.an.art
    mask = (vm.weight > VISIBLE) & np.isin(vm.quadrant, quads)
    return Lesion(code, "IV" if code != "VEN_DELAY" else "DF", mask, onset, attrs={"quadrants": quads})


def vein_dilated(ctx: Ctx, p: dict[str, Any]) -> Lesion:
    # the radius/tortuosity edit itself happened while growing the trees (cases.vessel_edits)
    return _vessel_territory(ctx, "VEIN_DILATED_TORTUOUS", "vein", _quads(p, QUADRANTS), ctx.t_ar + 5.0)


def venous_beading(ctx: Ctx, p: dict[str, Any]) -> Lesion:
    les = _vessel_territory(ctx, "VENOUS_BEADING", "vein", _quads(p, QUADRANTS[:2]), ctx.t_ar + 5.0)
    les.footprint &= ctx.an.vein.s > 2.0
    return les


def collateral(ctx: Ctx, p: dict[str, Any]) -> Lesion:
    w = np.zeros((ctx.an.size,) * 2, np.float32)
    for _ in range(int(ctx.rng.integers(2, 5))):
        start = np.array([ctx.rng.uniform(-4.0, -1.5), ctx.rng.uniform(-0.6, 0.6)])
        w = np.maximum(w, random_curve(ctx.an, ctx.rng, start, ctx.rng.uniform(1.0, 2.0), 0.35))
    onset = ctx.t_ar + ctx.timing.av_passage_s + 3.0
    les = Lesion("COLLATERAL", "IV", w > 0.25, onset)
    les.additive.append(Additive(weight=w * 0.8, curve="vein", arrival_s=onset))
    return les


def _neovascular(ctx: Ctx, code: str, c: np.ndarray, radius: float) -> Lesion:
    w = tuft(ctx.an, ctx.rng, c, radius, int(ctx.rng.integers(10, 30)))
    onset = ctx.t_ar + 0.8  # fills with the arteries (§3.1)
    les = Lesion(code, "IV", w > 0.2, onset, attrs={"extent_dd": 2 * radius / DD_MM})
    les.additive.append(Additive(weight=w * 1.2, curve="art", arrival_s=onset))
    # profuse, increasing leakage that hides the architecture late (§3.1; D 0.02-0.05 mm²/min)
    les.leaks.append(
        Leak(
            source=np.clip(w, 0, 1),
            onset_s=onset + 2.0,
            amp=1.1,
            rate=0.1,
            sigma0_mm=0.05,
            d_mm2_min=ctx.rng.uniform(0.03, 0.06),
        )
    )
    return les


def nvd(ctx: Ctx, p: dict[str, Any]) -> Lesion:
    c = ctx.an.disc_mm + ctx.rng.normal(0, 0.2, 2)
    return _neovascular(ctx, "NVD", c, ctx.rng.uniform(0.5, 0.9))


def nve(ctx: Ctx, p: dict[str, Any]) -> Lesion:
    npa = ctx.state.get("npa")
    border = np.argwhere(ring_of(npa, 2) & ctx.an.fov) if npa is not None else np.zeros((0, 2))
    if len(border):
        i, j = border[ctx.rng.integers(len(border))]
        c = (np.array([j, i]) - ctx.an.fovea_px) / ctx.an.to_px
    else:
        c = sector_point(ctx.rng, str(ctx.rng.choice(list(QUADRANTS[:2]))), 3.0, 4.5)
    return _neovascular(ctx, "NVE", c, ctx.rng.uniform(0.35, 0.7))


def telangiectasia(ctx: Ctx, p: dict[str, Any]) -> Lesion:
    an, rng = ctx.an, ctx.rng
    c = sector_point(rng, p.get("sector", "inferotemporal"), 4.0, 5.0)
    w = np.zeros((an.size,) * 2, np.float32)
    for _ in range(int(rng.integers(8, 16))):
        w = np.maximum(w, random_curve(an, rng, polar(c, rng.uniform(0, 1.0), rng.uniform(0, 6.3)), 0.8, 0.7))
    bulbs = polar(c, 0.0, 0.0) + rng.normal(0, 0.6, (int(rng.integers(4, 10)), 2))
    w = np.maximum(w, np.clip(dots(an, bulbs, 0.06) * 1.5, 0, 1.3))
    onset = _cap_arrival(ctx, c)
    les = Lesion("TELANGIECTASIA", "IV", w > 0.25, onset)
    les.additive.append(Additive(weight=w, curve="cap", arrival_s=onset))
    les.leaks.append(
        Leak(source=np.clip(w, 0, 1), onset_s=onset + 4.0, amp=0.8, rate=0.06, sigma0_mm=0.06, d_mm2_min=0.02)
    )
    ctx.state["telangiectasia_c"] = c
    return les


# -------------------------------------------------------------------------------------- non-perfusion (NP)


def npa(ctx: Ctx, p: dict[str, Any]) -> Lesion:
    an, rng = ctx.an, ctx.rng
    area_da = float(p.get("area_da", rng.uniform(3, 15)))
    quads = p.get("sectors", (str(rng.choice(QUADRANTS[:2])),))
    mask = np.zeros((an.size,) * 2, bool)
    per = area_da * np.pi * (DD_MM / 2) ** 2 / len(quads)
    for sector in quads:
        r = float(np.sqrt(per / np.pi))
        c = sector_point(rng, sector, 3.2 + 0.5 * r, 4.5 + 0.5 * r, an.disc_mm)
        mask |= blob(an, rng, c, r, 0.25)
    mask &= ~(an.disc > 0.1)
    smooth = ndimage.gaussian_filter(mask.astype(np.float32), max(0.5, ctx.px(0.12)))
    scale = 1.0 - smooth + 0.5 * ring_of(mask, max(1, int(ctx.px(0.1))))  # border capillaries dilated (§6.3)
    les = Lesion("NPA", "NP", mask, ctx.t_ar + 3.0, cap_scale=scale.astype(np.float32))
    les.attrs["prune"] = mask  # terminal arterioles / venules pruned inside the region
    ctx.state["npa"] = mask if "npa" not in ctx.state else ctx.state["npa"] | mask
    return les


def faz_enlarged(ctx: Ctx, p: dict[str, Any]) -> Lesion:
    # the enlarged, ragged FAZ itself comes from the anatomy (faz_scale); report it from the mask
    return Lesion("FAZ_ENLARGED", "NP", ctx.an.faz.copy(), ctx.t_ar + 3.0)


# ------------------------------------------------------------------------------------------ leakage (LK)


def leak_focal(ctx: Ctx, p: dict[str, Any]) -> Lesion:
    n = _n(ctx, p, "few")
    pts = random_points(ctx.rng, n, 0.6, 2.5, temporal_bias=0.4)
    src = np.clip(dots(ctx.an, pts, 0.05), 0, 1)
    onset = ctx.t_ar + ctx.rng.uniform(3, 10)
    les = Lesion("LEAK_FOCAL", "LK", src > 0.3, onset, attrs={"count": n})
    les.leaks.append(Leak(source=src, onset_s=onset, amp=0.9, rate=0.05, sigma0_mm=0.05, d_mm2_min=0.01))
    return les


def leak_diffuse(ctx: Ctx, p: dict[str, Any]) -> Lesion:
    an = ctx.an
    a = ctx.rng.uniform(0.6, 1.4) * DD_MM
    field_ = ellipse(an, ctx.rng.normal(0, 0.3, 2), a, a * ctx.rng.uniform(0.7, 1.0), soft_mm=0.5)
    src = field_ * np.clip(0.6 + 0.4 * band_noise(ctx.rng, an.size, ctx.px(0.15) + 0.5), 0, 1)
    onset = max(45.0, ctx.t_ar + 20.0)
    les = Lesion("LEAK_DIFFUSE", "LK", field_ > 0.3, onset)
    les.leaks.append(
        Leak(source=src.astype(np.float32), onset_s=onset, amp=0.6, rate=0.03, sigma0_mm=0.1, d_mm2_min=0.01)
    )
    return les


def capillary_leak(ctx: Ctx, p: dict[str, Any]) -> Lesion:
    an = ctx.an
    field_ = ellipse(an, np.array([0.8, 0.0]), 4.5, 3.5, soft_mm=1.0)
    src = np.clip(an.capillary * field_, 0, 1).astype(np.float32)
    onset = max(50.0, ctx.t_ar + 30.0)
    les = Lesion("CAPILLARY_LEAK", "LK", field_ > 0.5, onset)
    les.leaks.append(Leak(source=src, onset_s=onset, amp=0.45, rate=0.03, sigma0_mm=0.04, d_mm2_min=0.01))
    return les


def disc_leak(ctx: Ctx, p: dict[str, Any]) -> Lesion:
    onset = ctx.t_ar + 1.0
    les = Lesion("DISC_LEAK", "LK", ctx.an.disc > 0.5, onset)
    les.leaks.append(
        Leak(source=ctx.an.disc.copy(), onset_s=onset, amp=0.9, rate=0.04, sigma0_mm=0.1, d_mm2_min=0.03)
    )
    return les


def vessel_wall_stain(ctx: Ctx, p: dict[str, Any]) -> Lesion:
    an, rng = ctx.an, ctx.rng
    vein = (an.vein.weight > VISIBLE) & (an.vein.s > 1.5)
    seg = np.zeros_like(vein)
    for _ in range(int(rng.integers(2, 6))):
        q = int(rng.integers(0, 4))
        s0 = rng.uniform(2.0, 6.0)
        seg |= vein & (an.vein.quadrant == q) & (an.vein.s > s0) & (an.vein.s < s0 + rng.uniform(1.0, 2.5))
    cuff = ndimage.binary_dilation(seg, iterations=max(1, int(ctx.px(0.04)))).astype(np.float32)
    cuff = ndimage.gaussian_filter(cuff, 0.6)
    onset = max(40.0, ctx.t_ar + 25.0)
    les = Lesion("VESSEL_WALL_STAIN", "ST", cuff > 0.3, onset)
    les.additive.append(Additive(weight=cuff * 0.5, curve="stain", arrival_s=onset, rate=0.04))
    les.leaks.append(
        Leak(source=cuff, onset_s=onset + 30.0, amp=0.2, rate=0.03, sigma0_mm=0.05, d_mm2_min=0.01)
    )
    return les


# ------------------------------------------------------------------------------------------ pooling (PL)


def cme(ctx: Ctx, p: dict[str, Any]) -> Lesion:
    an, rng = ctx.an, ctx.rng
    petals = np.zeros((an.size,) * 2, np.float32)
    n = int(rng.integers(6, 13))
    r_out = rng.uniform(0.5, 1.0) * DD_MM
    for k in range(n):
        ang = 2 * np.pi * k / n + rng.normal(0, 0.1)
        c = polar((0, 0), ctx.an.faz_radius_mm + 0.45 * r_out, ang)
        petals = np.maximum(petals, ellipse(an, c, 0.45 * r_out, 0.14 * r_out, ang))
    comp = petals > 0.15
    petals = ndimage.gaussian_filter(petals, max(0.6, ctx.px(0.05))) * (
        0.7 + 0.3 * band_noise(rng, an.size, 1.0).clip(-1, 1)
    )
    onset = max(180.0, ctx.t_ar + 160.0) + rng.uniform(0, 60)  # CME fills late (>= 3 min, §6.3)
    front = np.where(comp, onset + 60.0 * np.clip(an.dist_mm((0, 0)) / r_out, 0, 1), np.inf).astype(
        np.float32
    )
    les = Lesion("CME", "PL", comp, onset)
    les.pools.append(
        Pool(
            compartment=comp,
            front_s=front,
            amp=0.7,
            rate=0.03,
            depth=RETINA,
            weight=np.clip(petals, 0, 1) * comp,
        )
    )
    return les


def _srd(ctx: Ctx, c_leak: np.ndarray) -> np.ndarray:
    """Serous retinal detachment compartment: ellipse 1-3 DD covering the fovea with p = 0.8 (§6.5)."""
    rng = ctx.rng
    a = rng.uniform(0.5, 1.3) * DD_MM
    centre = 0.5 * c_leak if rng.random() < 0.8 else c_leak
    comp = ellipse(ctx.an, centre, a, a * rng.uniform(0.7, 0.95), rng.uniform(0, np.pi)) > 0.5
    comp |= ctx.an.dist_mm(c_leak) < 0.25
    return comp


def csc_leak(ctx: Ctx, p: dict[str, Any]) -> Lesion:
    rng = ctx.rng
    sector = rng.choice(
        ["superonasal", "inferonasal", "superotemporal", "inferotemporal"], p=[0.38, 0.24, 0.22, 0.16]
    )
    c = sector_point(rng, str(sector), 0.5, 1.5)
    comp = _srd(ctx, c)
    ctx.state["srd"], ctx.state["csc_point"] = comp, c
    subtype = p.get("subtype", "ink_blot" if rng.random() < 0.9 else "smokestack")
    onset = ctx.t_ar + rng.uniform(3, 8)
    if subtype == "smokestack":
        top = float(ctx.an.y_mm[comp].min()) + 0.1
        front = smokestack_front(ctx.an, c, top, onset, rng.uniform(0.006, 0.017), 0.08)  # 0.3-1 mm/min
        region = comp & (front <= onset + 400.0)
    else:
        reach = float(ctx.an.dist_mm(c)[comp].max())
        front = front_from_point(ctx.an, c, onset, 0.06, reach / np.sqrt(rng.uniform(400.0, 900.0)))
        region = comp & (front <= onset + 600.0)
    front = np.where(region, front, np.inf).astype(np.float32)
    les = Lesion("CSC_LEAK", "LK", region, onset, subtype=subtype)
    les.pools.append(Pool(compartment=region, front_s=front, amp=1.2, rate=0.06, depth=SUB))
    return les


def pool_srd(ctx: Ctx, p: dict[str, Any]) -> Lesion:
    comp = ctx.state.get("srd")
    c = ctx.state.get("csc_point")
    if comp is None or c is None:
        c = sector_point(ctx.rng, "superonasal", 0.5, 1.5)
        comp = _srd(ctx, c)
    onset = max(40.0, ctx.t_ar + 30.0)
    reach = float(ctx.an.dist_mm(c)[comp].max()) if comp.any() else 1.0
    speed = reach / np.sqrt(ctx.rng.uniform(200.0, 300.0))  # the whole detachment pools by ~5 min (§6.8 #10)
    front = np.where(comp, front_from_point(ctx.an, c, onset, 0.1, speed), np.inf).astype(np.float32)
    les = Lesion("POOL_SRD", "PL", comp, onset)
    les.pools.append(Pool(compartment=comp, front_s=front, amp=0.5, rate=0.02, depth=SUB))
    return les


def pool_ped(ctx: Ctx, p: dict[str, Any]) -> Lesion:
    rng = ctx.rng
    r = rng.uniform(0.25, 1.0) * DD_MM
    c = random_points(rng, 1, 0.3, 2.0)[0]
    comp = ellipse(ctx.an, c, r, r * rng.uniform(0.85, 1.0), soft_mm=0.02) > 0.5
    onset = ctx.t_ar - ctx.timing.choroid_lead_s + rng.uniform(1, 4)
    front = np.where(comp, onset + rng.uniform(10, 30), np.inf).astype(np.float32)  # whole dome at once
    les = Lesion("POOL_PED", "PL", comp, onset, attrs={"extent_dd": 2 * r / DD_MM})
    les.pools.append(Pool(compartment=comp, front_s=front, amp=0.8, rate=0.15, depth=SUB))
    return les


def pinpoint_leaks(ctx: Ctx, p: dict[str, Any]) -> Lesion:
    an, rng = ctx.an, ctx.rng
    pts = random_points(rng, int(rng.integers(15, 40)), 0.3, 3.0)
    src = np.clip(dots(an, pts, 0.04), 0, 1)
    comp = np.zeros((an.size,) * 2, bool)
    front = np.full((an.size,) * 2, np.inf, np.float32)
    onset = ctx.t_ar + rng.uniform(4, 10)
    for q in pts[: max(2, len(pts) // 6)]:  # multilobular pools (VKH, §3.1)
        lob = ellipse(an, q, rng.uniform(0.3, 0.7), rng.uniform(0.25, 0.5), rng.uniform(0, 3)) > 0.5
        comp |= lob
        front = np.minimum(front, np.where(lob, front_from_point(an, q, onset + 60, 0.05, 0.03), np.inf))
    les = Lesion("PINPOINT_LEAKS", "LK", (src > 0.3) | comp, onset, attrs={"count": len(pts)})
    les.leaks.append(
        Leak(source=src, onset_s=onset, amp=0.8, rate=0.06, sigma0_mm=0.04, d_mm2_min=0.008, depth=SUB)
    )
    les.pools.append(Pool(compartment=comp, front_s=front.astype(np.float32), amp=0.6, rate=0.03, depth=SUB))
    return les


# ------------------------------------------------------------------------------------------------- CNV


def _cnv_centre(ctx: Ctx) -> np.ndarray:
    u = ctx.rng.random()
    r = 0.0 if u < 0.6 else (ctx.rng.uniform(0.1, 0.2) * 1.0 if u < 0.85 else ctx.rng.uniform(0.3, 1.0))
    return polar((0, 0), r, ctx.rng.uniform(0, 2 * np.pi))


def cnv_classic(ctx: Ctx, p: dict[str, Any]) -> Lesion:
    an, rng = ctx.an, ctx.rng
    c = _cnv_centre(ctx)
    r = np.sqrt(rng.uniform(0.5, 3.0) * np.pi * (DD_MM / 2) ** 2 / np.pi)
    net = tuft(an, rng, c, r, int(rng.integers(14, 30))) * ellipse(an, c, r, r)
    rim = np.clip(ellipse(an, c, r * 1.35, r * 1.35) - ellipse(an, c, r, r), 0, 1)
    onset = ctx.t_ar - 0.5 * ctx.timing.choroid_lead_s  # choroidal-arterial filling (§3.1)
    les = Lesion("CNV_CLASSIC", "IV", (net > 0.2) | (ellipse(an, c, r, r) > 0.5), onset)
    les.additive.append(Additive(weight=net * 0.9, curve="chor", arrival_s=onset, depth=SUB))
    les.block[SUB] = 1.0 - 0.6 * rim  # hypofluorescent rim of blood/pigment
    les.leaks.append(
        Leak(
            source=np.clip(net, 0, 1),
            onset_s=onset + 3.0,
            amp=1.2,
            rate=0.08,
            sigma0_mm=0.06,
            d_mm2_min=0.02,
            depth=SUB,
        )
    )
    return les


def cnv_occult(ctx: Ctx, p: dict[str, Any]) -> Lesion:
    an, rng = ctx.an, ctx.rng
    c = _cnv_centre(ctx)
    r = np.sqrt(rng.uniform(1.0, 6.0)) * DD_MM / 2
    patch = blob(an, rng, c, r, 0.35)
    stipple = patch * np.clip(0.5 + 0.5 * band_noise(rng, an.size, max(0.5, ctx.px(0.04))), 0, 1)
    subtype = p.get("subtype", "fibrovascular_PED" if rng.random() < 0.4 else "late_leakage")
    onset = max(60.0, ctx.t_ar + 50.0) if subtype == "fibrovascular_PED" else max(120.0, ctx.t_ar + 100.0)
    les = Lesion("CNV_OCCULT", "LK", patch, onset, subtype=subtype)
    les.additive.append(
        Additive(
            weight=stipple.astype(np.float32) * 0.8, curve="stain", arrival_s=onset, depth=SUB, rate=0.04
        )
    )
    les.leaks.append(
        Leak(
            source=stipple.astype(np.float32),
            onset_s=onset,
            amp=0.5,
            rate=0.03,
            sigma0_mm=0.08,
            d_mm2_min=0.006,
            depth=SUB,
        )
    )
    return les


# ------------------------------------------------------------------------------------ staining / window


def stain_scar(ctx: Ctx, p: dict[str, Any]) -> Lesion:
    an, rng = ctx.an, ctx.rng
    scar = blob(an, rng, _cnv_centre(ctx), rng.uniform(0.6, 1.2), 0.3)
    w = ndimage.gaussian_filter(scar.astype(np.float32), 0.8)
    onset = max(60.0, ctx.t_ar + 40.0)
    les = Lesion("STAIN_SCAR", "ST", scar, onset)
    les.additive.append(Additive(weight=w * 1.0, curve="stain", arrival_s=onset, depth=SUB, rate=0.035))
    les.block[SUB] = 1.0 - 0.5 * w * (band_noise(rng, an.size, 1.0) > 0.8)
    return les


def drusen(ctx: Ctx, p: dict[str, Any]) -> Lesion:
    an, rng = ctx.an, ctx.rng
    n = int(rng.integers(12, 80))
    pts = random_points(rng, n, 0.2, 2.2)
    size = rng.uniform(0.03, 0.1, n)
    w = np.clip(dots(an, pts, float(np.mean(size))) * 1.2, 0, 1)
    soft = rng.random() < 0.5
    les = Lesion("DRUSEN", "WD", w > 0.3, ctx.t_ar - 1.0, subtype=None, attrs={"count": n, "soft": soft})
    les.window = w * 0.8
    if soft:  # soft / confluent drusen stain faintly late (§3.1)
        les.additive.append(
            Additive(
                weight=w * 0.35, curve="stain", arrival_s=max(60.0, ctx.t_ar + 40.0), depth=SUB, rate=0.02
            )
        )
    return les


def window_defect(ctx: Ctx, p: dict[str, Any]) -> Lesion:
    an, rng = ctx.an, ctx.rng
    mask = np.zeros((an.size,) * 2, bool)
    if p.get("pattern") == "tract":  # chronic CSC gravitational tract, running downwards
        c = sector_point(rng, "superonasal", 0.3, 1.0)
        mask |= ellipse(an, c + [0, 1.2], 0.25, 1.3, rng.normal(0, 0.15)) > 0.5
    else:  # geographic atrophy: lobulated perifoveal patches
        for _ in range(int(rng.integers(1, 4))):
            mask |= blob(an, rng, random_points(rng, 1, 0.4, 1.6)[0], rng.uniform(0.35, 0.8), 0.3)
    w = ndimage.gaussian_filter(mask.astype(np.float32), 0.7)
    les = Lesion("WINDOW_DEFECT", "WD", mask, ctx.t_ar - ctx.timing.choroid_lead_s)
    les.window = w
    return les


def laser_scars(ctx: Ctx, p: dict[str, Any]) -> Lesion:
    an, rng = ctx.an, ctx.rng
    subtype = p.get("subtype", "PRP")
    step = rng.uniform(0.45, 0.6) if subtype == "PRP" else 0.2
    xs = np.arange(-8.0, 10.0, step)
    ys = np.arange(-8.0, 8.0, step * 0.866)
    gx, gy = np.meshgrid(xs, ys)
    gx = gx + (np.arange(len(ys))[:, None] % 2) * step / 2
    pts = np.stack([gx.ravel(), gy.ravel()], 1) + rng.normal(0, 0.03, (gx.size, 2))
    r = np.hypot(*pts.T)
    disc_d = np.hypot(*(pts - an.disc_mm).T)
    # PRP lies beyond the arcades sparing the disc; grid/focal burns sit in the macula sparing the FAZ
    keep = (r > 4.2) & (disc_d > 1.8) if subtype == "PRP" else (r > 0.6) & (r < 1.8)
    keep &= rng.random(len(pts)) < 0.8
    pts = pts[keep]
    burn = 0.12 if subtype == "PRP" else 0.04
    core = np.clip(dots(an, pts, burn * 0.5) * 1.0, 0, 1)
    spot = np.clip(dots(an, pts, burn) * 1.3, 0, 1)
    rim = np.clip(spot - core, 0, 1)
    les = Lesion(
        "LASER_SCARS", "WD", spot > 0.3, ctx.t_ar - 1.0, subtype=subtype, attrs={"count": int(keep.sum())}
    )
    les.block[SUB] = 1.0 - 0.7 * core  # pigmented centre
    les.window = rim
    les.additive.append(
        Additive(weight=spot * 0.4, curve="stain", arrival_s=max(60.0, ctx.t_ar + 60.0), depth=SUB, rate=0.02)
    )
    return les


# ---------------------------------------------------------------------------------------- blockage (BL)


def heme_block(ctx: Ctx, p: dict[str, Any]) -> Lesion:
    an, rng = ctx.an, ctx.rng
    subtype = p.get("subtype", "blot")
    n = _n(ctx, p, "multiple") if subtype != "preretinal" else 1
    sectors = p.get("sectors")
    tau = np.ones((an.size,) * 2, np.float32)
    for k in range(n):
        if sectors:
            c = sector_point(rng, sectors[k % len(sectors)], 1.0, 5.0, an.disc_mm)
        else:
            c = random_points(rng, 1, 0.8, 5.0)[0]
        if subtype == "flame":  # elongated along the nerve fibres, radial from the disc
            d = c - an.disc_mm
            e = ellipse(an, c, rng.uniform(0.2, 0.4), rng.uniform(0.05, 0.1), float(np.arctan2(d[1], d[0])))
        elif subtype == "preretinal":
            r = rng.uniform(0.6, 1.2)
            e = ellipse(an, c, r, r * 0.8) * (an.y_mm > c[1] - 0.6 * r)  # flat fluid level on top
        else:
            r = rng.uniform(0.05, 0.18)
            e = ellipse(an, c, r, r * rng.uniform(0.6, 1.0), rng.uniform(0, np.pi))
        tau = np.minimum(tau, 1.0 - rng.uniform(0.6, 0.9) * e)
    depth = PRE if subtype == "preretinal" else (SUB if subtype == "subretinal" else INTRA)
    les = Lesion("HEME_BLOCK", "BL", tau < 0.75, 0.0, subtype=subtype, attrs={"count": n})
    les.block[depth] = tau
    return les


def exudate_block(ctx: Ctx, p: dict[str, Any]) -> Lesion:
    an, rng = ctx.an, ctx.rng
    c = random_points(rng, 1, 0.8, 2.0, temporal_bias=0.7)[0]
    ang = rng.uniform(0, 2 * np.pi, 40)
    rr = rng.normal(0.6, 0.1, 40)  # circinate ring
    pts = c + np.stack([rr * np.cos(ang), rr * np.sin(ang)], 1)
    w = np.clip(dots(an, pts, 0.04) * 1.5, 0, 1)
    les = Lesion("EXUDATE_BLOCK", "BL", w > 0.3, 0.0)
    les.block[INTRA] = 1.0 - 0.35 * w  # hard exudate blocks partially (τ 0.6-0.8, §6.3)
    return les


def pigment_block(ctx: Ctx, p: dict[str, Any]) -> Lesion:
    an, rng = ctx.an, ctx.rng
    pts = random_points(rng, int(rng.integers(3, 12)), 0.3, 2.5)
    w = np.clip(dots(an, pts, 0.06) * 1.4, 0, 1)
    les = Lesion("PIGMENT_BLOCK", "BL", w > 0.3, 0.0)
    les.block[SUB] = 1.0 - 0.7 * w
    return les


# -------------------------------------------------------------------------------------- delayed filling


def art_delay(ctx: Ctx, p: dict[str, Any]) -> Lesion:
    quads = _quads(p, QUADRANTS)
    delay = float(p.get("delay_s", ctx.rng.uniform(8, 25)))
    les = _vessel_territory(ctx, "ART_DELAY", "art", quads, ctx.t_ar + delay)
    les.kinetic_class = "DF"
    les.delay = Delay(art=dict.fromkeys(quads, delay), boxcar=bool(ctx.rng.random() < 0.5))
    les.attrs["delay_s"] = delay
    return les


def ven_delay(ctx: Ctx, p: dict[str, Any]) -> Lesion:
    quads = _quads(p, QUADRANTS)
    delay = float(p.get("delay_s", ctx.rng.uniform(6, 18)))
    les = _vessel_territory(ctx, "VEN_DELAY", "vein", quads, ctx.t_ar + delay)
    les.delay = Delay(vein=dict.fromkeys(quads, delay))
    les.attrs["delay_s"] = delay
    return les


def chor_fill_defect(ctx: Ctx, p: dict[str, Any]) -> Lesion:
    an, rng = ctx.an, ctx.rng
    region = blob(an, rng, random_points(rng, 1, 1.0, 3.5)[0], rng.uniform(0.8, 1.5), 0.3)
    ids = np.unique(an.lobule[region])
    extra = np.zeros(an.n_lobules, np.float32)
    gain = np.ones(an.n_lobules, np.float32)
    extra[ids] = rng.uniform(6, 15)
    gain[ids] = rng.uniform(0.5, 0.8)
    mask = np.isin(an.lobule, ids)
    les = Lesion("CHOR_FILL_DEFECT", "DF", mask, ctx.t_ar - ctx.timing.choroid_lead_s)
    les.delay = Delay(lobules=extra, lobule_gain=gain)
    return les


BUILDERS: dict[str, Callable[[Ctx, dict[str, Any]], Lesion]] = {
    "ART_DELAY": art_delay,
    "VEN_DELAY": ven_delay,
    "CHOR_FILL_DEFECT": chor_fill_defect,
    "MA": microaneurysms,
    "HEME_BLOCK": heme_block,
    "EXUDATE_BLOCK": exudate_block,
    "PIGMENT_BLOCK": pigment_block,
    "NPA": npa,
    "FAZ_ENLARGED": faz_enlarged,
    "IRMA": irma,
    "VENOUS_BEADING": venous_beading,
    "VEIN_DILATED_TORTUOUS": vein_dilated,
    "COLLATERAL": collateral,
    "NVD": nvd,
    "NVE": nve,
    "TELANGIECTASIA": telangiectasia,
    "MACROANEURYSM": macroaneurysm,
    "LEAK_FOCAL": leak_focal,
    "LEAK_DIFFUSE": leak_diffuse,
    "CME": cme,
    "CSC_LEAK": csc_leak,
    "POOL_SRD": pool_srd,
    "POOL_PED": pool_ped,
    "CNV_CLASSIC": cnv_classic,
    "CNV_OCCULT": cnv_occult,
    "VESSEL_WALL_STAIN": vessel_wall_stain,
    "CAPILLARY_LEAK": capillary_leak,
    "PINPOINT_LEAKS": pinpoint_leaks,
    "DISC_LEAK": disc_leak,
    "STAIN_SCAR": stain_scar,
    "DRUSEN": drusen,
    "WINDOW_DEFECT": window_defect,
    "LASER_SCARS": laser_scars,
}


def build_lesion(ctx: Ctx, code: str, params: dict[str, Any]) -> Lesion:
    """The lesion of one planned sign (``code`` from the ontology, ``params`` from the case planner)."""
    if code not in BUILDERS:
        raise ValueError(f"no lesion builder for finding code {code!r}; known: {sorted(BUILDERS)}")
    return BUILDERS[code](ctx, params)
