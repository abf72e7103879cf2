"""Compose the radiometric angiogram F(x, t) from the precomputed layers (design reference §6.3-§6.4).

``build_scene`` turns anatomy + lesions into flat per-pixel arrays once per case (weights, arrival-time maps,
transmissions, pre-blurred leak profiles); ``render`` then evaluates each frame as a few vectorised lookups and
linear combinations, in the depth order of the §6.3 composite:

    F = τ_pre (A + V + Disc + IV + LK_ret + ST_ret + PL_ret + τ_intra [C + τ_sub (Ch_WD + PL_sub + CNV)])
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ffasora.simulate.anatomy import Anatomy
from ffasora.simulate.kinetics import Curves, Timing
from ffasora.simulate.lesions import INTRA, PRE, RETINA, SUB, Leak, Lesion
from ffasora.simulate.vessels import CILIORETINAL

T_WD = 0.9  # RPE transmission inside a window defect (§6.3)
CAP_GAIN = 0.16  # retinal capillary bed relative to a large vessel at the same dye level
V_CC = 0.75  # choriocapillaris weight; the RPE transmission scales it down to a background glow
STROMA_GAIN = 0.3  # late choroidal/scleral staining relative to the choroid's first-pass peak
VESSEL_SHADOW = 0.75  # a blood column hides the capillaries and choroid behind it (dark vessels in the flush)
NPA_VEIL = 0.45  # NPA reads dark throughout (§3.1): the ischaemic inner retina also dims what lies behind
SIGMA_LEVELS = 7  # pre-blurred leak profiles per leak, interpolated in log σ


def position_quadrant(an: Anatomy) -> np.ndarray:
    """(H, W) int quadrant id by position: temporal/nasal about the disc, superior/inferior about the raphe."""
    nasal = an.x_mm > an.disc_mm[0]
    superior = np.where(nasal, an.y_mm < an.disc_mm[1], an.y_mm < 0.0)
    return (np.where(nasal, 2, 0) + np.where(superior, 0, 1)).astype(np.int16)


@dataclass
class LeakLayer:
    lesion: int
    leak: Leak
    box: tuple[slice, slice]
    sigmas: np.ndarray  # (K,) px
    profiles: np.ndarray  # (K, h, w) normalised blurs of the source
    prev: np.ndarray | None = None


@dataclass
class Scene:
    """Everything the per-frame evaluation needs, flattened to support pixels where that saves work."""

    an: Anatomy
    timing: Timing
    curves: Curves
    lesions: list[Lesion]
    art_idx: np.ndarray
    art_w: np.ndarray
    art_arrival: np.ndarray
    art_s: np.ndarray
    art_boxcar: np.ndarray  # bool per artery support pixel
    vein_idx: np.ndarray
    vein_w: np.ndarray
    vein_arrival: np.ndarray
    vein_wall: np.ndarray  # w(r) = u^p, weight of the early wall stream (§6.3 laminar profile)
    cap_w: np.ndarray  # (H, W)
    cap_arrival: np.ndarray  # (H, W)
    lob_arrival: np.ndarray  # (n_lobules,)
    lob_gain: np.ndarray
    chor_w: np.ndarray  # (H, W) T_rpe_eff * texture
    tau: dict[str, np.ndarray]
    lobule_small: np.ndarray  # lobule ids at quarter resolution
    leaks: list[LeakLayer] = field(default_factory=list)
    boxes: dict[int, tuple[slice, slice]] = field(default_factory=dict)  # crop of each dynamic lesion

    @property
    def choroid_start(self) -> float:
        return self.timing.arm_retina_s - self.timing.choroid_lead_s


def build_scene(an: Anatomy, timing: Timing, lesions: list[Lesion], rng: np.random.Generator) -> Scene:
    """Precompute the static layers of one case (§6.1 step 4)."""
    curves = Curves(timing)
    quad = position_quadrant(an)
    art_delay = np.zeros(5)
    vein_delay = np.zeros(5)
    boxcar = np.zeros(5, bool)
    lob_extra = np.zeros(an.n_lobules, np.float32)
    lob_gain = np.ones(an.n_lobules, np.float32)
    cap = an.capillary.copy()
    window = np.zeros_like(an.rpe)
    prune = np.zeros(an.fov.shape, bool)
    tau = {d: np.ones(an.fov.shape, np.float32) for d in (PRE, INTRA, SUB)}
    for les in lesions:
        if les.delay is not None:
            for q, d in les.delay.art.items():
                art_delay[q] = max(art_delay[q], d)
                boxcar[q] |= les.delay.boxcar
            for q, d in les.delay.vein.items():
                vein_delay[q] = max(vein_delay[q], d)
            if les.delay.lobules is not None:
                lob_extra = np.maximum(lob_extra, les.delay.lobules)
            if les.delay.lobule_gain is not None:
                lob_gain = lob_gain * les.delay.lobule_gain
        if les.cap_scale is not None:
            cap *= les.cap_scale
        if les.window is not None:
            window = np.maximum(window, les.window)
        if "prune" in les.attrs:
            prune |= les.attrs["prune"]
        for depth, t in les.block.items():
            tau[depth] = tau[depth] * t.astype(np.float32)

    t_ar = timing.arm_retina_s
    # arteries: T_ar + s/v_art (+ RAO delay); a cilioretinal artery fills with the choroid (§1.2)
    art_w = an.art.weight * ~(prune & (an.art.radius < 0.02))
    art_idx = np.flatnonzero(art_w > 0.02)
    aq = an.art.quadrant.ravel()[art_idx]
    art_s = an.art.s.ravel()[art_idx]
    art_arrival = t_ar + art_s / timing.v_art_mm_s + art_delay[np.clip(aq, 0, 4)]
    cilio = aq == CILIORETINAL
    art_arrival[cilio] = t_ar - 0.5 * timing.choroid_lead_s + art_s[cilio] / timing.v_art_mm_s
    # drainage region R: veins wait for their region's mean arterial delay t_R, the AV passage, then fill
    # from the small upstream tributaries towards the disc (v_vein), plus any occlusion delay (§6.3)
    t_r = np.array(
        [
            float(np.mean((an.art.s[(an.art.quadrant == q) & an.art.mask]) / timing.v_art_mm_s))
            if np.any((an.art.quadrant == q) & an.art.mask)
            else 0.5
            for q in range(5)
        ]
    )
    t_r = t_r + art_delay
    vein_w = an.vein.weight * ~(prune & (an.vein.radius < 0.025))
    vein_idx = np.flatnonzero(vein_w > 0.02)
    vq = np.clip(an.vein.quadrant.ravel()[vein_idx], 0, 4)
    vs = an.vein.s.ravel()[vein_idx]
    s_max = np.array([vs[vq == q].max() if np.any(vq == q) else 1.0 for q in range(5)])
    vein_arrival = t_ar + t_r[vq] + timing.av_passage_s + 0.5 * (s_max[vq] - vs) / timing.v_vein_mm_s
    vein_arrival = vein_arrival + vein_delay[vq]
    u = an.vein.u.ravel()[vein_idx]

    cap_arrival = t_ar + an.cap_delay_s + timing.cap_transit_s + art_delay[quad]
    lob_arrival = t_ar - timing.choroid_lead_s - 1.0 + rng.uniform(0.0, 1.0, an.n_lobules) + lob_extra
    rpe_eff = an.rpe * (1.0 - window) + T_WD * window
    npa_veil = 1.0 - (1.0 - NPA_VEIL) * ndimage.gaussian_filter(prune.astype(np.float32), 1.0)
    tau[INTRA] = tau[INTRA] * (1.0 - VESSEL_SHADOW * np.maximum(art_w, vein_w)).astype(np.float32)
    scene = Scene(
        an=an,
        timing=timing,
        curves=curves,
        lesions=lesions,
        art_idx=art_idx,
        art_w=art_w.ravel()[art_idx],
        art_arrival=art_arrival.astype(np.float32),
        art_s=art_s,
        art_boxcar=boxcar[np.clip(aq, 0, 4)] & ~cilio,
        vein_idx=vein_idx,
        vein_w=vein_w.ravel()[vein_idx],
        vein_arrival=vein_arrival.astype(np.float32),
        vein_wall=(u**2).astype(np.float32),
        cap_w=(CAP_GAIN * cap * npa_veil).astype(np.float32),
        cap_arrival=cap_arrival.astype(np.float32),
        lob_arrival=lob_arrival.astype(np.float32),
        lob_gain=lob_gain,
        chor_w=(rpe_eff * an.choroid_texture * npa_veil).astype(np.float32),
        tau=tau,
        lobule_small=an.lobule[:: max(1, an.size // 128), :: max(1, an.size // 128)],
    )
    scene.leaks = [_leak_layer(an, k, lk) for k, les in enumerate(lesions) for lk in les.leaks]
    for k, les in enumerate(lesions):
        parts = [ll.box for ll in scene.leaks if ll.lesion == k]
        parts += [_bbox(p.compartment) for p in les.pools]
        if parts:
            scene.boxes[k] = (
                slice(min(b[0].start for b in parts), max(b[0].stop for b in parts)),
                slice(min(b[1].start for b in parts), max(b[1].stop for b in parts)),
            )
    return scene


def _bbox(mask: np.ndarray) -> tuple[slice, slice]:
    rows, cols = np.nonzero(mask)
    if len(rows) == 0:
        return slice(0, 1), slice(0, 1)
    return slice(int(rows.min()), int(rows.max()) + 1), slice(int(cols.min()), int(cols.max()) + 1)


def _add_crop(
    layers: dict[int, np.ndarray], scene: Scene, k: int, box: tuple[slice, slice], value: np.ndarray
) -> None:
    """Max-merge ``value`` (the crop ``box`` of the frame) into lesion k's dynamic layer crop."""
    outer = scene.boxes[k]
    if k not in layers:
        layers[k] = np.zeros((outer[0].stop - outer[0].start, outer[1].stop - outer[1].start), np.float32)
    inner = (
        slice(box[0].start - outer[0].start, box[0].stop - outer[0].start),
        slice(box[1].start - outer[1].start, box[1].stop - outer[1].start),
    )
    np.maximum(layers[k][inner], value, out=layers[k][inner])


def _leak_layer(an: Anatomy, lesion: int, leak: Leak) -> LeakLayer:
    """Pre-blur a leak source at a few σ levels spanning onset..600 s (§6.3 closed-form leakage)."""
    s0 = max(0.5, leak.sigma0_mm * an.to_px)
    s_max = float(np.sqrt(s0**2 + 2 * leak.d_mm2_min / 60.0 * 660.0 * an.to_px**2))
    sigmas = np.geomspace(s0, max(s_max, s0 * 1.01), SIGMA_LEVELS)
    pad = int(np.ceil(3 * sigmas[-1])) + 2
    rows, cols = np.nonzero(leak.source > 0.02)
    if len(rows) == 0:
        rows, cols = np.array([0]), np.array([0])
    box = (
        slice(max(rows.min() - pad, 0), min(rows.max() + pad + 1, an.size)),
        slice(max(cols.min() - pad, 0), min(cols.max() + pad + 1, an.size)),
    )
    crop = leak.source[box]
    profiles = np.stack([ndimage.gaussian_filter(crop, s, mode="constant") for s in sigmas])
    # each level normalised to peak 1 and accumulated over σ: spreading dye never dims a pixel it reached
    profiles = np.maximum.accumulate(
        profiles / np.maximum(profiles.max(axis=(1, 2), keepdims=True), 1e-6), axis=0
    )
    return LeakLayer(lesion, leak, box, sigmas, profiles.astype(np.float32))


def fill(scene: Scene, t: float, onset: float, rate: float) -> float:
    """Fraction filled 1 - exp(-rate * dye delivered since onset): drives leak, pool and stain amplitude."""
    if t <= onset:
        return 0.0
    c, t_ar = scene.curves, scene.timing.arm_retina_s
    delivered = float(c.at("integral", t - t_ar) - c.at("integral", onset - t_ar))
    return float(1.0 - np.exp(-rate * max(delivered, 0.0)))


def render_frame(scene: Scene, t: float) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Radiometric frame (H, W) float32 at time t after injection, and each leak/pool lesion's layer."""
    an, c, tm = scene.an, scene.curves, scene.timing
    h = w = an.size
    retina = np.zeros(h * w, np.float32)
    sub = np.zeros((h, w), np.float32)
    # arteries (box-car segmentation moving at v_art / 5 in occluded territory, §6.3 RAO)
    a = c.at("art", t - scene.art_arrival) * scene.art_w
    if scene.art_boxcar.any():
        phase = scene.art_s - (t - scene.art_arrival) * tm.v_art_mm_s / 5.0
        gaps = (np.sin(2 * np.pi * phase / 0.35) > 0.2) & (t - scene.art_arrival < 25.0)
        a = np.where(scene.art_boxcar & gaps, 0.35 * a, a)
    retina[scene.art_idx] += a
    v_t = t - scene.vein_arrival
    wall = scene.vein_wall
    retina[scene.vein_idx] += scene.vein_w * (
        wall * c.at("vein", v_t) + (1 - wall) * c.at("vein", v_t - tm.lam_lag_s)
    )
    image = retina.reshape(h, w)
    # disc: deep blush with the choroid, capillaries with the arteries, late rim stain (§6.3 Disc)
    image += an.disc * (
        0.15 * c.at("chor", t - scene.choroid_start) + 0.35 * c.at("cap", t - tm.arm_retina_s)
    )
    image += 0.25 * an.disc_rim * fill(scene, t, tm.arm_retina_s + 20.0, 0.02)
    cap = scene.cap_w * c.at("cap", t - scene.cap_arrival)
    lob = scene.lob_gain * V_CC * c.at("chor", t - scene.lob_arrival)
    # once every lobule has filled their values agree; the per-lobule map only matters during the flush
    patchy = float(lob.max() - lob.min()) > 0.01 * max(float(lob.mean()), 1e-3)
    lob_map = _upsample(lob[scene.lobule_small], h) if patchy else float(lob.mean())
    chor = scene.chor_w * (lob_map + STROMA_GAIN * c.at("stroma", t - scene.choroid_start))
    layers: dict[int, np.ndarray] = {}
    for k, les in enumerate(scene.lesions):
        for add in les.additive:
            if add.curve == "stain":
                v = add.weight * fill(scene, t, add.arrival_s, add.rate)
            else:
                v = add.weight * c.at(add.curve, t - add.arrival_s)
            (image if add.depth == RETINA else sub).__iadd__(v.astype(np.float32))
        for pool in les.pools:
            amount = pool.amp * fill(scene, t, float(pool.front_s.min()), pool.rate)
            inside = pool.compartment if pool.weight is None else pool.weight
            layer = (amount * np.clip((t - pool.front_s) / 5.0, 0, 1) * inside).astype(np.float32)
            (image if pool.depth == RETINA else sub).__iadd__(layer)
            _add_crop(layers, scene, k, scene.boxes[k], layer[scene.boxes[k]])
    for ll in scene.leaks:
        layer = _leak_at(scene, ll, t)
        target = image if ll.leak.depth == RETINA else sub
        target[ll.box] += layer
        _add_crop(layers, scene, ll.lesion, ll.box, layer)
    frame = scene.tau[PRE] * (image + scene.tau[INTRA] * (cap + scene.tau[SUB] * (chor + sub)))
    return np.maximum(frame, 0.0).astype(np.float32), layers


def _upsample(small: np.ndarray, size: int) -> np.ndarray:
    """Bilinear upsampling of the quarter-resolution lobule layer: soft lobule borders, cheap."""
    return ndimage.zoom(small, size / small.shape[0], order=1, prefilter=False)[:size, :size]


def _leak_at(scene: Scene, ll: LeakLayer, t: float) -> np.ndarray:
    lk = ll.leak
    if t <= lk.onset_s:
        return np.zeros(ll.profiles.shape[1:], np.float32)
    sigma = np.sqrt(ll.sigmas[0] ** 2 + 2 * lk.d_mm2_min / 60.0 * (t - lk.onset_s) * scene.an.to_px**2)
    pos = np.interp(np.log(sigma), np.log(ll.sigmas), np.arange(len(ll.sigmas)))
    i = min(int(pos), len(ll.sigmas) - 2)
    f = pos - i
    profile = (1 - f) * ll.profiles[i] + f * ll.profiles[i + 1]
    value = (lk.amp * fill(scene, t, lk.onset_s, lk.rate) * profile).astype(np.float32)
    if ll.prev is not None:  # dye already outside the vessels stays there over a 10-min angiogram
        value = np.maximum(value, ll.prev)
    ll.prev = value
    return value


def render(
    scene: Scene, times: np.ndarray
) -> tuple[np.ndarray, dict[int, tuple[tuple[slice, slice], np.ndarray]]]:
    """Radiometric frames (T, H, W) float32 at increasing times, and each leaking/pooling lesion's layer as
    (crop box, (T, h, w) float32)."""
    for ll in scene.leaks:
        ll.prev = None
    frames = np.empty((len(times), scene.an.size, scene.an.size), np.float32)
    dynamic = {
        k: (box, np.zeros((len(times), box[0].stop - box[0].start, box[1].stop - box[1].start), np.float32))
        for k, box in scene.boxes.items()
    }
    for i, t in enumerate(times):
        frames[i], layers = render_frame(scene, float(t))
        for k, layer in layers.items():
            dynamic[k][1][i] = layer
    return frames, dynamic
