"""Videos generated from a colour fundus photograph, judged against the true angiogram of the same eye.

A photograph-conditioned generator shares the eye's anatomy with its reference, so paired metrics become
fair: PSNR and SSIM in the field of view and the vessel contrast retention of :func:`paired_fidelity`,
against the dataset's own video of that eye, the unpaired vessel visibility of :func:`vessel_visibility`,
and the physiology checks inside the eye's own masks (:mod:`ffasora.evaluate.paired_physiology`). Beside any
generator sit videos that need no model:

* ``cfp_grey``: the photograph's luma, copied into every frame (the copy baseline of image-to-FFA papers);
* ``cfp_green_inverted``: its inverted green channel, where vessels and haemorrhages (dark in colour, bright
  or dark in fluorescein) already take FFA-like contrast. A learned model should beat both;
* the physiology controls ``reference`` (the true video), ``time_reversed`` and ``other_anatomy`` (another
  eye's true video), scored like every other condition;
* with a VAE, ``reference_vae``: the true video encoded and decoded by it. Every generator that decodes with
  that VAE is bounded by what survives this round trip, so this is the ceiling a generator can reach.

``generators`` map a condition name to ``fn(record, photo) -> (T, H, W) uint8``; names are free, e.g.
``report+image``, ``image``, ``report``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ffasora.data.format import VideoRecord, load_image, load_truth, load_video, read_manifest
from ffasora.evaluate import paired_physiology
from ffasora.evaluate.classifier import finding_scores
from ffasora.evaluate.vessels import paired_fidelity, vessel_visibility

Generator = Callable[[VideoRecord, np.ndarray], np.ndarray]
Progress = Callable[[int, int], None]
LUMA = np.array([0.299, 0.587, 0.114])
METRICS = ("psnr", "ssim", "vessel_retention", "vessel_visibility")


@dataclasses.dataclass(frozen=True)
class PairedEye:
    """A simulated test eye: its record, true video (T, H, W) uint8, photograph (H, W, 3) uint8, ground-truth
    masks, per-frame phase labels and frame times in seconds (``None`` when the record has none)."""

    record: VideoRecord
    frames: np.ndarray
    photo: np.ndarray
    masks: dict[str, np.ndarray]
    phases: list[str]
    times: np.ndarray | None


def paired_eyes(dataset: str | Path, split: str = "test", limit: int | None = None) -> list[PairedEye]:
    """The simulated records of ``split`` that carry a paired photograph (the first ``limit``), loaded."""
    records = [r for r in read_manifest(dataset) if r.split == split and r.image is not None]
    if not records:
        raise ValueError(f"{dataset}: no {split!r} videos with a paired photograph (simulate with --photos)")
    eyes = []
    for record in records[:limit] if limit is not None else records:
        frames = load_video(dataset, record.id)
        masks, meta = load_truth(dataset, record.id)
        phases = record.phases or meta.get("frames", {}).get("phase") or [""] * len(frames)
        times = np.asarray(record.frame_times_s, np.float64) if record.frame_times_s else None
        eyes.append(PairedEye(record, frames, load_image(dataset, record.id), masks, list(phases), times))
    return eyes


def photo_baselines(photo: np.ndarray, frames: int) -> dict[str, np.ndarray]:
    """The model-free videos (T, H, W) uint8 of a photograph (H, W, 3) uint8: see the module docstring."""
    photo = np.asarray(photo)
    if photo.ndim != 3 or photo.shape[-1] != 3 or photo.dtype != np.uint8:
        raise ValueError(
            f"photograph of shape {photo.shape} and dtype {photo.dtype}: expected (H, W, 3) uint8"
        )
    fov = photo.max(axis=-1) > 0  # the camera's black surround stays black, as in an angiogram
    grey = np.clip(np.round(photo.astype(np.float64) @ LUMA), 0, 255).astype(np.uint8)
    inverted = np.where(fov, 255 - photo[..., 1], 0).astype(np.uint8)
    return {
        name: np.repeat(v[None], frames, axis=0)
        for name, v in (("cfp_grey", grey), ("cfp_green_inverted", inverted))
    }


def condition_videos(
    eyes: Sequence[PairedEye],
    generators: Mapping[str, Generator],
    *,
    baselines: bool = True,
    controls: bool = True,
    vae: Any = None,
    progress: Progress | None = None,
) -> dict[str, list[np.ndarray | None]]:
    """Condition name -> one video per eye (aligned with ``eyes``; ``None`` where a control has no donor):
    the physiology controls (with ``reference_vae`` when a ``vae`` is given), the photograph baselines, then
    each generator, in that order."""
    videos: dict[str, list[np.ndarray | None]] = {}
    if controls:
        checks = paired_physiology.check_videos(
            [e.frames for e in eyes], [e.masks for e in eyes], [e.times for e in eyes]
        )
        donors = paired_physiology.other_anatomy_donors(
            [paired_physiology.applicable(c) for c in checks], [e.frames.shape for e in eyes]
        )
        videos |= paired_physiology.control_videos([e.frames for e in eyes], donors)
    if vae is not None:
        videos["reference_vae"] = [vae_round_trip(vae, e.frames) for e in eyes]
    if baselines:
        for eye in eyes:
            for name, video in photo_baselines(eye.photo, len(eye.frames)).items():
                videos.setdefault(name, []).append(video)
    for k, eye in enumerate(eyes):
        for name, fn in generators.items():
            videos.setdefault(name, []).append(fn(eye.record, eye.photo))
        if progress is not None:
            progress(k + 1, len(eyes))
    return videos


def vae_round_trip(vae: Any, frames: np.ndarray) -> np.ndarray:
    """(T, H, W) uint8 frames through a grey WF-VAE and back (posterior mean), as uint8."""

    from ffasora.io.pixels import to_uint8, to_unit

    return to_uint8(vae.reconstruct(to_unit(frames)[None, None])[0, 0])


def score_video(video: np.ndarray, eye: PairedEye) -> dict[str, Any]:
    """PSNR, SSIM, vessel retention and visibility of one video against its eye, and the physiology checks in
    the eye's masks (``physiology``: check -> bool or ``None``; ``physiology_pass``: all applicable passed)."""
    if video.shape != eye.frames.shape:
        raise ValueError(
            f"a video of shape {video.shape} for {eye.record.id}, whose video is {eye.frames.shape}"
        )
    checks = paired_physiology.check_videos([video], [eye.masks], [eye.times])[0]
    return {
        **paired_fidelity(video, eye.frames, eye.masks, eye.phases),
        "vessel_visibility": vessel_visibility(video),
        "physiology": checks,
        "physiology_pass": paired_physiology.overall(checks),
    }


def score_conditions(
    eyes: Sequence[PairedEye], videos: Mapping[str, Sequence[np.ndarray | None]]
) -> list[dict[str, Any]]:
    """One row per (eye, condition) with a video: ``id``, ``condition``, ``diagnosis`` and :func:`score_video`."""
    rows = []
    for name, per_eye in videos.items():
        if len(per_eye) != len(eyes):
            raise ValueError(f"{name}: {len(per_eye)} videos for {len(eyes)} eyes")
        for eye, video in zip(eyes, per_eye, strict=True):
            if video is not None:
                row = {"id": eye.record.id, "condition": name, "diagnosis": eye.record.primary_diagnosis}
                rows.append(row | score_video(video, eye))
    return rows


def evaluate_photo_generation(
    dataset: str | Path,
    generators: Mapping[str, Generator],
    *,
    split: str = "test",
    limit: int | None = None,
    baselines: bool = True,
    controls: bool = True,
    vae: Any = None,
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """:func:`score_conditions` of the controls, baselines and ``generators`` on the eyes of ``split``."""
    eyes = paired_eyes(dataset, split, limit)
    videos = condition_videos(
        eyes, generators, baselines=baselines, controls=controls, vae=vae, progress=progress
    )
    return score_conditions(eyes, videos)


def bootstrap_interval(
    statistic: Callable[[np.ndarray], float], n: int, rounds: int = 1000, seed: int = 0
) -> list[float] | None:
    """Percentile 95 % interval of ``statistic(indices)`` over ``rounds`` resamples (with replacement) of
    ``n`` eyes; ``None`` for fewer than two eyes or when no resample gives a finite value."""
    if n < 2 or rounds < 1:
        return None
    rng = np.random.default_rng(seed)
    draws = np.array([statistic(rng.integers(0, n, n)) for _ in range(rounds)], dtype=np.float64)
    draws = draws[np.isfinite(draws)]
    return [float(v) for v in np.quantile(draws, [0.025, 0.975])] if len(draws) else None


def _mean_interval(values: np.ndarray, rounds: int, seed: int) -> list[float] | None:
    return bootstrap_interval(lambda index: float(values[index].mean()), len(values), rounds, seed)


def summarise(
    rows: list[dict[str, Any]], metrics: tuple[str, ...] = METRICS, rounds: int = 1000, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Per condition: ``n`` eyes, mean / standard deviation of each metric (non-finite values left out: the
    reference's PSNR is infinite), its bootstrap 95 % interval over eyes (``<metric>_ci95``) and the
    physiology pass rates of :func:`paired_physiology.pass_summary`."""
    out: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(r["condition"] for r in rows):
        mine = [r for r in rows if r["condition"] == name]
        entry: dict[str, Any] = {"n": len(mine)}
        for metric in metrics:
            values = np.array([r.get(metric, np.nan) for r in mine], dtype=np.float64)
            values = values[np.isfinite(values)]
            entry[metric] = (
                (float(values.mean()), float(values.std())) if len(values) else (float("nan"), float("nan"))
            )
            entry[f"{metric}_ci95"] = _mean_interval(values, rounds, seed)
        if all("physiology" in r for r in mine):
            entry["physiology"] = paired_physiology.pass_summary([r["physiology"] for r in mine])
        out[name] = entry
    return out


def findings_f1(
    predicted: np.ndarray, truth: np.ndarray, names: Sequence[str], rounds: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Findings micro precision / recall / F1 of (N, K) decisions against the eyes' (N, K) stated codes, with
    a bootstrap 95 % interval of the micro-F1 over eyes (``f1_ci95``)."""
    predicted, truth = np.asarray(predicted, bool), np.asarray(truth, bool)
    micro = finding_scores(predicted, truth, names)["micro"]

    def f1(index: np.ndarray) -> float:  # pooled counts of the resampled eyes
        p, t = predicted[index], truth[index]
        tp = float((p & t).sum())
        stated = float(p.sum() + t.sum())
        return 2 * tp / stated if stated else 0.0

    return {**micro, "f1_ci95": bootstrap_interval(f1, len(truth), rounds, seed), "n": int(len(truth))}
