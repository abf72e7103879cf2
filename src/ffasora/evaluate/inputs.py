"""What evaluation reads: generated videos (a folder of mp4/gif + provenance JSON, or a dataset folder), the
reference split of an FFA dataset, the pairing between them, and clips resampled to a common size.

A generated video is paired with the reference video of the same report: by the ``source_id`` (or ``id``)
its provenance names when present, otherwise by identical report text. Unpaired videos still count for the
distribution and alignment metrics; paired ones add the paired pixel metrics and the privacy targets.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ffasora.data.dataset import temporal_indices
from ffasora.data.format import INFO, MANIFEST, VideoRecord, load_video, read_manifest, video_path
from ffasora.findings import parse_report

Progress = Callable[[int, int], None]


@dataclass
class VideoItem:
    """One video to evaluate: frames (T, H, W) uint8 and what is known about it."""

    name: str
    frames: np.ndarray
    report: str
    codes: list[str] = field(default_factory=list)
    negated: list[str] = field(default_factory=list)
    source_id: str | None = None
    seed: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def is_dataset(path: str | Path) -> bool:
    return (Path(path) / INFO).is_file()


def record_item(root: str | Path, record: VideoRecord) -> VideoItem:
    path = video_path(root, record.id)
    if not path.is_file():
        raise ValueError(
            f"{root}: video {record.id!r} is in {MANIFEST} but its file {path.name} is missing from videos/ "
            f"(`ffasora validate {root}` lists every problem)"
        )
    try:
        frames = load_video(root, record.id)
    except (OSError, ValueError, KeyError) as err:
        raise ValueError(f"{path}: cannot read the video ({err}); the file is damaged") from None
    return VideoItem(
        name=record.id,
        frames=frames,
        report=record.report,
        codes=list(record.codes),
        negated=list(record.negated),
        source_id=record.id,
        seed=record.seed,
        meta={"split": record.split, "patient_id": record.patient_id, "eye": record.eye},
    )


def load_dataset_items(
    root: str | Path, split: str = "test", limit: int | None = None, progress: Progress | None = None
) -> list[VideoItem]:
    """The videos of one split ("all" for every split) of a dataset folder, in manifest order."""
    if not Path(root).is_dir():
        raise ValueError(f"{root}: no such dataset folder")
    if not is_dataset(root):
        raise ValueError(
            f"{root}: no {INFO}; not an FFA dataset folder (made by `ffasora simulate` or `prepare`)"
        )
    if not (Path(root) / MANIFEST).is_file():
        raise ValueError(f"{root}: {MANIFEST} is missing; the dataset folder is incomplete")
    records = [r for r in read_manifest(root) if split == "all" or r.split == split]
    if not records:
        raise ValueError(f"{root}: no videos in split {split!r}")
    records = records[:limit] if limit else records
    items = []
    for i, record in enumerate(records):
        items.append(record_item(root, record))
        if progress:
            progress(i + 1, len(records))
    return items


def load_generated(
    path: str | Path, split: str = "test", limit: int | None = None, progress: Progress | None = None
) -> list[VideoItem]:
    """Generated videos: a dataset folder (its ``split``), or a folder of ``*.mp4``/``*.gif`` + ``<name>.json``."""
    from ffasora.io.video import read_video

    folder = Path(path)
    if is_dataset(folder):
        return load_dataset_items(folder, split, limit, progress)
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder of generated videos or a dataset folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".mp4", ".gif"))
    if not files:
        raise ValueError(f"{folder}: no .mp4 or .gif videos (and no dataset.json)")
    files = files[:limit] if limit else files
    items = []
    for i, video in enumerate(files):
        sidecar = video.with_suffix(".json")
        if not sidecar.is_file():
            raise ValueError(
                f"{video}: no provenance file {sidecar.name} beside it (needs 'report' and 'seed')"
            )
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{sidecar}: not valid JSON ({err})") from None
        if not isinstance(meta, dict) or "report" not in meta:
            raise ValueError(f"{sidecar}: no 'report' field")
        try:
            frames, _ = read_video(video)
        except (OSError, ValueError) as err:
            reason = " ".join(str(err).split()).removeprefix(f"{video}: ")
            raise ValueError(
                f"{video}: cannot read the video beside {sidecar.name} ({reason}); it is empty or damaged"
            ) from None
        source = meta.get("source_id") or meta.get("id")
        items.append(
            VideoItem(
                name=video.stem,
                frames=frames,
                report=str(meta["report"]),
                codes=list(meta.get("codes", [])),
                negated=list(meta.get("negated", [])),
                source_id=str(source) if source else None,
                seed=meta.get("seed"),
                meta=meta,
            )
        )
        if progress:
            progress(i + 1, len(files))
    return items


def pair_items(generated: list[VideoItem], reference: Iterable[VideoItem]) -> list[int | None]:
    """For each generated video, the index of its reference video (same source id, else same report)."""
    refs = list(reference)
    by_id = {r.source_id: i for i, r in enumerate(refs) if r.source_id}
    by_report: dict[str, int] = {}
    for i, r in enumerate(refs):
        by_report.setdefault(" ".join(r.report.split()), i)
    pairs: list[int | None] = []
    for g in generated:
        if g.source_id and g.source_id in by_id:
            pairs.append(by_id[g.source_id])
        else:
            pairs.append(by_report.get(" ".join(g.report.split())))
    return pairs


def fill_labels(
    generated: list[VideoItem], parse: Callable[[str], tuple[list[str], list[str]]] | None
) -> None:
    """Give generated videos without finding codes the codes their report states (via ``parse``)."""
    for item in generated:
        if not item.codes and parse is not None:
            item.codes, item.negated = parse(item.report)


def report_parser() -> Callable[[str], tuple[list[str], list[str]]]:
    """``ffasora.findings.parse_report`` as (codes, negated)."""

    def parse(text: str) -> tuple[list[str], list[str]]:
        findings = parse_report(text)
        return sorted(findings.codes()), sorted(findings.negated())

    return parse


def to_clip(frames: np.ndarray, n_frames: int, size: int) -> torch.Tensor:
    """(T, H, W) uint8 -> (1, n_frames, size, size) float32 in [-1, 1].

    Longer videos keep evenly spaced frames (first and last included); shorter ones repeat frames by nearest
    index, so generated videos of another length still compare on the same time grid.
    """
    if frames.ndim != 3:
        raise ValueError(f"expected (T, H, W) frames, got shape {frames.shape}")
    if len(frames) >= n_frames:
        index = temporal_indices(len(frames), n_frames)
    else:
        index = np.round(np.linspace(0, len(frames) - 1, n_frames)).astype(np.int64)
    video = torch.from_numpy(np.ascontiguousarray(frames[index])).float().div(127.5).sub(1.0)[None]
    if video.shape[-2:] != (size, size):
        video = F.interpolate(video, size=(size, size), mode="bilinear", antialias=True).clamp(-1.0, 1.0)
    return video


def stack_clips(items: Iterable[VideoItem], n_frames: int, size: int) -> torch.Tensor:
    """(N, 1, T, S, S) clips of many videos."""
    return torch.stack([to_clip(item.frames, n_frames, size) for item in items])
