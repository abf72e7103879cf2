"""``ffasora prepare``: clinical FFA exports + an index of reports -> an FFA dataset folder.

One index row is one video. Each row is read, standardised (field crop, resize, 1 + 4k frames), scored for
vessel area, de-identified and written atomically by ``format.write_video_files``; the parent process appends
its manifest record. Every problem (a bad file, a bad row, a file no row names, a video below the quality
threshold) becomes one line of ``errors.jsonl`` and the run goes on. Rerunning resumes: videos already in the
manifest are skipped, failed ones are tried again.

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
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ffasora import __version__
from ffasora.data.deid import Scrubber, pseudonym
from ffasora.data.format import DatasetWriter, VideoRecord, frame_statistics, write_video_files
from ffasora.data.index import IndexRow, read_index
from ffasora.data.ingest import TimerReader, read_source, source_kind
from ffasora.data.quality import vessel_area_ratio
from ffasora.data.standardise import INTERPOLATIONS, crop_to_field, detect_field, resample_time, to_uint8

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

    def __post_init__(self) -> None:
        if self.frames < 5 or (self.frames - 1) % 4:
            raise ValueError(f"frames = {self.frames} is not 1 + 4k with k >= 1 (e.g. 5, 9, 17, 21)")
        if self.size < 16:
            raise ValueError(f"size = {self.size} px is too small (at least 16)")
        if self.interp not in INTERPOLATIONS:
            raise ValueError(f"interp {self.interp!r} is not one of {INTERPOLATIONS}")

    def stored(self) -> dict[str, Any]:
        """The config as stored in dataset.json: extra patterns only as a digest (they may hold names)."""
        data = dataclasses.asdict(self)
        patterns = json.dumps(data.pop("extra_patterns"))
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
    key = _load_key(private)
    config = {**cfg.stored(), "key_check": hmac.new(key, b"ffasora", hashlib.sha256).hexdigest()[:12]}
    writer = DatasetWriter(out, creator=f"ffasora {__version__} prepare", source="prepare", config=config)
    rows, outcomes = read_index(index)
    outcomes += _unindexed_files(videos, [r.video for r in rows], Path(index))
    rows, duplicates = _dedupe(rows)
    outcomes += duplicates
    errors_path = private / "errors.jsonl"
    errors_path.write_text("".join(o.error_line() + "\n" for o in outcomes), encoding="utf-8")
    counts = Counter({"kept": 0, "dropped": 0, "failed": len(outcomes)})
    todo = [r for r in rows if not writer.has(video_id(r, key))]
    counts["kept"] = len(rows) - len(todo)
    total = len(rows) + len(outcomes)
    counts["done"] = counts["kept"] + counts["failed"]
    if progress:
        progress(dict(counts), total)
    with open(errors_path, "a", encoding="utf-8") as errors:
        for outcome in _run(todo, videos, out, cfg, key, ocr, workers):
            counts[outcome.status] += 1
            counts["done"] += 1
            if outcome.record is not None:
                writer.append(outcome.record)
            else:
                errors.write(outcome.error_line() + "\n")
                errors.flush()
                outcomes.append(outcome)
            if progress:
                progress(dict(counts), total)
    _sort_errors(errors_path)
    info = writer.finalize(split_seed=cfg.split_seed, fractions=cfg.split_fractions)
    mapping = _write_mapping(private, writer.records, rows, key) if write_mapping else None
    return PrepareSummary(info, dict(counts), errors_path, mapping)


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


def _unindexed_files(videos: Path, named: Sequence[str], index: Path) -> list[Outcome]:
    """One outcome for each source under ``videos`` that no index row names (inside or around)."""
    named_paths = [Path(n) for n in named]
    outcomes = []
    for source in discover_sources(videos, skip={index.resolve()}):
        covered = any(
            source == n or n.is_relative_to(source) or source.is_relative_to(n) for n in named_paths
        )
        if not covered:
            outcomes.append(Outcome(source.as_posix(), "failed", None, "index", "file without an index row"))
    return outcomes


def discover_sources(videos: Path, skip: frozenset[Path] | set[Path] = frozenset()) -> list[Path]:
    """Candidate sources under ``videos`` (relative): files, frame folders and DICOM series folders."""
    found: list[Path] = []
    for folder, dirs, files in os.walk(videos):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for d in list(dirs):
            if source_kind(here / d) is not None:
                found.append((here / d).relative_to(videos))
                dirs.remove(d)
        for name in sorted(files):
            path = here / name
            if name.startswith(".") or path.resolve() in skip or name in ("times.csv", "frame_times.csv"):
                continue
            found.append(path.relative_to(videos))
    return found


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
    pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = [pool.submit(prepare_row, row, videos, out, cfg, key, ocr) for row in rows]
        for future in cf.as_completed(futures):
            yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


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
            return Outcome(row.video, "dropped", row.row, stage, reason, vessel_ratio=ratio)
        frames = to_uint8(resampled)
        stage = "report"
        record = _record(row, key, frames, out_times, method, cfg)
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
        stage = "write"
        write_video_files(out, record.id, frames)
    except (ValueError, OSError, MemoryError) as err:
        return Outcome(row.video, "failed", row.row, stage, str(err).replace(str(videos), "<videos>"))
    except Exception as err:  # a decoder or filter failing in a way it does not document: still one line
        log.warning(
            "%s: unexpected %s while preparing (stage %s)",
            row.video,
            type(err).__name__,
            stage,
            exc_info=True,
        )
        reason = f"unexpected {type(err).__name__}: {err}".replace(str(videos), "<videos>")
        return Outcome(row.video, "failed", row.row, stage, reason)
    return Outcome(row.video, "kept", row.row, record=record, vessel_ratio=ratio)


def _record(
    row: IndexRow, key: bytes, frames: np.ndarray, times: np.ndarray | None, method: str, cfg: PrepareConfig
) -> VideoRecord:
    scrubber = _scrubber(cfg.extra_patterns)
    known = [row.patient_id, row.exam_date or "", Path(row.video).stem]
    report, scrubbed = scrubber.scrub(row.report, known)
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
    """Finding codes of the scrubbed report (``ffasora.findings`` parser), when that parser is available."""
    parse = _report_parser()
    if parse is None:
        record.extra["findings_parser"] = "unavailable"
        return
    findings = parse(record.report)
    record.codes = sorted(findings.codes())
    record.negated = sorted(findings.negated())
    record.diagnoses = [{"code": d.code, "grade": d.grade} for d in findings.diagnoses]
    try:
        from ffasora.findings import to_compact
    except ImportError:
        return
    record.findings = str(to_compact(findings))


def _report_parser() -> Callable[[str], Any] | None:
    """``ffasora.findings.parse_report`` (looked up at call time, so tests may stand in for it)."""
    import ffasora.findings

    parse: Callable[[str], Any] | None = getattr(ffasora.findings, "parse_report", None)
    if parse is not None:
        return parse
    try:
        from ffasora.findings.parser import parse_report
    except ImportError:
        return None
    return parse_report


def _sort_errors(path: Path) -> None:
    """Errors in a stable order (row, then path), whatever order the workers finished in."""
    lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    lines.sort(key=lambda d: (d["row"] is None, d["row"] or 0, d["video"]))
    text = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in lines)
    path.write_text(text, encoding="utf-8")


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
