"""One simulated case, end to end: ``simulate_case(seed, ...)`` and its dense-time twin ``radiometric_series``.

``simulate_case`` is the whole pipeline of design reference §6.1: plan the case (``cases``), grow the anatomy
(``anatomy``, ``vessels``), insert the lesions (``catalog``, ``lesions``), evaluate the kinetics at the sampled
times (``kinetics``, ``sampling``, ``render``), pass the frames through the camera (``acquisition``) and write
the findings and reports from what was rendered (``measure``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ffasora.findings import Findings, write_report
from ffasora.simulate.acquisition import acquire, sample_camera
from ffasora.simulate.anatomy import FIELD_MM, build_anatomy
from ffasora.simulate.cases import plan_case
from ffasora.simulate.catalog import BUILDERS, Ctx, build_lesion
from ffasora.simulate.fundus_photo import render_fundus_photo
from ffasora.simulate.kinetics import phase_of, sample_timing, timing_summary
from ffasora.simulate.measure import lesion_meta, measure_findings
from ffasora.simulate.render import build_scene, render
from ffasora.simulate.sampling import SAMPLERS, Schedule, apply_blend, make_schedule, nearest_source

SIMULATOR_VERSION = "0.1.1"  # 0.1.1: reports name the quadrants of a lesion over two
EYES = ("OD", "OS")


@dataclasses.dataclass
class SimulatedCase:
    """One simulated angiogram of one eye with its ground truth.

    frames (T, H, W) uint8 display frames; times_s (T,) seconds after injection; phases (T,) phase names;
    masks: static (H, W) bool (``fov``, ``vessels_art``, ``vessels_vein``, ``disc``, ``faz``,
    ``lesion_<CODE>``) and per-frame (T, H, W) bool ``lesion_<CODE>_t`` for leaking/pooling lesions, plus
    ``compartment_<CODE>`` for pooling lesions; radiometric (T, H, W) float32 before the camera (rendered
    times, i.e. before index-linear interpolation) when asked for.
    """

    frames: np.ndarray
    times_s: np.ndarray
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
    source_times_s: np.ndarray | None = None
    camera: dict[str, Any] = dataclasses.field(default_factory=dict)
    motion: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    lesions: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    radiometric: np.ndarray | None = None
    photo: np.ndarray | None = (
        None  # (H, W, 3) uint8 colour fundus photograph of the same eye, when asked for
    )
    photo_meta: dict[str, Any] | None = None

    def meta(self) -> dict[str, Any]:
        """JSON-ready description (§6.7 meta.json), without pixel arrays."""
        t, h, w = self.frames.shape
        return {
            "simulator_version": SIMULATOR_VERSION,
            "seed": self.seed,
            "eye": self.eye,
            "device": {
                "profile": "camera50",
                "fov_deg": 50,
                "size_px": h,
                "mm_per_px": round(FIELD_MM / h, 5),
            },
            "timing": self.kinetics,
            "frames": {
                "t_s": [round(float(x), 4) for x in self.times_s],
                "phase": list(self.phases),
                "field": ["posterior_pole"] * t,
                "sampler": self.sampler,
                "source_t_s": None
                if self.source_times_s is None
                else [round(float(x), 4) for x in self.source_times_s],
            },
            "anatomy": self.anatomy,
            "diagnoses": [{"code": d.code, "grade": d.grade} for d in self.findings.diagnoses],
            "findings": [_finding_dict(f) for f in self.findings.present],
            "negatives": sorted(self.findings.absent),
            "arm_retina_s": self.findings.arm_retina_s,
            "camera": self.camera,
            "motion": self.motion,
            "lesions": self.lesions,
            "report": {"en": self.report, "zh": self.report_zh},
            **({} if self.photo_meta is None else {"photo": self.photo_meta}),
        }


def _finding_dict(f: Any) -> dict[str, Any]:
    d = dataclasses.asdict(f)
    d["location"] = list(f.location)
    return d


def _streams(seed: int) -> list[np.random.Generator]:
    """Independent generators per stage, so e.g. the camera never shifts the anatomy of a seed."""
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed = {seed!r}: expected a non-negative integer")
    return [np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(7)]


def _photo_stream(seed: int) -> np.random.Generator:
    """The colour photograph's own generator: an eighth child of the seed, so the first seven (and so every
    angiogram) are the same whether or not a photograph is drawn."""
    return np.random.default_rng(np.random.SeedSequence(int(seed)).spawn(8)[7])


@dataclasses.dataclass
class _Prepared:
    eye: str
    timing: Any
    anatomy: Any
    lesions: list[Any]
    findings: Findings
    scene: Any
    streams: dict[str, np.random.Generator]


def _prepare(
    seed: int,
    size: int,
    eye: str | None,
    diagnosis: str | None,
    signs: tuple[str, ...],
    mix: Mapping[str, float] | None = None,
) -> _Prepared:
    """Everything before the frame times: plan, timing, anatomy, lesions, findings, static layers."""
    if size < 32:
        raise ValueError(f"size = {size}: expected at least 32 px")
    unknown = sorted(set(signs) - set(BUILDERS))
    if unknown:
        raise ValueError(f"signs {unknown}: not simulated finding codes; expected some of {sorted(BUILDERS)}")
    r_plan, r_time, r_anat, r_les, r_sched, r_cam, r_text = _streams(seed)
    if eye is None:
        eye = str(r_plan.choice(EYES))
    if eye not in EYES:
        raise ValueError(f"eye {eye!r}: expected one of {EYES}")
    plan = plan_case(r_plan, diagnosis, signs, mix)
    timing = sample_timing(r_time, plan.arm_delay_s)
    an = build_anatomy(r_anat, size, plan.edits, plan.faz_scale, timing.v_art_mm_s)
    ctx = Ctx(an, r_les, timing)
    lesions = [build_lesion(ctx, code, params) for code, params in plan.signs]
    findings, shown = measure_findings(an, timing, lesions, plan.diagnoses, eye, r_text)
    visible = [les for les, ok in zip(lesions, shown, strict=True) if ok]
    scene = build_scene(an, timing, visible, r_les)
    return _Prepared(eye, timing, an, visible, findings, scene, {"sched": r_sched, "cam": r_cam})


def radiometric_series(
    seed: int,
    times_s: Sequence[float],
    size: int = 128,
    eye: str | None = None,
    diagnosis: str | None = None,
    signs: Sequence[str] = (),
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, Any]]:
    """The camera-free frames (T, H, W) float32 of ``simulate_case``'s eye at any increasing times, with its
    masks and timing: for kinetic measurements on a dense time grid (design reference §6.8)."""
    times = np.asarray(times_s, dtype=np.float64)
    if times.ndim != 1 or len(times) == 0 or np.any(np.diff(times) <= 0):
        raise ValueError("times_s: expected a non-empty, strictly increasing 1-D sequence")
    prep = _prepare(seed, size, eye, diagnosis, tuple(signs))
    frames, dynamic = render(prep.scene, times)
    masks = _masks(prep.anatomy, prep.lesions, dynamic, Schedule(times, times))
    if prep.eye == "OS":
        frames = frames[:, :, ::-1].copy()
        masks = {k: np.ascontiguousarray(v[..., ::-1]) for k, v in masks.items()}
    return frames, masks, {"timing": timing_summary(prep.timing), "findings": prep.findings, "eye": prep.eye}


def simulate_case(
    seed: int,
    size: int = 512,
    frames: int = 21,
    sampler: str = "canonical",
    eye: str | None = None,
    diagnosis: str | None = None,
    *,
    signs: Sequence[str] = (),
    motion: bool = True,
    camera_noise: bool = True,
    keep_radiometric: bool = False,
    photo: bool = False,
    mix: Mapping[str, float] | None = None,
) -> SimulatedCase:
    """Simulate one eye's angiogram. Same arguments give identical bytes.

    ``camera_noise=False`` renders the noise-free twin: the same eye, lesions, frame times, optics, motion and
    gain, without sensor noise (the reference that reconstructions and paired generations are judged by).
    ``diagnosis``: a diagnosis code of ``ffasora.findings`` (``"DR"``, ``"CSC"``...), optionally with a grade
    (``"DR:PDR"``), or ``"other"``; None draws one from the cohort ``mix`` (relative weights per diagnosis,
    ``cases.parse_mix``; default the clinic mix ``cases.MIX``). ``signs`` forces extra finding codes.
    ``sampler``: ``canonical`` | ``clinical`` | ``index_linear``; ``frames`` must be 1 + 4k.
    ``photo=True`` also renders the eye's colour fundus photograph (``fundus_photo``) from the same anatomy
    and lesions, registered to the angiogram's canonical frame (no eye motion); the angiogram is unchanged.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler {sampler!r}: expected one of {SAMPLERS}")
    prep = _prepare(seed, size, eye, diagnosis, tuple(signs), mix)
    eye, timing, an, visible, scene = prep.eye, prep.timing, prep.anatomy, prep.lesions, prep.scene
    findings = prep.findings
    r_sched, r_cam = prep.streams["sched"], prep.streams["cam"]
    schedule = make_schedule(sampler, r_sched, timing.arm_retina_s, frames)
    radiometric, dynamic = render(scene, schedule.times)
    masks = _masks(an, visible, dynamic, schedule)
    flip = eye == "OS"  # a left eye is the mirror image of the canonical right eye (§4.3)
    if flip:
        radiometric = radiometric[:, :, ::-1].copy()
        masks = {k: np.ascontiguousarray(v[..., ::-1]) for k, v in masks.items()}
    cam = sample_camera(r_cam)
    transit = int(np.sum(schedule.times < timing.arm_retina_s + 25.0))
    display, motion_log = acquire(radiometric, cam, r_cam, motion=motion, transit=transit, noise=camera_noise)
    display = apply_blend(display, schedule.blend)
    nearest = nearest_source(schedule.blend, frames)
    phases = [phase_of(float(schedule.times[i]), timing.arm_retina_s) for i in nearest]
    report, report_zh = _reports(findings, seed)
    cfp, cfp_meta = None, None
    if photo:
        cfp, cfp_meta = render_fundus_photo(an, visible, _photo_stream(seed))
        if flip:
            cfp = np.ascontiguousarray(cfp[:, ::-1])
    return SimulatedCase(
        frames=display,
        times_s=schedule.out_times.astype(np.float64),
        phases=phases,
        findings=findings,
        report=report,
        report_zh=report_zh,
        masks=masks,
        kinetics=timing_summary(timing),
        anatomy=_anatomy_dict(an, flip),
        eye=eye,
        seed=int(seed),
        sampler=sampler,
        source_times_s=None if schedule.blend is None else schedule.times.copy(),
        camera=cam.as_dict(),
        motion=[motion_log[i] for i in nearest],
        lesions=[lesion_meta(les) for les in visible],
        radiometric=radiometric if keep_radiometric else None,
        photo=cfp,
        photo_meta=cfp_meta,
    )


VISIBLE_VESSEL = 0.2  # dye-column weight above which a vessel pixel is clearly seen (about 5 % of the field)


def _masks(
    an: Any, lesions: list[Any], dynamic: dict[int, tuple[tuple[slice, slice], np.ndarray]], schedule: Any
) -> dict[str, np.ndarray]:
    masks: dict[str, np.ndarray] = {
        "fov": an.fov.copy(),
        # vessel pixels off the disc (whose blush would blur the timing of the vessels that cross it)
        "vessels_art": an.art.mask & an.fov & (an.disc < 0.05) & (an.art.weight > 1.5 * an.vein.weight),
        "vessels_vein": an.vein.mask & an.fov & (an.disc < 0.05) & (an.vein.weight > 1.5 * an.art.weight),
        # the visible vessel tree and the vessel-free fundus, for fidelity measures (any kind, disc excluded)
        "vessels": (np.maximum(an.art.weight, an.vein.weight) > VISIBLE_VESSEL) & an.fov & (an.disc < 0.05),
        "vessel_free": (np.maximum(an.art.weight, an.vein.weight) < 0.03) & an.fov & (an.disc < 0.05),
        "disc": an.disc > 0.5,
        "faz": an.faz.copy(),
    }
    pick = nearest_source(schedule.blend, len(schedule.out_times))
    for k, les in enumerate(lesions):
        static = les.footprint & an.fov
        if k in dynamic:
            box, layer = dynamic[k]
            level = 0.5 * float(layer[-1].max()) if layer[-1].max() > 0 else np.inf
            per_frame = np.zeros((len(layer), *an.fov.shape), bool)
            per_frame[(slice(None), *box)] = layer >= level
            per_frame &= an.fov
            static = static | per_frame[-1]
            masks[f"lesion_{les.code}_t"] = per_frame[pick]
        if les.pools:
            masks[f"compartment_{les.code}"] = np.any([p.compartment for p in les.pools], axis=0)
        masks[f"lesion_{les.code}"] = static
    return masks


def _anatomy_dict(an: Any, flip: bool) -> dict[str, Any]:
    disc = an.mm_to_px(an.disc_mm)
    fovea = an.fovea_px.copy()
    if flip:
        disc[0], fovea[0] = an.size - 1 - disc[0], an.size - 1 - fovea[0]
    return {
        "disc_center_px": [round(float(v), 2) for v in disc],
        "disc_radius_px": round(an.disc_radius_mm * an.to_px, 2),
        "fovea_px": [round(float(v), 2) for v in fovea],
        "faz_radius_px": round(an.faz_radius_mm * an.to_px, 2),
        "mm_per_px": round(1.0 / an.to_px, 5),
        "fov_deg": 50,
    }


def _reports(findings: Findings, seed: int) -> tuple[str, str]:
    """English and Chinese reports written from the measured findings."""
    return write_report(findings, lang="en", seed=seed), write_report(findings, lang="zh", seed=seed)
