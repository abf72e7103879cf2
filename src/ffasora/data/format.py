"""The FFA dataset folder: one versioned layout written by ``simulate`` and ``prepare``, read by everything else.

Layout (docs/dataset-format.md describes each field)::

    DATASET/
      dataset.json          format version, creator, source, frames, size, counts per split, created, config
      manifest.jsonl        one JSON record per video (``VideoRecord``), sorted by id once complete
      videos/<id>.npz       key ``frames``: (T, H, W) uint8 grey frames, losslessly compressed
      truth/<id>.npz        simulated cases only: ground-truth masks, one array per key
      truth/<id>.json       simulated cases only: kinetics, anatomy, seed, detailed findings
      images/<id>.png       optional (format 2): the paired colour fundus photograph, RGB 8-bit, H x W of the video

Writing is crash-safe: each file is written to a temporary name and moved into place with ``os.replace``, and a
manifest record is appended only once its files exist. A build that is interrupted leaves a folder that
``DatasetWriter`` resumes (ids already in the manifest are skipped) and ``validate_dataset`` reports as
incomplete until ``DatasetWriter.finalize`` has run.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import io
import json
import logging
import os
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ffasora.data.splits import SPLITS, assign_splits
from ffasora.models.vae_shapes import frame_count_problem

# 2 added the optional paired image per record (``image``, ``images/<id>.png``); a version-1 folder is a
# version-2 folder without images, so readers take both. Writers write the current version.
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
IMAGE_KINDS = ("cfp",)  # what a paired image is: a colour fundus photograph of the same eye
MANIFEST = "manifest.jsonl"
INFO = "dataset.json"
SOURCES = ("simulator", "prepare")

log = logging.getLogger(__name__)


@dataclasses.dataclass
class VideoRecord:
    """One line of ``manifest.jsonl``: everything known about one video except its pixels.

    ``split`` is ``None`` until the dataset is finalised (patient-level splits need every patient).
    ``findings`` is the compact code string of ``ffasora.findings`` when available; ``codes`` and ``negated``
    always list the finding codes stated present and stated absent. ``diagnoses`` holds ``{"code", "grade"}``.
    Keys this version does not know are kept in ``extra`` and written back unchanged.
    """

    id: str
    patient_id: str
    eye: str
    frames: int
    height: int
    width: int
    report: str
    source: str
    split: str | None = None
    frame_times_s: list[float] | None = None
    phases: list[str] | None = None
    report_lang: str = "en"
    translations: dict[str, str] = dataclasses.field(default_factory=dict)
    findings: str | None = None
    codes: list[str] = dataclasses.field(default_factory=list)
    negated: list[str] = dataclasses.field(default_factory=list)
    diagnoses: list[dict[str, str | None]] = dataclasses.field(default_factory=list)
    quality: dict[str, float] = dataclasses.field(default_factory=dict)
    interpolation: str | None = None
    seed: int | None = None
    image: str | None = None  # kind of the paired image in images/<id>.png ("cfp"), None without one
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        extra = data.pop("extra")
        if data["image"] is None:  # records without an image read exactly as format 1 wrote them
            del data["image"]
        return json.dumps({**data, **extra}, ensure_ascii=False, sort_keys=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VideoRecord:
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        required = {
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        }
        missing = sorted(required - set(data))
        if missing:
            raise ValueError(f"manifest record {data.get('id', '?')!r} lacks required field(s) {missing}")
        known = {k: v for k, v in data.items() if k in names}
        extra = {k: v for k, v in data.items() if k not in names}
        return cls(**known, extra=extra)

    @property
    def primary_diagnosis(self) -> str | None:
        return str(self.diagnoses[0]["code"]) if self.diagnoses else None


# ----------------------------------------------------------------------------------------------- files


def video_path(root: str | Path, video_id: str) -> Path:
    return Path(root) / "videos" / f"{video_id}.npz"


def truth_paths(root: str | Path, video_id: str) -> tuple[Path, Path]:
    """Paths of the ground-truth masks (.npz) and metadata (.json) of a simulated case."""
    base = Path(root) / "truth"
    return base / f"{video_id}.npz", base / f"{video_id}.json"


def image_path(root: str | Path, video_id: str) -> Path:
    """Path of a record's paired image (a colour fundus photograph), whether or not it exists."""
    return Path(root) / "images" / f"{video_id}.png"


def check_image(image: np.ndarray, size: tuple[int, int], what: str = "image") -> None:
    """A paired image must be (H, W, 3) uint8 RGB at the video's frame size."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.shape != (*size, 3):
        raise ValueError(
            f"{what}: expected an ({size[0]}, {size[1]}, 3) uint8 RGB image (the video's frame size), "
            f"got {getattr(image, 'dtype', type(image).__name__)} {getattr(image, 'shape', '')}"
        )


def png_bytes(image: np.ndarray) -> bytes:
    """Lossless PNG of an (H, W, 3) uint8 image, with no time or software chunks (same pixels, same bytes)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image, mode="RGB").save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()


def load_image_file(path: str | Path) -> np.ndarray:
    """An (H, W, 3) uint8 RGB image from a PNG (or any format PIL reads); grey or RGBA are converted."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, UnidentifiedImageError) as err:
        raise ValueError(f"{path}: not a readable image ({err})") from err


def load_image(root: str | Path, video_id: str) -> np.ndarray:
    """The paired image (H, W, 3) uint8 of a record that has one."""
    path = image_path(root, video_id)
    if not path.is_file():
        raise ValueError(f"{path}: no paired image for {video_id!r}")
    return load_image_file(path)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file: a reader sees the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """A compressed ``.npz`` readable by ``np.load``, with fixed zip timestamps.

    ``np.savez_compressed`` stamps each member with the current time, so the same arrays would give different
    bytes on every run; fixing the stamp makes a rebuilt dataset bit-identical to the first build.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
            zf.writestr(info, member.getvalue())
    return buffer.getvalue()


def _jsonable(obj: Any) -> Any:
    """Plain JSON data from dataclasses, numpy scalars/arrays, tuples and sets (sets sorted for stability)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, set | frozenset):
        return sorted(_jsonable(v) for v in obj)
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "to_dict"):
        return _jsonable(obj.to_dict())
    if isinstance(obj, str | int | float | bool | type(None)):
        return obj
    if hasattr(obj, "__dict__"):
        return _jsonable(vars(obj))
    raise TypeError(f"cannot store {type(obj).__name__} as JSON")


def check_frames(frames: np.ndarray, what: str = "frames") -> None:
    """Raise ``ValueError`` unless ``frames`` is a (T, H, W) uint8 array with T = 1 + 4k."""
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim != 3:
        shape = getattr(frames, "shape", None)
        dtype = getattr(frames, "dtype", type(frames).__name__)
        raise ValueError(f"{what}: expected a (T, H, W) uint8 array, got shape {shape} dtype {dtype}")
    problem = frame_count_problem(frames.shape[0])
    if problem is not None:
        raise ValueError(f"{what}: frame count {frames.shape[0]}: {problem}")


def frame_statistics(frames: np.ndarray) -> dict[str, float]:
    """Simple quality figures of (T, H, W) uint8 frames for the manifest's ``quality`` field.

    mean / std: grey level over all frames; saturated / black: fraction of pixels at 255 / 0; min_frame_std:
    the flattest frame's contrast (a blank or lost frame shows up here).
    """
    x = frames.astype(np.float32)
    return {
        "mean": round(float(x.mean()), 3),
        "std": round(float(x.std()), 3),
        "saturated": round(float((frames == 255).mean()), 5),
        "black": round(float((frames == 0).mean()), 5),
        "min_frame_std": round(float(x.reshape(len(x), -1).std(axis=1).min()), 3),
    }


def write_video_files(
    root: str | Path,
    video_id: str,
    frames: np.ndarray,
    masks: Mapping[str, np.ndarray] | None = None,
    truth: Mapping[str, Any] | None = None,
    image: np.ndarray | None = None,
) -> None:
    """Write a video (and, for simulated cases, its ground truth) atomically; safe to call from a worker.

    frames: (T, H, W) uint8 with T = 1 + 4k. masks: name -> array (static (H, W) or per-frame (T, H, W)).
    image: the paired (H, W, 3) uint8 colour photograph, if any. The video file is moved into place last, so
    its presence means the case's files are complete.
    """
    check_frames(frames, f"video {video_id!r}")
    if image is not None:
        check_image(image, frames.shape[1:], f"paired image of video {video_id!r}")
        atomic_write_bytes(image_path(root, video_id), png_bytes(image))
    masks_path, truth_json = truth_paths(root, video_id)
    if masks is not None:
        atomic_write_bytes(masks_path, npz_bytes(masks))
    if truth is not None:
        text = json.dumps(_jsonable(truth), ensure_ascii=False, indent=1, sort_keys=True)
        atomic_write_bytes(truth_json, text.encode())
    atomic_write_bytes(video_path(root, video_id), npz_bytes({"frames": frames}))


# ---------------------------------------------------------------------------------------------- reading


def read_info(root: str | Path) -> dict[str, Any]:
    path = Path(root) / INFO
    if not path.is_file():
        raise ValueError(f"{root}: no {INFO}; not an FFA dataset folder (build one with `ffasora simulate`)")
    info: dict[str, Any] = json.loads(path.read_text())
    if info.get("format_version") not in READABLE_VERSIONS:
        raise ValueError(
            f"{path}: format_version {info.get('format_version')!r}; this ffasora reads {READABLE_VERSIONS}"
        )
    return info


def read_manifest(root: str | Path, *, tolerate_partial_tail: bool = False) -> list[VideoRecord]:
    """All manifest records in file order.

    A build killed while appending can leave a truncated last line; ``tolerate_partial_tail`` drops it (the
    writer does this on resume), otherwise it is an error.
    """
    path = Path(root) / MANIFEST
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as err:
            if tolerate_partial_tail and number == len(lines):
                log.warning("%s: dropping a truncated last record (interrupted write)", path)
                break
            raise ValueError(f"{path}:{number}: not valid JSON ({err})") from err
        records.append(VideoRecord.from_dict(data))
    return records


def load_video(root: str | Path, video_id: str) -> np.ndarray:
    """The (T, H, W) uint8 frames of one video."""
    return load_video_file(video_path(root, video_id))


def load_video_file(path: str | Path) -> np.ndarray:
    with np.load(path, allow_pickle=False) as data:
        if "frames" not in data:
            raise ValueError(f"{path}: no 'frames' array (has {sorted(data.files)})")
        return np.asarray(data["frames"])


def load_truth(root: str | Path, video_id: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Ground truth of a simulated case: (masks name -> array, metadata dict)."""
    masks_path, json_path = truth_paths(root, video_id)
    if not json_path.is_file():
        raise ValueError(f"{json_path}: no ground truth for {video_id!r} (only simulated cases carry it)")
    masks: dict[str, np.ndarray] = {}
    if masks_path.is_file():
        with np.load(masks_path, allow_pickle=False) as data:
            masks = {k: np.asarray(data[k]) for k in data.files}
    return masks, json.loads(json_path.read_text())


# ---------------------------------------------------------------------------------------------- writing


class DatasetWriter:
    """Builds (or resumes building) a dataset folder.

    Typical use::

        writer = DatasetWriter(out, creator="ffasora prepare", source="prepare", config={...})
        for case in cases:
            if not writer.has(case.id):
                writer.write(record, frames)           # files first, then the manifest line
        writer.finalize(split_seed=0)                  # assign patient-level splits, write dataset.json

    Workers of a process pool may call ``write_video_files`` themselves and hand the record to ``append``.
    ``config`` describes how the data were made; resuming with a different config is refused.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        creator: str,
        source: str,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        if source not in SOURCES:
            raise ValueError(f"source {source!r} is not one of {SOURCES}")
        self.root = Path(root)
        self.source = source
        self.creator = creator
        self.config = _jsonable(dict(config or {}))
        self.root.mkdir(parents=True, exist_ok=True)
        self._check_resumable()
        self._records = {r.id: r for r in self._recover_manifest()}
        _write_json(self.root / INFO, self._info(complete=False))

    def _check_resumable(self) -> None:
        path = self.root / INFO
        if not path.is_file():
            if (self.root / MANIFEST).is_file():
                raise ValueError(f"{self.root}: has {MANIFEST} but no {INFO}; not a dataset this writer made")
            return
        old = json.loads(path.read_text())
        if old.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{path}: format_version {old.get('format_version')!r} != {FORMAT_VERSION}")
        if old.get("config") != self.config or old.get("source") != self.source:
            raise ValueError(
                f"{self.root} holds a dataset made with different settings "
                f"({old.get('config')}); choose another --out or delete it"
            )

    def _recover_manifest(self) -> list[VideoRecord]:
        """Keep the records whose video exists; rewrite the manifest cleanly; delete stray temp files."""
        for tmp in self.root.glob("**/.*.tmp"):
            tmp.unlink()
        records = read_manifest(self.root, tolerate_partial_tail=True)
        kept = [r for r in records if video_path(self.root, r.id).is_file()]
        if len(kept) != len(records):
            log.warning(
                "%s: %d manifest record(s) without a video dropped", self.root, len(records) - len(kept)
            )
        if records:
            log.info("%s: resuming, %d video(s) already written", self.root, len(kept))
        self._rewrite_manifest(kept)
        return kept

    def _rewrite_manifest(self, records: Iterable[VideoRecord]) -> None:
        text = "".join(r.to_json() + "\n" for r in records)
        atomic_write_bytes(self.root / MANIFEST, text.encode("utf-8"))

    @property
    def records(self) -> list[VideoRecord]:
        return list(self._records.values())

    def has(self, video_id: str) -> bool:
        return video_id in self._records

    def write(
        self,
        record: VideoRecord,
        frames: np.ndarray,
        masks: Mapping[str, np.ndarray] | None = None,
        truth: Mapping[str, Any] | None = None,
        image: np.ndarray | None = None,
    ) -> None:
        """Write one video's files, then append its record. frames: (T, H, W) uint8; image: the paired
        (H, W, 3) uint8 photograph when ``record.image`` names one."""
        if frames.shape != (record.frames, record.height, record.width):
            raise ValueError(
                f"video {record.id!r}: frames have shape {frames.shape}, record says "
                f"{(record.frames, record.height, record.width)}"
            )
        if (image is None) != (record.image is None):
            given = "no image given" if image is None else "an image given"
            raise ValueError(f"video {record.id!r}: record.image is {record.image!r} with {given}")
        write_video_files(self.root, record.id, frames, masks, truth, image)
        self.append(record)

    def append(self, record: VideoRecord) -> None:
        """Append a record whose files are already written (e.g. by a worker process)."""
        if record.id in self._records:
            raise ValueError(f"{self.root}: video id {record.id!r} is already in the manifest")
        if not video_path(self.root, record.id).is_file():
            raise ValueError(f"{video_path(self.root, record.id)} does not exist; write the files first")
        with open(self.root / MANIFEST, "a", encoding="utf-8") as f:
            f.write(record.to_json() + "\n")
            f.flush()
            os.fsync(f.fileno())
        self._records[record.id] = record

    def finalize(
        self, split_seed: int = 0, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    ) -> dict[str, Any]:
        """Assign patient-level splits to records without one, sort the manifest by id, write dataset.json."""
        records = sorted(self._records.values(), key=lambda r: r.id)
        unassigned = {r.patient_id: r.primary_diagnosis for r in records if r.split is None}
        if unassigned:
            strata = _patient_strata(records)
            fixed = {r.patient_id: r.split for r in records if r.split is not None}
            todo = {p: strata[p] for p in unassigned if p not in fixed}
            assigned = {**assign_splits(todo, fractions=fractions, seed=split_seed), **fixed}
            for r in records:
                r.split = r.split or assigned[r.patient_id]
        self._rewrite_manifest(records)
        info = self._info(complete=True)
        _write_json(self.root / INFO, info)
        log.info("%s: %d videos, splits %s", self.root, len(records), info["counts"])
        return info

    def _info(self, complete: bool) -> dict[str, Any]:
        records = list(self._records.values())
        counts = {s: sum(r.split == s for r in records) for s in SPLITS}
        return {
            "format_version": FORMAT_VERSION,
            "creator": self.creator,
            "source": self.source,
            "complete": complete,
            "frames": _common(r.frames for r in records),
            "height": _common(r.height for r in records),
            "width": _common(r.width for r in records),
            "n_videos": len(records),
            "n_patients": len({r.patient_id for r in records}),
            "counts": counts,
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "config": self.config,
        }


def _patient_strata(records: Iterable[VideoRecord]) -> dict[str, str | None]:
    """A patient's stratum is the primary diagnosis of its first video (by id) that has one."""
    strata: dict[str, str | None] = {}
    for r in records:
        if strata.get(r.patient_id) is None:
            strata[r.patient_id] = r.primary_diagnosis
    return strata


def _common(values: Iterable[int]) -> int | None:
    distinct = set(values)
    return distinct.pop() if len(distinct) == 1 else None


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
