"""``ffasora prepare``: clinical FFA exports + an index of reports -> an FFA dataset folder.

One index row is one video. Each row is read, standardised (field crop, resize, 1 + 4k frames), scored for
vessel area, de-identified and written atomically by ``format.write_video_files``; the parent process appends
its manifest record. Every problem (a bad file, a bad row, a file no row names, a video below the quality
threshold) becomes one line of ``errors.jsonl`` and the run goes on; ``inventory.jsonl`` says what became
of every file under ``--videos`` (kept, dropped, failed or ignored, with the reason). Rerunning resumes:
videos already in the manifest are skipped, failed ones are tried again. Worker processes die with the
parent, so a killed run leaves nothing that writes on, and the rerun cleans what the kill left half done.
At the end the de-identification audit (``deid.audit_dataset``) reads everything written; anything it finds
stops the run before the dataset is marked complete, naming the records. A row's optional photograph (the
index's ``image`` column) is standardised and checked against its video by ``photos.pair_photo``; what became
of each goes to ``pairs.jsonl``, and a photograph that cannot be used costs only the photograph.

Privacy: the dataset folder holds only pseudonymous ids, masked frames and scrubbed reports. What could
re-identify a patient - the pseudonym key, errors.jsonl (it names source files) and, on request, the mapping
from pseudonyms to sources - goes to a private folder apart from the dataset (default ``OUT.private``).
"""

from __future__ import annotations

import concurrent.futures as cf
import csv
import dataclasses
import functools
import hashlib
import hmac
import json
import logging
import multiprocessing
import os
import re
import secrets
import signal
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import ffasora.findings
from ffasora import __version__
from ffasora.data.deid import Candidate, KnownIdentifiers, Scrubber, audit_dataset, pseudonym
from ffasora.data.format import (
    DatasetWriter,
    VideoRecord,
    frame_statistics,
    image_path,
    video_path,
    write_video_files,
)
from ffasora.data.index import IndexRow, read_index
from ffasora.data.ingest import (
    IMAGE_SUFFIXES,
    SIDECAR_NAMES,
    VIDEO_SUFFIXES,
    TimerReader,
    dicom_series,
    is_dicom_file,
    read_source,
)
from ffasora.data.photos import IMAGE_KIND, Pairing, pair_photo
from ffasora.data.quality import vessel_area_ratio
from ffasora.data.standardise import INTERPOLATIONS, crop_to_field, detect_field, resample_time, to_uint8
from ffasora.models.vae_shapes import frame_count_problem

log = logging.getLogger(__name__)

# progress(counts, total): counts has "kept", "dropped", "failed" and "done" (rows finished so far).
Progress = Callable[[dict[str, int], int], None]


@dataclasses.dataclass(frozen=True)
class PrepareConfig:
    """How a dataset is prepared; stored in dataset.json (no paths, no key) and checked on resume."""

    size: int = 512
    frames: int = 21
    interp: str = "time"
    min_vessel_ratio: float = 0.02
    vessel_threshold: float = 0.015
    split_seed: int = 0
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    extra_patterns: tuple[tuple[str, str], ...] = ()
    id_columns: tuple[str, ...] = ()
    drop_mismatched_pairs: bool = False  # leave out photographs whose field or disc side disagrees

    def __post_init__(self) -> None:
        problem = frame_count_problem(self.frames)
        if problem is not None or self.frames < 5:  # a dataset is a video: at least one 4-frame step
            raise ValueError(f"frames = {self.frames}: {problem or 'a video needs at least 5 frames'}")
        if self.size < 16:
            raise ValueError(f"size = {self.size} px is too small (at least 16)")
        if self.interp not in INTERPOLATIONS:
            raise ValueError(f"interp {self.interp!r} is not one of {INTERPOLATIONS}")

    def stored(self) -> dict[str, Any]:
        """The config as stored in dataset.json: extra patterns and identifying columns only as a digest."""
        data = dataclasses.asdict(self)
        patterns = json.dumps([data.pop("extra_patterns"), data.pop("id_columns")])
        data["extra_patterns_sha256"] = hashlib.sha256(patterns.encode()).hexdigest()[:16]
        return data


@dataclasses.dataclass
class Outcome:
    """What became of one index row (or of one file that no row names)."""

    video: str
    status: str  # "kept", "dropped" or "failed"
    row: int | None = None
    stage: str = ""
    reason: str = ""
    record: VideoRecord | None = None
    vessel_ratio: float | None = None
    image: str | None = None  # the row's photograph, relative to --videos
    pairing: Pairing | None = None  # what became of it (None: not reached, the video failed or was dropped)

    def pair_line(self) -> dict[str, Any]:
        """This row's line of pairs.jsonl (private: it names the photograph)."""
        line: dict[str, Any] = {"row": self.row, "video": self.video, "image": self.image}
        if self.pairing is not None:
            line |= {"status": self.pairing.status, "reason": self.pairing.reason}
            return line | (self.pairing.check.summary() if self.pairing.check else {})
        if self.record is not None:  # finished by an earlier run: what its record keeps
            if "pair" not in self.record.extra:
                reason = "the video was prepared by an earlier run without this photograph"
                return line | {"status": "failed", "reason": reason}
            stored = dict(self.record.extra["pair"])
            return line | {"status": stored.pop("status"), "reason": ""} | stored
        return line | {"status": "failed", "reason": f"no video to pair with: {self.status}, {self.reason}"}

    def error_line(self) -> str:
        data: dict[str, Any] = {"row": self.row, "video": self.video, "status": self.status}
        data |= {"stage": self.stage, "reason": self.reason}
        if self.vessel_ratio is not None:
            data["vessel_ratio"] = round(self.vessel_ratio, 5)
        return json.dumps(data, ensure_ascii=False)


@dataclasses.dataclass
class PrepareSummary:
    info: dict[str, Any]
    counts: dict[str, int]
    errors_path: Path
    mapping_path: Path | None
    inventory_path: Path | None = None
    pairs_path: Path | None = None  # pairs.jsonl, when any row names a photograph
    pairs: dict[str, int] = dataclasses.field(default_factory=dict)  # pair status -> rows


class DeidentificationAuditError(ValueError):
    """The audit found possible identifiers in what ``prepare`` wrote; the dataset is left incomplete."""

    def __init__(self, out: Path, candidates: list[Candidate], report: Path) -> None:
        self.candidates = candidates
        records = sorted({c.record or c.file for c in candidates})
        lines = "\n".join("  " + c.line() for c in candidates[:20])
        more = f"\n  ... and {len(candidates) - 20} more" if len(candidates) > 20 else ""
        super().__init__(
            f"{out}: the de-identification audit found {len(candidates)} possible identifier(s) in "
            f"{len(records)} record(s) ({', '.join(records[:10])}); the dataset is not marked complete. "
            f"Add patterns with --scrub-patterns or --id-columns and rerun; all candidates are in {report}\n"
            f"{lines}{more}"
        )


@dataclasses.dataclass(frozen=True)
class Source:
    """Something ``read_source`` can read under --videos (a file or a folder) and the files it is made of."""

    path: str
    members: tuple[str, ...]


def prepare_dataset(
    videos: str | Path,
    index: str | Path,
    out: str | Path,
    cfg: PrepareConfig,
    *,
    workers: int = 1,
    private_dir: str | Path | None = None,
    write_mapping: bool = False,
    ocr: TimerReader | None = None,
    progress: Progress | None = None,
) -> PrepareSummary:
    """Prepare every row of ``index`` (paths relative to ``videos``) into the dataset folder ``out``."""
    videos, out = Path(videos), Path(out)
    if not videos.is_dir():
        raise ValueError(f"--videos {videos}: not a folder")
    private = Path(private_dir) if private_dir else out.with_name(out.name + ".private")
    if private.resolve() == out.resolve() or private.resolve().is_relative_to(out.resolve()):
        raise ValueError(f"private folder {private} must lie outside the dataset folder {out}")
    # Everything that can refuse the run happens before anything is written.
    rows, row_errors = read_index(index, cfg.id_columns)
    if cfg.drop_mismatched_pairs and not any(r.image for r in rows):
        raise ValueError(f"--drop-mismatched-pairs: no row of {index} names a photograph (column 'image')")
    rows, refused_photos = _photos_outside_sources(rows)
    photos = {r.image for r in rows if r.image}
    sources, ignored = inventory(videos, skip={Path(index).resolve()}, photos=photos)
    key = _load_key(private)
    config = {**cfg.stored(), "key_check": hmac.new(key, b"ffasora", hashlib.sha256).hexdigest()[:12]}
    writer = DatasetWriter(out, creator=f"ffasora {__version__} prepare", source="prepare", config=config)
    _remove_unlisted_videos(writer)
    outcomes = [Outcome(e.video, "failed", e.row, "index", e.reason) for e in row_errors]
    outcomes += _unindexed_sources(sources, [r.video for r in rows])
    rows, duplicates = _dedupe(rows)
    outcomes += duplicates
    errors_path = private / "errors.jsonl"
    _atomic_text(errors_path, "".join(o.error_line() + "\n" for o in outcomes))
    counts = Counter({"kept": 0, "dropped": 0, "failed": len(outcomes)})
    todo = [r for r in rows if not writer.has(video_id(r, key))]
    done = [r for r in rows if writer.has(video_id(r, key))]
    records = {r.id: r for r in writer.records}
    finished = [
        Outcome(r.video, "kept", r.row, record=records[video_id(r, key)], image=r.image) for r in done
    ]
    pairs_path = private / "pairs.jsonl"
    earlier = _earlier_pairs(pairs_path, done)
    counts["kept"] = len(done)
    total = len(rows) + len(outcomes)
    counts["done"] = counts["kept"] + counts["failed"]
    if progress:
        progress(dict(counts), total)
    with open(errors_path, "a", encoding="utf-8") as errors:
        for outcome in _run(todo, videos, out, cfg, key, ocr, workers):
            counts[outcome.status] += 1
            counts["done"] += 1
            finished.append(outcome)
            if outcome.record is not None:
                writer.append(outcome.record)
            else:
                errors.write(outcome.error_line() + "\n")
                errors.flush()
            if progress:
                progress(dict(counts), total)
    _sort_errors(errors_path)
    pair_lines = [earlier.get(o.video) or o.pair_line() for o in finished if o.image]
    pair_lines += [
        refused_photos[o.video] | {"status": "failed"} for o in finished if o.video in refused_photos
    ]
    pair_lines.sort(key=lambda d: (d["row"], d["video"]))
    if pair_lines or pairs_path.exists():
        _atomic_text(pairs_path, "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in pair_lines))
    inventory_path = _write_inventory(
        private / "inventory.jsonl", videos, sources, ignored, finished + outcomes, pair_lines
    )
    candidates = audit_dataset(out)
    audit_path = private / "deid_audit.jsonl"
    _atomic_text(
        audit_path, "".join(json.dumps(dataclasses.asdict(c), ensure_ascii=False) + "\n" for c in candidates)
    )
    if candidates:
        raise DeidentificationAuditError(out, candidates, audit_path)
    info = writer.finalize(split_seed=cfg.split_seed, fractions=cfg.split_fractions)
    mapping = _write_mapping(private, writer.records, rows, key) if write_mapping else None
    pairs = dict(Counter(d["status"] for d in pair_lines))
    return PrepareSummary(
        info, dict(counts), errors_path, mapping, inventory_path, pairs_path if pair_lines else None, pairs
    )


def _photos_outside_sources(rows: list[IndexRow]) -> tuple[list[IndexRow], dict[str, dict[str, Any]]]:
    """Rows whose photograph is (part of) a video source lose the photograph, with a pairs.jsonl line:
    a photograph inside a frame folder would be read as a frame of that video too."""
    videos = [Path(r.video) for r in rows]
    kept, refused = [], {}
    for row in rows:
        clash = next((v for v in videos if row.image and Path(row.image).is_relative_to(v)), None)
        if clash is None:
            kept.append(row)
            continue
        reason = f"photograph {row.image} lies in the video source {clash.as_posix()}; not used"
        refused[row.video] = {"row": row.row, "video": row.video, "image": row.image, "reason": reason}
        kept.append(dataclasses.replace(row, image=None))
    return kept, refused


def _earlier_pairs(path: Path, done: list[IndexRow]) -> dict[str, dict[str, Any]]:
    """pairs.jsonl lines of a resumed run's finished rows (their photographs are not read again)."""
    if not path.is_file():
        return {}
    wanted = {r.video: r.image for r in done if r.image}
    lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    return {d["video"]: d for d in lines if wanted.get(d.get("video")) == d.get("image")}


def _atomic_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, so a kill never leaves half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _remove_unlisted_videos(writer: DatasetWriter) -> None:
    """Delete video and image files no manifest record names: a run killed between a worker's write and the
    parent's manifest line leaves them; the rerun writes them again, bit for bit."""
    listed = {video_path(writer.root, r.id).name for r in writer.records}
    listed |= {image_path(writer.root, r.id).name for r in writer.records if r.image}
    written = [*(writer.root / "videos").glob("*.npz"), *(writer.root / "images").glob("*.png")]
    for path in written:
        if path.name not in listed:
            log.info(
                "%s: removing %s (written by an interrupted run, not in the manifest)", writer.root, path.name
            )
            path.unlink()


def video_id(row: IndexRow, key: bytes) -> str:
    return pseudonym(row.video, key, "v-")


def patient_pseudonym(row: IndexRow, key: bytes) -> str:
    return pseudonym(row.patient_id, key, "p-", 10)


def _load_key(private: Path) -> bytes:
    """The pseudonym key of this dataset: created on the first run, reused on resume, never in the dataset."""
    private.mkdir(parents=True, exist_ok=True)
    path = private / "key"
    if not path.is_file():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
    return bytes.fromhex(path.read_text().strip())


def _dedupe(rows: list[IndexRow]) -> tuple[list[IndexRow], list[Outcome]]:
    seen: dict[str, int] = {}
    kept, duplicates = [], []
    for row in rows:
        if row.video in seen:
            reason = f"duplicate index row: row {seen[row.video]} already names this video"
            duplicates.append(Outcome(row.video, "failed", row.row, "index", reason))
        else:
            seen[row.video] = row.row
            kept.append(row)
    return kept, duplicates


def _unindexed_sources(sources: Sequence[Source], named: Sequence[str]) -> list[Outcome]:
    """One outcome for each source under ``videos`` that no index row names (inside or around)."""
    named_paths = [Path(n) for n in named]
    outcomes = []
    for source in sources:
        path = Path(source.path)
        covered = any(path == n or n.is_relative_to(path) or path.is_relative_to(n) for n in named_paths)
        if not covered:
            outcomes.append(Outcome(source.path, "failed", None, "index", "file without an index row"))
    return outcomes


def inventory(
    videos: Path,
    skip: frozenset[Path] | set[Path] = frozenset(),
    photos: frozenset[str] | set[str] = frozenset(),
) -> tuple[list[Source], dict[str, str]]:
    """Every file under ``videos``: the sources it belongs to, or why it is ignored (relative posix paths).

    ``photos``: files the index names as photographs; they are neither sources nor ignored (``prepare``
    accounts for them through pairs.jsonl), and a folder of them is no frame folder.

    A folder of images is one frame source (with its ``times.csv``); a folder is a DICOM series only when its
    single-frame image objects belong to one acquisition; every other video or DICOM file is a source of its
    own, also when it lies in a series or frame folder. DICOM objects without images (structured reports,
    presentation states) and files of no known kind are ignored, each with its reason.
    """
    sources: list[Source] = []
    ignored: dict[str, str] = {}
    for folder, dirs, files in os.walk(videos):
        here = Path(folder)
        dirs.sort()
        rel = lambda p: p.relative_to(videos).as_posix()  # noqa: E731
        paths = [here / f for f in sorted(files)]
        visible = []
        for path in paths:
            if path.name.startswith(".") or any(
                part.startswith(".") for part in path.relative_to(videos).parts
            ):
                ignored[rel(path)] = "hidden file"
            elif path.resolve() in skip:
                ignored[rel(path)] = "the index file"
            elif rel(path) not in photos:
                visible.append(path)
        images = [p for p in visible if p.suffix.lower() in IMAGE_SUFFIXES]
        claimed: set[Path] = set()
        if images:
            members = images + [p for p in visible if p.name in SIDECAR_NAMES]
            sources.append(Source(rel(here), tuple(rel(p) for p in members)))
            claimed |= set(members)
        elif any(is_dicom_file(p) for p in visible):
            series, others = dicom_series(here)
            if series:
                sources.append(Source(rel(here), tuple(rel(p) for p in series)))
                claimed |= set(series)
            for path, reason in others.items():
                ignored[rel(path)] = reason
                claimed.add(path)
        for path in visible:
            if path in claimed:
                continue
            if path.suffix.lower() in VIDEO_SUFFIXES or is_dicom_file(path):
                sources.append(Source(rel(path), (rel(path),)))
            elif path.name in SIDECAR_NAMES:
                ignored[rel(path)] = "frame-time sidecar outside a frame folder"
            else:
                ignored[rel(path)] = f"not a video, frame folder or DICOM file ({path.suffix or 'no suffix'})"
    return sources, ignored


def _write_inventory(
    path: Path,
    videos: Path,
    sources: list[Source],
    ignored: dict[str, str],
    outcomes: list[Outcome],
    pairs: Sequence[dict[str, Any]] = (),
) -> Path:
    """inventory.jsonl: one line per file under --videos, with what became of it and why.

    A file belongs to the source it is part of (a frame or a series member) and takes that source's outcome;
    a file a row names directly takes the row's outcome, even one the inventory would ignore. A photograph
    takes its pairs.jsonl status: paired and mismatched ones are kept (a mismatch gives the reason).
    """
    by_video: dict[str, Outcome] = {}
    for outcome in outcomes:  # a row's own outcome wins over a failed duplicate row naming the same video
        held = by_video.get(outcome.video)
        if held is None or (held.status == "failed" and outcome.status != "failed"):
            by_video[outcome.video] = outcome
    lines: dict[str, dict[str, Any]] = {}
    for source in sources:
        found = by_video.get(source.path)
        for member in source.members:
            if found is None:
                lines[member] = {
                    "status": "failed",
                    "source": source.path,
                    "reason": "file without an index row",
                }
            else:
                reason = found.reason if found.status != "kept" else ""
                lines[member] = {"status": found.status, "source": source.path, "reason": reason}
    for file, reason in ignored.items():
        named = by_video.get(file)
        if named is not None:
            lines[file] = {"status": named.status, "source": file, "reason": named.reason}
        else:
            lines[file] = {"status": "ignored", "source": None, "reason": reason}
    for pair in pairs:
        if pair.get("image") and (videos / pair["image"]).is_file() and pair["image"] not in lines:
            status = {"paired": "kept", "mismatched": "kept"}.get(pair["status"], pair["status"])
            reason = f"photograph: {pair['reason']}" if pair["reason"] else ""
            lines[pair["image"]] = {"status": status, "source": pair["video"], "reason": reason}
    text = "".join(
        json.dumps({"file": file, **lines[file]}, ensure_ascii=False) + "\n" for file in sorted(lines)
    )
    _atomic_text(path, text)
    return path


def _run(
    rows: list[IndexRow],
    videos: Path,
    out: Path,
    cfg: PrepareConfig,
    key: bytes,
    ocr: TimerReader | None,
    workers: int,
) -> Iterator[Outcome]:
    if workers <= 1 or len(rows) <= 1:
        for row in rows:
            yield prepare_row(row, videos, out, cfg, key, ocr)
        return
    # spawn, not fork: the parent may hold torch/OpenMP threads, which a forked child would inherit broken.
    pool = cf.ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=die_with_parent,
        initargs=(os.getpid(),),
    )
    try:
        futures = [pool.submit(prepare_row, row, videos, out, cfg, key, ocr) for row in rows]
        for future in cf.as_completed(futures):
            yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def die_with_parent(parent: int) -> None:
    """Worker initializer: end this process the moment its parent ends, so no orphan writes on.

    On Linux the kernel delivers SIGKILL when the parent dies (``PR_SET_PDEATHSIG``); elsewhere, and for the
    instant before the call took effect, a watchdog thread checks the parent every 0.1 s.
    """
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            threading.Event().wait(0.1)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def prepare_row(
    row: IndexRow, videos: Path, out: Path, cfg: PrepareConfig, key: bytes, ocr: TimerReader | None = None
) -> Outcome:
    """Read, standardise, score, de-identify and write one row's video; never raises for bad input."""
    stage = "read"
    try:
        raw = read_source(videos / row.video, ocr)
        times, time_source = raw.times_s, raw.time_source
        if row.frame_times is not None:
            if len(row.frame_times) != len(raw.frames):
                raise ValueError(
                    f"index gives {len(row.frame_times)} frame times for {len(raw.frames)} frames"
                )
            times, time_source = np.asarray(row.frame_times), "index"
        if len(raw.frames) < 2:
            raise ValueError("only one frame; a video needs at least two")
        stage = "standardise"
        circle = detect_field(raw.frames)
        cropped = crop_to_field(raw.frames, circle, cfg.size)
        resampled, out_times, method = resample_time(cropped, times, cfg.frames, cfg.interp)
        stage = "quality"
        ratio = vessel_area_ratio(resampled, cfg.vessel_threshold)
        if ratio < cfg.min_vessel_ratio:
            reason = f"vessel-area ratio {ratio:.4f} below the threshold {cfg.min_vessel_ratio}"
            return Outcome(row.video, "dropped", row.row, stage, reason, vessel_ratio=ratio, image=row.image)
        frames = to_uint8(resampled)
        pairing = None
        if row.image is not None:
            stage = "image"
            source = (raw.frames.shape[1], raw.frames.shape[2])
            pairing = pair_photo(
                videos / row.image, source, circle, resampled, cfg.size, cfg.drop_mismatched_pairs
            )
            pairing = dataclasses.replace(pairing, reason=pairing.reason.replace(str(videos), "<videos>"))
        stage = "report"
        found = raw.identifiers + (pairing.identifiers if pairing else ())
        record = _record(row, key, frames, out_times, method, cfg, found)
        record.quality["vessel_ratio"] = round(ratio, 5)
        record.extra |= {
            "time_source": time_source if out_times is not None else "none",
            # index, sidecar, file-name and OCR times are as stated (usually from dye injection); DICOM and
            # container times count from the first frame.
            "time_zero": "stated"
            if time_source in ("index", "sidecar", "filename", "ocr")
            else "first_frame",
            "reader": raw.kind,
            "source_frames": len(raw.frames),
            "source_bits": raw.bits,
        }
        image = None if pairing is None else pairing.image
        if pairing is not None:
            record.extra["pair"] = pairing.stored()
            record.image = IMAGE_KIND if image is not None else None
        stage = "write"
        write_video_files(out, record.id, frames, image=image)
        if pairing is not None:  # the parent keeps every outcome: not the pixels
            pairing = dataclasses.replace(pairing, image=None)
    except (ValueError, OSError, MemoryError) as err:
        reason = str(err).replace(str(videos), "<videos>")
        return Outcome(row.video, "failed", row.row, stage, reason, image=row.image)
    except Exception as err:  # a decoder or filter failing in a way it does not document: still one line
        log.warning(
            "%s: unexpected %s while preparing (stage %s)",
            row.video,
            type(err).__name__,
            stage,
            exc_info=True,
        )
        reason = f"unexpected {type(err).__name__}: {err}".replace(str(videos), "<videos>")
        return Outcome(row.video, "failed", row.row, stage, reason, image=row.image)
    return Outcome(
        row.video, "kept", row.row, record=record, vessel_ratio=ratio, image=row.image, pairing=pairing
    )


def known_identifiers(row: IndexRow, dicom: tuple[tuple[str, str], ...] = ()) -> KnownIdentifiers:
    """What the index, the DICOM attributes and the path say identifies this row's patient."""
    return KnownIdentifiers.collect(
        ids=[row.patient_id, *row.identifiers],
        names=[row.patient_name] if row.patient_name else [],
        dates=[row.exam_date] if row.exam_date else [],
        paths=[row.video, *([row.image] if row.image else [])],
        dicom=dicom,
    )


def _record(
    row: IndexRow,
    key: bytes,
    frames: np.ndarray,
    times: np.ndarray | None,
    method: str,
    cfg: PrepareConfig,
    dicom: tuple[tuple[str, str], ...] = (),
) -> VideoRecord:
    scrubber = _scrubber(cfg.extra_patterns)
    report, scrubbed = scrubber.scrub(row.report, known_identifiers(row, dicom))
    t, h, w = frames.shape
    record = VideoRecord(
        id=video_id(row, key),
        patient_id=patient_pseudonym(row, key),
        eye=row.eye,
        frames=t,
        height=h,
        width=w,
        report=report,
        report_lang="zh" if re.search(r"[\u4e00-\u9fff]", report) else "en",
        source="prepare",
        frame_times_s=None if times is None else [round(float(x), 4) for x in times],
        quality=frame_statistics(frames),
        interpolation=method,
        extra={"scrubbed": dict(scrubbed)},
    )
    _add_findings(record)
    if row.diagnosis:
        record.diagnoses = [{"code": row.diagnosis, "grade": None}]
    return record


@functools.cache
def _scrubber(extra: tuple[tuple[str, str], ...]) -> Scrubber:
    """Compile the patterns once per process, not once per video."""
    return Scrubber.build(extra)


def _add_findings(record: VideoRecord) -> None:
    """Finding codes of the scrubbed report (``ffasora.findings``; looked up at call time so tests may stand
    in for the parser)."""
    findings = ffasora.findings.parse_report(record.report)
    record.codes = sorted(findings.codes())
    record.negated = sorted(findings.negated())
    record.diagnoses = [{"code": d.code, "grade": d.grade} for d in findings.diagnoses]
    record.findings = str(ffasora.findings.to_compact(findings))


def _sort_errors(path: Path) -> None:
    """Errors in a stable order (row, then path), whatever order the workers finished in."""
    lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    lines.sort(key=lambda d: (d["row"] is None, d["row"] or 0, d["video"]))
    text = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in lines)
    _atomic_text(path, text)


def _write_mapping(private: Path, records: list[VideoRecord], rows: list[IndexRow], key: bytes) -> Path:
    """pseudonym -> source table, in the private folder only (the user asked for it)."""
    by_id = {video_id(r, key): r for r in rows}
    path = private / "mapping.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        table = csv.writer(f)
        table.writerow(["video_id", "patient_pseudonym", "video", "patient_id", "split"])
        for record in sorted(records, key=lambda r: r.id):
            row = by_id.get(record.id)
            if row is not None:
                table.writerow([record.id, record.patient_id, row.video, row.patient_id, record.split])
    return path
