"""Videos generated from a colour fundus photograph, judged against the true angiogram of the same eye.

A photograph-conditioned generator shares the eye's anatomy with its reference, so paired metrics become
fair: PSNR and SSIM in the field of view and the vessel contrast retention of :func:`paired_fidelity`,
against the dataset's own video of that eye. Beside any generator sit two generators that need no model:

* ``cfp_grey``: the photograph's luma, copied into every frame (the copy baseline of image-to-FFA papers);
* ``cfp_green_inverted``: its inverted green channel, where vessels and haemorrhages (dark in colour, bright
  or dark in fluorescein) already take FFA-like contrast. A learned model should beat both.

``generators`` map a condition name to ``fn(record, photo) -> (T, H, W) uint8``; names are free, e.g.
``report+image``, ``image``, ``report``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ffasora.data.format import VideoRecord, load_image, load_truth, load_video, read_manifest
from ffasora.evaluate.vessels import paired_fidelity

Generator = Callable[[VideoRecord, np.ndarray], np.ndarray]
LUMA = np.array([0.299, 0.587, 0.114])


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


def evaluate_photo_generation(
    dataset: str | Path,
    generators: Mapping[str, Generator],
    *,
    split: str = "test",
    limit: int | None = None,
    baselines: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """One row per (eye, condition): ``id``, ``condition``, ``psnr``, ``ssim``, ``vessel_retention``.

    Eyes: the simulated records of ``split`` that carry a paired photograph (the first ``limit``). The
    reference is the eye's stored video; masks and phases come from its ground truth.
    """
    records = [r for r in read_manifest(dataset) if r.split == split and r.image is not None]
    if not records:
        raise ValueError(f"{dataset}: no {split!r} videos with a paired photograph (simulate with --photos)")
    records = records[:limit] if limit is not None else records
    rows: list[dict[str, Any]] = []
    for k, record in enumerate(records):
        truth = load_video(dataset, record.id)
        masks, meta = load_truth(dataset, record.id)
        phases = record.phases or meta.get("frames", {}).get("phase") or [""] * len(truth)
        photo = load_image(dataset, record.id)
        videos = dict(photo_baselines(photo, len(truth))) if baselines else {}
        videos |= {name: fn(record, photo) for name, fn in generators.items()}
        for name, video in videos.items():
            if video.shape != truth.shape:
                raise ValueError(
                    f"{name}: generated {video.shape} for {record.id}, its video is {truth.shape}"
                )
            scores = paired_fidelity(video, truth, masks, phases)
            rows.append({"id": record.id, "condition": name, "diagnosis": record.primary_diagnosis, **scores})
        if progress is not None:
            progress(k + 1, len(records))
    return rows


def summarise(
    rows: list[dict[str, Any]], metrics: tuple[str, ...] = ("psnr", "ssim", "vessel_retention")
) -> dict[str, dict[str, Any]]:
    """Per condition: ``n`` eyes and mean / standard deviation of each metric (NaNs left out)."""
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
        out[name] = entry
    return out
