"""Build an FFA dataset folder from the simulator (``ffasora simulate``), in parallel and resumably.

Cases are grouped into patients with one or two eyes, as in a clinic cohort, so that the patient-level split
has something to keep together. A patient's second eye shares the first eye's diagnosis when the disease is
usually bilateral (DR, DME, uveitis, dry AMD) and is otherwise a normal fellow eye; the simulator samples the
first eye's diagnosis from its disease mix.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import multiprocessing
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ffasora import __version__
from ffasora.data.format import (
    DatasetWriter,
    VideoRecord,
    check_frames,
    frame_statistics,
    write_video_files,
)
from ffasora.findings import Findings
from ffasora.findings.compact import to_compact
from ffasora.models.vae_shapes import frame_count_problem

BILATERAL = frozenset({"DR", "DME", "uveitis", "dryAMD", "normal"})
Progress = Callable[[int, int], None]


class SimulatedCaseLike(Protocol):
    """What ``ffasora.simulate.simulate_case`` returns (only the attributes used here; read-only)."""

    @property
    def frames(self) -> np.ndarray: ...  # (T, H, W) uint8
    @property
    def times_s(self) -> Sequence[float] | np.ndarray: ...
    @property
    def phases(self) -> Sequence[str]: ...
    @property
    def findings(self) -> Findings: ...
    @property
    def report(self) -> str: ...
    @property
    def report_zh(self) -> str: ...
    @property
    def masks(self) -> Mapping[str, np.ndarray]: ...
    @property
    def kinetics(self) -> Any: ...
    @property
    def anatomy(self) -> Any: ...
    @property
    def sampler(self) -> str: ...
    def meta(self) -> dict[str, Any]: ...


SimulateFn = Callable[..., SimulatedCaseLike]


@dataclasses.dataclass(frozen=True)
class SimulateConfig:
    """How a simulated dataset is made; stored in dataset.json and checked on resume."""

    n: int = 256
    size: int = 256
    frames: int = 21
    seed: int = 0
    sampler: str = "canonical"
    two_eye_fraction: float = 0.5
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    photos: bool = True  # write each eye's colour fundus photograph (images/<id>.png) beside its video
    # the first eyes' diagnosis mix as (diagnosis, relative weight) pairs; () = the simulator's clinic mix
    mix: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n = {self.n}: need at least one case")
        problem = frame_count_problem(self.frames)
        if problem is not None:
            raise ValueError(f"frames = {self.frames}: {problem}")
        if self.size < 16:
            raise ValueError(f"size = {self.size} px is too small (at least 16)")
        if self.mix:
            from ffasora.simulate.cases import parse_mix

            parse_mix(
                ",".join(f"{name}={weight}" for name, weight in self.mix)
            )  # the one place that validates


@dataclasses.dataclass(frozen=True)
class CasePlan:
    id: str
    patient_id: str
    eye: str
    seed: int


def plan_patients(cfg: SimulateConfig) -> list[list[CasePlan]]:
    """The cases of each patient, in order. Deterministic in ``cfg.seed``; a larger ``n`` extends the plan."""
    rng = np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=(1,)))
    patients: list[list[CasePlan]] = []
    index = 0
    while index < cfg.n:
        two = rng.random() < cfg.two_eye_fraction
        eyes = ["OD", "OS"] if two else [str(rng.choice(["OD", "OS"]))]
        if len(eyes) > cfg.n - index:
            eyes = eyes[:1]
        patient_id = f"sim-p{len(patients):06d}"
        cases = [
            CasePlan(f"sim-{index + k:06d}", patient_id, eye, case_seed(cfg.seed, index + k))
            for k, eye in enumerate(eyes)
        ]
        patients.append(cases)
        index += len(eyes)
    return patients


def case_seed(seed: int, index: int) -> int:
    """An independent 31-bit seed for case ``index`` of a dataset built with ``seed``."""
    return int(np.random.SeedSequence(seed, spawn_key=(0, index)).generate_state(1)[0] >> 1)


def simulate_dataset(
    out: str | Path,
    cfg: SimulateConfig,
    *,
    workers: int = 1,
    progress: Progress | None = None,
    simulate_fn: SimulateFn | None = None,
) -> dict[str, Any]:
    """Simulate ``cfg.n`` cases into the dataset folder ``out`` and return its dataset.json.

    Rerunning after an interruption skips the cases already written and gives the same dataset as an
    uninterrupted run. ``workers`` > 1 simulates patients in that many processes. ``progress(done, total)``
    is called after each patient. ``simulate_fn`` replaces ``ffasora.simulate.simulate_case`` (tests).
    """
    writer = DatasetWriter(
        out,
        creator=f"ffasora {__version__} simulate",
        source="simulator",
        config=dataclasses.asdict(cfg),
    )
    todo = [p for p in plan_patients(cfg) if not all(writer.has(c.id) for c in p)]
    done = cfg.n - sum(len(p) for p in todo)
    if progress:
        progress(done, cfg.n)
    for records in _run(todo, out, cfg, workers, simulate_fn):
        for record in records:
            if not writer.has(record.id):
                writer.append(record)
        done += len(records)
        if progress:
            progress(done, cfg.n)
    return writer.finalize(split_seed=cfg.seed, fractions=cfg.split_fractions)


def _run(
    todo: list[list[CasePlan]],
    out: str | Path,
    cfg: SimulateConfig,
    workers: int,
    simulate_fn: SimulateFn | None,
) -> Iterator[list[VideoRecord]]:
    """Yield each patient's records as its files are written, in a pool when ``workers`` > 1."""
    if workers <= 1 or len(todo) <= 1:
        for plans in todo:
            yield simulate_patient(out, plans, cfg, simulate_fn)
        return
    # spawn, not fork: the parent may hold torch/OpenMP threads, which a forked child would inherit broken.
    pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = [pool.submit(simulate_patient, out, plans, cfg, simulate_fn) for plans in todo]
        for future in cf.as_completed(futures):
            yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def simulate_patient(
    out: str | Path, plans: list[CasePlan], cfg: SimulateConfig, simulate_fn: SimulateFn | None = None
) -> list[VideoRecord]:
    """Simulate and write one patient's eyes; returns their manifest records (not yet appended)."""
    if simulate_fn is None:
        from ffasora.simulate import simulate_case

        simulate_fn = simulate_case
    records: list[VideoRecord] = []
    diagnosis: str | None = None
    # stand-in simulators (tests) may lack these arguments: pass them only when asked for
    photo_request: dict[str, Any] = {"photo": True} if cfg.photos else {}
    mix_request: dict[str, Any] = {"mix": dict(cfg.mix)} if cfg.mix else {}
    for k, plan in enumerate(plans):
        case = simulate_fn(
            seed=plan.seed,
            size=cfg.size,
            frames=cfg.frames,
            sampler=cfg.sampler,
            eye=plan.eye,
            diagnosis=diagnosis,
            **photo_request,
            **mix_request,
        )
        record = case_record(plan, case, cfg)
        photo = getattr(case, "photo", None) if cfg.photos else None
        if cfg.photos and photo is None:
            raise ValueError(f"simulated case {plan.id}: photos were asked for but the simulator drew none")
        record.image = "cfp" if photo is not None else None
        # meta() is the simulator's full description (timing, anatomy, detailed findings, camera, lesions);
        # the keys below are guaranteed whatever the simulator version puts there.
        truth = {
            "seed": plan.seed,
            "eye": plan.eye,
            "kinetics": case.kinetics,
            "anatomy": case.anatomy,
            "findings": case.findings,
            **case.meta(),
            "findings_compact": record.findings,
        }
        write_video_files(out, plan.id, case.frames, masks=dict(case.masks), truth=truth, image=photo)
        records.append(record)
        if k == 0:
            diagnosis = fellow_eye_diagnosis(record.primary_diagnosis)
    return records


def fellow_eye_diagnosis(first_eye: str | None) -> str:
    """The diagnosis a patient's second eye is simulated with, given the first eye's primary diagnosis."""
    return first_eye if first_eye in BILATERAL else "normal"


def clean_twin(root: str | Path, video_id: str, simulate_fn: SimulateFn | None = None) -> SimulatedCaseLike:
    """The noise-free twin of a simulated video of the dataset folder ``root``: its frames, masks and phases.

    The case is simulated again from its manifest record (seed, eye, the fellow eye's diagnosis, the
    dataset's size, frame count and sampler) with ``camera_noise=False``: same anatomy, lesions, times,
    optics, motion and gain, no sensor noise. It is the reference for paired fidelity: camera noise alone
    holds a perfect reconstruction of the noisy frames near 35 dB.
    """
    from ffasora.data.format import read_info, read_manifest

    if simulate_fn is None:
        from ffasora.simulate import simulate_case

        simulate_fn = simulate_case
    info = read_info(root)
    config = info.get("config") or {}
    records = read_manifest(root)
    by_id = {r.id: r for r in records}
    if video_id not in by_id:
        raise ValueError(f"{root}: no video {video_id!r} in the manifest")
    record = by_id[video_id]
    if record.source != "simulator" or record.seed is None:
        raise ValueError(f"{root}: {video_id} is not a simulated video; only those have a noise-free twin")
    # a patient's eyes were simulated in id order; the first one's diagnosis fixed the second's
    eyes = sorted((r for r in records if r.patient_id == record.patient_id), key=lambda r: r.id)
    diagnosis = None if eyes[0].id == video_id else fellow_eye_diagnosis(eyes[0].primary_diagnosis)
    mix_request: dict[str, Any] = (
        {"mix": {str(n): float(w) for n, w in config["mix"]}} if config.get("mix") else {}
    )
    return simulate_fn(
        seed=record.seed,
        size=int(config.get("size", record.height)),
        frames=int(config.get("frames", record.frames)),
        sampler=str(config.get("sampler", "canonical")),
        eye=record.eye,
        diagnosis=diagnosis,
        camera_noise=False,
        **mix_request,
    )


def case_record(plan: CasePlan, case: SimulatedCaseLike, cfg: SimulateConfig) -> VideoRecord:
    """The manifest record of a simulated case."""
    check_frames(case.frames, f"simulated case {plan.id} (seed {plan.seed})")
    t, h, w = case.frames.shape
    findings = case.findings
    return VideoRecord(
        id=plan.id,
        patient_id=plan.patient_id,
        eye=plan.eye,
        frames=t,
        height=h,
        width=w,
        report=case.report,
        report_lang="en",
        translations={"zh": case.report_zh} if case.report_zh else {},
        source="simulator",
        frame_times_s=[round(float(x), 4) for x in case.times_s],
        phases=[str(p) for p in case.phases],
        findings=compact_findings(findings),
        codes=sorted(findings.codes()),
        negated=sorted(findings.negated()),
        diagnoses=[{"code": d.code, "grade": d.grade} for d in findings.diagnoses],
        quality=frame_statistics(case.frames),
        # samplers that blend rendered frames (index_linear) say so; the others render every frame
        interpolation=case.sampler if getattr(case, "source_times_s", None) is not None else None,
        seed=plan.seed,
        extra={"sampler": cfg.sampler},
    )


def compact_findings(findings: Findings) -> str:
    """The compact code string of ``findings`` (``ffasora.findings.compact``)."""
    return str(to_compact(findings))
