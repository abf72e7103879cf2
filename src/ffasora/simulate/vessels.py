"""Retinal artery and vein trees: arcade skeleton, branching growth, Murray radii, tortuosity; rasterisation.

Geometry lives in millimetres in the canonical right-eye (OD) frame: origin at the fovea, x to the image
right (nasal in OD), y down (inferior). Four artery/vein trunk pairs leave the disc (design reference §2.2):
the temporal pair sweep round the macula as the arcades at 2.5-3.5 mm from the fovea and never cross the
horizontal raphe; the nasal pair run out radially. Artery and vein of a pair wander about each other, so they
cross a few times (more often superotemporally, §2.2). Side branches grow as seeded random walks; each
bifurcation splits the radius by Murray's law r_p^3 = r_1^3 + r_2^3 (§2.3, recommendation 3).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

QUADRANTS = ("superotemporal", "inferotemporal", "superonasal", "inferonasal")
ARTERY, VEIN = 0, 1
R_MIN_MM = 0.006  # branches thinner than this are left to the capillary texture
CILIORETINAL = 4  # quadrant id of a cilioretinal artery (fills with the choroid, §2.2)


@dataclass(frozen=True)
class VesselEdits:
    """Disease edits applied while growing the trees (§6.1 step 3); quadrant ids index ``QUADRANTS``."""

    vein_dilation: dict[int, float] = field(default_factory=dict)  # radius factor of that quadrant's veins
    vein_tortuosity: dict[int, float] = field(default_factory=dict)  # extra tortuosity factor
    beading: frozenset[int] = frozenset()  # quadrants whose veins carry sausage-like calibre changes
    cilioretinal: bool = False


@dataclass
class Polyline:
    xy: np.ndarray  # (N, 2) mm
    r: np.ndarray  # (N,) radius mm
    s: np.ndarray  # (N,) path length from the disc centre, mm
    kind: int
    quadrant: int


@dataclass
class Trees:
    lines: list[Polyline]

    def of(self, kind: int) -> list[Polyline]:
        return [p for p in self.lines if p.kind == kind]


def _arcade(
    rng: np.random.Generator, disc: np.ndarray, superior: bool, offset: float, phase: float
) -> np.ndarray:
    """Temporal arcade path (N, 2): polar sweep round the fovea from the disc to beyond the field edge."""
    d_disc = float(np.hypot(*disc))
    phi0 = float(np.arctan2(-disc[1], disc[0]))  # angle of the disc seen from the fovea (y up positive)
    sign = 1.0 if superior else -1.0
    phi_end = np.deg2rad(rng.uniform(160, 178))
    phi = np.linspace(phi0, sign * phi_end, 240)
    a = np.abs(phi)
    r_arc, r_end = rng.uniform(2.7, 3.4), rng.uniform(5.5, 7.0)
    half = np.pi / 2
    with np.errstate(invalid="ignore"):  # np.where evaluates both branches
        r = np.where(
            a < half,
            r_arc + (d_disc - r_arc) * np.clip((half - a) / max(half - abs(phi0), 1e-3), 0, 1) ** 2,
            r_arc + (r_end - r_arc) * ((a - half) / (phi_end - half)) ** 1.5,
        )
    # artery and vein of a pair wander about each other: a sinusoid larger than its mean makes them cross
    r = r + offset + 0.3 * np.sin(2.2 * a + phase) * np.clip(a / 0.6, 0, 1)
    xy = np.stack([r * np.cos(phi), -r * np.sin(phi)], axis=1)
    xy[0] = disc
    return xy


def _nasal(rng: np.random.Generator, disc: np.ndarray, superior: bool, jitter: float) -> np.ndarray:
    angle = np.deg2rad(rng.uniform(35, 70) + jitter) * (1 if superior else -1)
    heading = angle + rng.uniform(-0.004, 0.004) * np.arange(160) + np.cumsum(rng.normal(0, 0.03, 160))
    steps = 0.06 * np.stack([np.cos(heading), -np.sin(heading)], axis=1)
    return disc + np.concatenate([np.zeros((1, 2)), np.cumsum(steps, axis=0)])


def _resample(xy: np.ndarray, step: float) -> np.ndarray:
    seg = np.hypot(*np.diff(xy, axis=0).T)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    t = np.arange(0.0, s[-1], step)
    return np.stack([np.interp(t, s, xy[:, 0]), np.interp(t, s, xy[:, 1])], axis=1)


def _tortuous(rng: np.random.Generator, xy: np.ndarray, amp: float) -> np.ndarray:
    """Add a sinusoidal sideways wiggle (amplitude ``amp`` mm) to a path (§2.3: tortuosity)."""
    if len(xy) < 3 or amp <= 0:
        return xy
    d = np.gradient(xy, axis=0)
    n = np.stack([-d[:, 1], d[:, 0]], axis=1) / np.maximum(np.hypot(*d.T), 1e-9)[:, None]
    s = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])
    w1, w2 = rng.uniform(0.6, 1.5), rng.uniform(1.8, 3.5)
    wave = 0.6 * np.sin(2 * np.pi * s / w1 + rng.uniform(0, 6.3)) + 0.6 * np.sin(
        2 * np.pi * s / w2 + rng.uniform(0, 6.3)
    )
    w = amp * wave * np.clip(s / 0.3, 0, 1)
    return xy + n * w[:, None]


class _Grower:
    def __init__(self, rng: np.random.Generator, fov_radius: float, centre: np.ndarray, faz: float):
        self.rng, self.fov, self.centre, self.faz = rng, fov_radius, centre, faz
        self.lines: list[Polyline] = []

    def inside(self, xy: np.ndarray) -> np.ndarray:
        return np.hypot(*(xy - self.centre).T) < self.fov + 0.4

    def add(
        self,
        xy: np.ndarray,
        r0: float,
        s0: float,
        kind: int,
        quad: int,
        taper: float,
        depth: int,
        edits: VesselEdits,
    ) -> None:
        xy = _resample(xy, 0.04)
        if len(xy) < 3:
            return
        s = s0 + np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])
        r = r0 * (1.0 - taper * (s - s0) / max(s[-1] - s0, 1e-6))
        if kind == VEIN and quad in edits.vein_dilation:
            r = r * edits.vein_dilation[quad]
        # branch points along the vessel: each splits off a child and thins the parent (Murray, exponent 3)
        pos = s0 + self.rng.uniform(0.35, 0.8)
        children = []
        while pos < s[-1] - 0.3 and depth < 4:
            i = int(np.searchsorted(s, pos))
            # trunks shed small side branches; smaller vessels bifurcate more evenly
            rc = float(r[i] * (self.rng.uniform(0.35, 0.65) if depth == 0 else self.rng.uniform(0.5, 0.8)))
            if rc >= R_MIN_MM:
                children.append((i, rc))
                r[i:] = np.cbrt(np.maximum(r[i:] ** 3 - rc**3, (0.8 * r[i:]) ** 3))
            pos += self.rng.uniform(0.45, 1.2) * (1.0 + 0.5 * depth)
        if kind == VEIN and quad in edits.beading and depth <= 1:
            r = r * (1.0 + 0.45 * np.maximum(np.sin(2 * np.pi * s / 0.45), -0.3) * (s > 2.0))
        self.lines.append(Polyline(xy, r, s, kind, quad))
        for i, rc in children:
            self.branch(xy, s, i, rc, kind, quad, depth + 1, edits)

    def branch(
        self,
        xy: np.ndarray,
        s: np.ndarray,
        i: int,
        rc: float,
        kind: int,
        quad: int,
        depth: int,
        edits: VesselEdits,
    ) -> None:
        rng = self.rng
        j = min(i + 1, len(xy) - 1)
        d = xy[j] - xy[max(i - 1, 0)]
        base = np.arctan2(d[1], d[0]) + rng.choice([-1, 1]) * np.deg2rad(rng.uniform(35, 75))
        length = float(np.clip(rc * rng.uniform(100, 190), 0.6, 6.0))
        n = max(int(length / 0.06), 3)
        heading = base + np.cumsum(rng.normal(0, 0.05, n))
        path = xy[i] + np.concatenate(
            [np.zeros((1, 2)), np.cumsum(0.06 * np.stack([np.cos(heading), np.sin(heading)], 1), axis=0)]
        )
        keep = self._valid_prefix(path, xy[i])
        if keep < 4:
            return
        tort = 0.6 + (0.6 if kind == VEIN else 0.0) + edits.vein_tortuosity.get(quad, 0.0) * (kind == VEIN)
        path = _tortuous(rng, path[:keep], rc * tort)
        self.add(path, rc, float(s[i]), kind, quad, 0.3, depth, edits)

    def _valid_prefix(self, path: np.ndarray, start: np.ndarray) -> int:
        """How many points of a branch path stay legal: out of the FAZ, in the field, not across the raphe."""
        bad = np.hypot(*path.T) < self.faz + 0.15
        bad |= ~self.inside(path)
        temporal = path[:, 0] < -0.5
        bad |= temporal & (np.sign(path[:, 1]) != np.sign(start[1])) & (abs(start[1]) > 0.05)
        first = np.argmax(bad) if bad.any() else len(path)
        return int(first)


def grow_trees(
    rng: np.random.Generator,
    disc: np.ndarray,
    fov_radius: float,
    centre: np.ndarray,
    faz: float,
    edits: VesselEdits | None = None,
) -> Trees:
    """Grow the artery and vein forests of one eye (canonical OD frame, mm). Deterministic in ``rng``."""
    edits = edits or VesselEdits()
    g = _Grower(rng, fov_radius, centre, faz)
    r_art, r_vein = rng.normal(0.068, 0.006), rng.normal(0.076, 0.006)
    for quad, superior in ((0, True), (1, False)):
        phase = rng.uniform(0, 6.3)
        extra = edits.vein_tortuosity.get(quad, 0.0)
        for kind, r0, off in ((ARTERY, r_art, -0.1), (VEIN, r_vein, 0.1)):
            path = _arcade(rng, disc, superior, off, phase + (0.0 if kind == ARTERY else np.pi))
            tort = (1.0 + extra) * r0 * (0.6 if kind == ARTERY else 1.2)
            path = _tortuous(rng, _resample(path, 0.04), tort)
            g.add(path[g.inside(path)], r0 * 0.95, 0.0, kind, quad, 0.25, 0, edits)
    for quad, superior in ((2, True), (3, False)):
        for kind, r0, jit in ((ARTERY, r_art * 0.8, -6.0), (VEIN, r_vein * 0.8, 6.0)):
            path = _nasal(rng, disc, superior, jit)
            g.add(path[g.inside(path)], r0, 0.0, kind, quad, 0.4, 1, edits)
    # papillomacular branches run straight from the disc towards the fovea (§2.2)
    for kind in (ARTERY, VEIN):
        for sign in (-1, 1):
            target = np.array([faz * 1.2, sign * rng.uniform(0.3, 0.9)])
            path = np.linspace(disc, target, 60) + rng.normal(0, 0.02, (60, 2)).cumsum(0) * 0.3
            g.add(path, 0.022, 0.0, kind, 0 if sign < 0 else 1, 0.5, 2, edits)
    if edits.cilioretinal:
        target = np.array([disc[0] - 2.2, disc[1] + rng.uniform(-0.4, 0.4)])
        path = _tortuous(rng, np.linspace(disc + [-0.75, 0.0], target, 80), 0.02)
        g.add(path, 0.03, 0.0, ARTERY, CILIORETINAL, 0.5, 2, edits)
    return Trees(g.lines)


@dataclass
class VesselMaps:
    """Rasterised vessels (H, W) for one kind: weight (dye-column profile 0..1), radial coordinate u = d/r,
    path length s from the disc (mm), quadrant id, radius (mm); ``mask`` where the weight is visible."""

    weight: np.ndarray
    u: np.ndarray
    s: np.ndarray
    quadrant: np.ndarray
    radius: np.ndarray
    mask: np.ndarray


def rasterise(lines: list[Polyline], size: int, to_px: float, origin: np.ndarray) -> VesselMaps:
    """Draw polylines as anti-aliased tubes; pixel (i, j) centre is (j, i) in px; mm -> px by ``to_px``.

    Nearest-skeleton lookup by a Euclidean distance transform, done separately for thick and thin vessels so
    that a thin branch leaving a thick trunk does not notch it.
    """
    shape = (size, size)
    out = VesselMaps(*(np.zeros(shape, np.float32) for _ in range(6)))  # type: ignore[arg-type]
    out.u[:] = 1.0
    out.quadrant = np.full(shape, -1, np.int16)
    out.mask = np.zeros(shape, bool)
    if not lines:
        return out
    pts = np.concatenate([_resample(p.xy, 0.35 / to_px) if len(p.xy) > 1 else p.xy for p in lines])
    attrs = np.concatenate([_attrs_along(p, 0.35 / to_px) for p in lines])  # (N, 3): r, s, quadrant
    px = pts * to_px + origin
    r_px = attrs[:, 0] * to_px
    for thick in (False, True):
        sel = (r_px >= 1.2) if thick else (r_px < 1.2)
        if not sel.any():
            continue
        _splat(out, px[sel], r_px[sel], attrs[sel], shape)
    out.mask = out.weight > 0.4
    return out


def _attrs_along(p: Polyline, step: float) -> np.ndarray:
    seg = np.hypot(*np.diff(p.xy, axis=0).T)
    s_local = np.concatenate([[0.0], np.cumsum(seg)])
    t = np.arange(0.0, s_local[-1], step) if len(p.xy) > 1 else np.zeros(1)
    return np.stack(
        [np.interp(t, s_local, p.r), np.interp(t, s_local, p.s), np.full(len(t), float(p.quadrant))], axis=1
    )


def _splat(
    out: VesselMaps, px: np.ndarray, r_px: np.ndarray, attrs: np.ndarray, shape: tuple[int, int]
) -> None:
    h, w = shape
    col, row = np.round(px[:, 0]).astype(int), np.round(px[:, 1]).astype(int)
    ok = (row >= 0) & (row < h) & (col >= 0) & (col < w)
    order = np.argsort(r_px[ok], kind="stable")  # larger radius written last wins a shared pixel
    idx = np.flatnonzero(ok)[order]
    owner = np.full(shape, -1, np.int64)
    owner[row[idx], col[idx]] = idx
    dist, (ii, jj) = ndimage.distance_transform_edt(owner < 0, return_indices=True)
    # only pixels within reach of the widest tube need the profile: a thin band around the skeleton
    band = np.flatnonzero(dist.ravel() <= float(r_px.max()) + 1.5)
    near = owner.ravel()[ii.ravel()[band] * w + jj.ravel()[band]]
    d = np.hypot(band % w - px[near, 0], band // w - px[near, 1])
    r = np.maximum(r_px[near], 0.2)
    coverage = np.clip(r + 0.5 - d, 0.0, 1.0) * np.minimum(1.0, 2.0 * r)
    profile = np.sqrt(np.clip(1.0 - (d / (r + 0.5)) ** 2, 0.0, 1.0))
    # dye-column brightness saturates for vessels thicker than ~2 px (optically thick), thin ones are dimmer
    amp = np.clip(0.6 + 0.3 * r, 0.0, 1.0)
    weight = (coverage * (0.35 + 0.65 * profile) * amp).astype(np.float32)
    flat = out.weight.ravel()
    better = weight > flat[band]
    idx, near = band[better], near[better]
    flat[idx] = weight[better]
    out.u.ravel()[idx] = np.clip(d / r, 0, 1)[better]
    out.s.ravel()[idx] = attrs[near, 1]
    out.quadrant.ravel()[idx] = attrs[near, 2].astype(np.int16)
    out.radius.ravel()[idx] = attrs[near, 0]
