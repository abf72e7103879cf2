"""Check an FFA dataset folder against the format (``ffasora validate DATASET``)."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from ffasora.data.format import (
    IMAGE_KINDS,
    INFO,
    MANIFEST,
    READABLE_VERSIONS,
    SOURCES,
    VideoRecord,
    image_path,
    load_image_file,
    read_manifest,
    truth_paths,
    video_path,
)
from ffasora.data.splits import SPLITS
from ffasora.models.vae_shapes import frame_count_problem

# An id names files (videos/<id>.npz): a plain file stem, never a path out of the dataset folder.
_SAFE_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}$")


def validate_dataset(root: str | Path, *, check_videos: bool = True) -> list[str]:
    """Every problem found in the dataset at ``root``, as sentences; an empty list means valid.

    Checks the version and completeness of dataset.json, every manifest record (an id that is a plain file
    stem: letters, digits, ``_ . -``, no path such as ``../x``; split, source, frame count 1 + 4k, frame-time
    and phase lengths), that each video exists and (with ``check_videos``) has the shape
    its record states, that simulated cases' truth files exist, that no patient sits in two splits, and that
    dataset.json's counts match the manifest.
    """
    root = Path(root)
    if not root.is_dir():
        return [f"{root}: not a folder"]
    problems: list[str] = []
    info_path = root / INFO
    info: dict = {}
    if not info_path.is_file():
        problems.append(f"{INFO} is missing")
    else:
        try:
            info = json.loads(info_path.read_text())
        except json.JSONDecodeError as err:
            problems.append(f"{INFO} is not valid JSON ({err})")
        if info and info.get("format_version") not in READABLE_VERSIONS:
            problems.append(
                f"unknown format_version {info.get('format_version')!r} (expected one of {READABLE_VERSIONS})"
            )
            return problems
        if info and not info.get("complete", False):
            problems.append("dataset is incomplete (interrupted build); rerun the same command to resume")
    if not (root / MANIFEST).is_file():
        return [*problems, f"{MANIFEST} is missing"]
    try:
        records = read_manifest(root)
    except ValueError as err:
        return [*problems, str(err)]
    if not records:
        problems.append(f"{MANIFEST} has no records")
    problems += _check_records(root, records, check_videos)
    problems += _check_patients(records)
    if info.get("complete"):
        counts = {s: sum(r.split == s for r in records) for s in SPLITS}
        if info.get("counts") != counts:
            problems.append(f"{INFO} counts {info.get('counts')} differ from the manifest's {counts}")
    return problems


def _check_records(root: Path, records: list[VideoRecord], check_videos: bool) -> list[str]:
    problems: list[str] = []
    seen: set[str] = set()
    for r in records:
        where = f"video {r.id!r}"
        if r.id in seen:
            problems.append(f"{where}: id appears twice in the manifest")
        seen.add(r.id)
        if not isinstance(r.id, str) or not _SAFE_ID.match(r.id):
            problems.append(
                f"{where}: id must be a plain file name (letters, digits, '_', '.', '-'; not a path such as "
                "'../x'), because it names the video's files"
            )
            continue  # its files would lie outside the dataset: never look for them
        if r.split not in SPLITS:
            problems.append(f"{where}: split {r.split!r} is not one of {SPLITS}")
        if r.source not in SOURCES:
            problems.append(f"{where}: source {r.source!r} is not one of {SOURCES}")
        frames_problem = frame_count_problem(r.frames)
        if frames_problem is not None:
            problems.append(f"{where}: frame count {r.frames}: {frames_problem}")
        for name in ("frame_times_s", "phases"):
            values = getattr(r, name)
            if values is not None and len(values) != r.frames:
                problems.append(f"{where}: {len(values)} {name} for {r.frames} frames")
        if r.frame_times_s is not None and np.any(np.diff(r.frame_times_s) <= 0):
            problems.append(f"{where}: frame_times_s are not strictly increasing")
        problems += _check_files(root, r, check_videos)
    return problems


def _check_files(root: Path, r: VideoRecord, check_videos: bool) -> list[str]:
    where = f"video {r.id!r}"
    path = video_path(root, r.id)
    if not path.is_file():
        return [f"{where}: {path.relative_to(root)} is missing"]
    problems = []
    if r.source == "simulator":
        problems += [
            f"{where}: ground truth {p.relative_to(root)} is missing"
            for p in truth_paths(root, r.id)
            if not p.is_file()
        ]
    problems += _check_image(root, r, check_videos)
    if check_videos:
        try:
            with np.load(path, allow_pickle=False) as data:
                frames = data["frames"]
        except (OSError, KeyError, ValueError) as err:
            return [*problems, f"{where}: cannot read {path.relative_to(root)} ({err})"]
        expected = (r.frames, r.height, r.width)
        if frames.dtype != np.uint8 or frames.shape != expected:
            problems.append(
                f"{where}: stored frames are {frames.dtype} {frames.shape}, manifest says uint8 {expected}"
            )
    return problems


def _check_patients(records: list[VideoRecord]) -> list[str]:
    splits_of: dict[str, set[str]] = defaultdict(set)
    for r in records:
        if r.split is not None:
            splits_of[r.patient_id].add(r.split)
    return [
        f"patient {p!r} appears in several splits: {sorted(s)}"
        for p, s in sorted(splits_of.items())
        if len(s) > 1
    ]


def _check_image(root: Path, r: VideoRecord, check_pixels: bool) -> list[str]:
    """A record's paired image: a known kind, the file present, RGB uint8 at the video's frame size; and no
    image file without a record that claims it."""
    where, path = f"video {r.id!r}", image_path(root, r.id)
    if r.image is None:
        if path.is_file():
            return [f"{where}: {path.relative_to(root)} exists but the record names no image"]
        return []
    if r.image not in IMAGE_KINDS:
        return [f"{where}: image kind {r.image!r} is not one of {IMAGE_KINDS}"]
    if not path.is_file():
        return [f"{where}: paired image {path.relative_to(root)} is missing"]
    if not check_pixels:
        return []
    try:
        image = load_image_file(path)
    except ValueError as err:
        return [f"{where}: {err}"]
    from PIL import Image

    with Image.open(path) as im:
        mode = im.mode
    expected = (r.height, r.width, 3)
    if mode != "RGB" or image.shape != expected:
        return [f"{where}: paired image is {mode} {image.shape[:2]}, expected 8-bit RGB at {expected[:2]}"]
    return []
