"""Creating a study: find the videos, mix in real ones at a set share, give each rater a blinded random order.

Sources are folders of video files (mp4, gif, webm, ...) or FFA dataset folders (``manifest.jsonl`` plus
``videos/<id>.npz`` holding (T, H, W) uint8 frames, see docs/dataset-format.md). Every chosen video is
re-encoded uniformly (``media.py``) under a random uid, so neither its name nor its bytes tell a rater where it
came from. The study is built in a temporary folder and moved into place at the end: an interrupted
``create`` leaves no half-made study behind.
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
import secrets
import shutil
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ffasora import __version__
from ffasora.review import media, store

_RATER_NAME = re.compile(r"^[\w][\w .@-]{0,63}$")


@dataclass(frozen=True)
class StudyOptions:
    """How a study is put together.

    real_share: fraction of each rater's list that is real videos (0 <= share < 1), when real sources are given.
    per_rater: videos per rater; None gives every rater every chosen video (a fully crossed design, which
      ICC(2,k) and Fleiss' kappa need). With fewer, videos are spread so each is seen by about equally many.
    size: height all videos are resized to; None uses the smallest height among the chosen videos.
    ask_real: show the "real or synthetic?" question; None asks it exactly when real videos are mixed in.
    findings: the checklist shown to raters as (code, label); empty hides it.
    """

    real_share: float = 0.2
    per_rater: int | None = None
    seed: int = 0
    size: int | None = None
    fps: int = 7
    ask_real: bool | None = None
    findings: tuple[tuple[str, str], ...] = ()
    title: str = "FFA video quality review"


@dataclass(frozen=True)
class SourceVideo:
    """A video found in a source folder; ``npz`` videos come from a dataset folder's manifest."""

    path: Path
    label: str
    report: str | None = None
    codes: tuple[str, ...] = ()

    def height(self) -> int:
        """Frame height, read from the header without decoding the video."""
        if self.path.suffix == ".npz":
            with zipfile.ZipFile(self.path) as zf, zf.open("frames.npy") as f:
                major, _ = np.lib.format.read_magic(f)
                read = (
                    np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
                )
                shape = read(f)[0]
            return int(shape[1])
        return media.probe_height(self.path)

    def frames(self) -> np.ndarray:
        """(T, H, W) uint8 grey frames."""
        if self.path.suffix == ".npz":
            with np.load(self.path, allow_pickle=False) as data:
                frames = data["frames"]
            if frames.ndim != 3 or frames.dtype != np.uint8:
                raise ValueError(
                    f"{self.path}: 'frames' is {frames.dtype} {frames.shape}, expected (T, H, W) uint8"
                )
            return frames
        return media.read_grey(self.path)


@dataclass
class CreatedStudy:
    path: Path
    tokens: dict[str, str]
    n_synthetic: int
    n_real: int
    per_rater: int
    warnings: list[str] = field(default_factory=list)


def scan_sources(paths: Sequence[str | Path]) -> list[SourceVideo]:
    """Every video under ``paths``: dataset folders through their manifest, other folders searched recursively."""
    found: list[SourceVideo] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file() and path.suffix.lower() in media.VIDEO_SUFFIXES:
            found.append(SourceVideo(path.resolve(), path.name))
        elif (path / "manifest.jsonl").is_file():
            found.extend(_scan_dataset(path))
        elif path.is_dir():
            files = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in media.VIDEO_SUFFIXES
            )
            found.extend(SourceVideo(p.resolve(), str(p.relative_to(path))) for p in files)
        else:
            raise ValueError(f"{path}: not a video file or folder")
    return found


def _scan_dataset(root: Path) -> list[SourceVideo]:
    videos: list[SourceVideo] = []
    for n, line in enumerate((root / "manifest.jsonl").read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            video_id = str(record["id"])
        except (json.JSONDecodeError, KeyError) as exc:
            raise ValueError(f"{root}/manifest.jsonl line {n}: not a record with an 'id' ({exc})") from exc
        path = root / "videos" / f"{video_id}.npz"
        if not path.is_file():
            raise ValueError(f"{root}: manifest lists {video_id!r} but {path} is missing")
        codes = tuple(str(c) for c in record.get("codes", []))
        videos.append(SourceVideo(path.resolve(), f"{root.name}/{video_id}", record.get("report"), codes))
    return videos


def plan(
    n_synthetic: int, n_real: int, raters: int, options: StudyOptions
) -> tuple[list[int], list[int], list[list[tuple[str, int]]]]:
    """Which videos are used and each rater's blinded order.

    Returns (synthetic indices used, real indices used, per rater a shuffled list of (kind, index)).
    Pure and seeded: the same inputs always give the same study.
    """
    if not 0 <= options.real_share < 1:
        raise ValueError(f"real_share {options.real_share}: expected 0 <= share < 1")
    rng = random.Random(options.seed)
    share = options.real_share if n_real else 0.0
    if options.per_rater is None:
        want_real = round(share * n_synthetic / (1 - share))
        syn_per, real_per = n_synthetic, min(n_real, want_real)
    else:
        if options.per_rater < 1:
            raise ValueError(f"per_rater {options.per_rater}: expected at least 1")
        real_per = min(n_real, round(share * options.per_rater))
        syn_per = min(n_synthetic, options.per_rater - real_per)
    syn_pool = rng.sample(range(n_synthetic), n_synthetic)
    real_pool = rng.sample(range(n_real), n_real)
    if options.per_rater is None:
        real_pool = real_pool[:real_per]
    orders: list[list[tuple[str, int]]] = []
    for j in range(raters):
        # Consecutive windows over a shuffled pool: each rater's videos are distinct and every video is
        # seen by as many raters as any other, give or take one.
        items = [("synthetic", syn_pool[(j * syn_per + t) % n_synthetic]) for t in range(syn_per)]
        items += [("real", real_pool[(j * real_per + t) % len(real_pool)]) for t in range(real_per)]
        random.Random(f"{options.seed}/{j}").shuffle(items)
        orders.append(items)
    used_syn = sorted({i for order in orders for k, i in order if k == "synthetic"})
    used_real = sorted({i for order in orders for k, i in order if k == "real"})
    return used_syn, used_real, orders


def create_study(
    study_dir: str | Path,
    synthetic: Sequence[str | Path],
    raters: Sequence[str],
    real: Sequence[str | Path] = (),
    options: StudyOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> CreatedStudy:
    """Build a study folder (see ``store.py``) and return each rater's secret token.

    ``progress(done, total)`` is called after each video is re-encoded.
    """
    options = options or StudyOptions()
    target = Path(study_dir)
    if target.exists() and any(target.iterdir()):
        raise ValueError(f"{target}: exists and is not empty; a study is never overwritten")
    names = [n.strip() for n in raters]
    bad = [n for n in names if not _RATER_NAME.match(n)]
    if bad or not names or len(set(names)) != len(names):
        raise ValueError(
            f"raters {list(raters)}: expected distinct names of letters, digits, ' .@-' (bad: {bad})"
        )
    syn_sources, real_sources = scan_sources(synthetic), scan_sources(real)
    if not syn_sources:
        raise ValueError(
            f"no videos found in {[str(p) for p in synthetic]} (looked for {media.VIDEO_SUFFIXES})"
        )
    used_syn, used_real, orders = plan(len(syn_sources), len(real_sources), len(names), options)
    chosen = [("synthetic", syn_sources[i]) for i in used_syn] + [
        ("real", real_sources[i]) for i in used_real
    ]
    warnings = _share_warnings(options, real_sources, orders)

    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    (tmp / "media").mkdir(parents=True)
    (tmp / "strips").mkdir()
    try:
        videos = _encode_all(tmp, chosen, options, progress)
        tokens = _write_database(tmp, names, videos, orders, used_syn, used_real, options)
        _write_links(tmp / "raters.csv", tokens)
        if target.exists():
            target.rmdir()
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    lengths = {
        kind: sorted({int(str(v["frames"])) for v in videos if v["kind"] == kind}) for kind in store.KINDS
    }
    if lengths["real"] and lengths["real"] != lengths["synthetic"]:
        warnings.append(
            f"frame counts differ (real {lengths['real']}, synthetic {lengths['synthetic']}): "
            "raters could tell them apart by length"
        )
    return CreatedStudy(target, tokens, len(used_syn), len(used_real), len(orders[0]), warnings)


def _share_warnings(
    options: StudyOptions, real_sources: list[SourceVideo], orders: list[list[tuple[str, int]]]
) -> list[str]:
    warnings = []
    if real_sources and options.real_share > 0:
        got = sum(k == "real" for k, _ in orders[0]) / len(orders[0])
        if abs(got - options.real_share) > 0.5 / len(orders[0]) + 1e-9:
            warnings.append(f"real share {got:.2f} instead of {options.real_share:.2f}: too few real videos")
    if options.per_rater is not None and len(orders[0]) < options.per_rater:
        warnings.append(
            f"{len(orders[0])} videos per rater instead of {options.per_rater}: not enough videos"
        )
    if options.per_rater is not None and len(orders) > 1:
        warnings.append(
            "per-rater subsets: the design is not fully crossed; ICC and Fleiss use complete videos only"
        )
    return warnings


def _encode_all(
    root: Path,
    chosen: list[tuple[str, SourceVideo]],
    options: StudyOptions,
    progress: Callable[[int, int], None] | None,
) -> list[dict[str, object]]:
    # By default the smallest height among the chosen videos: nothing is upscaled and every video ends up alike.
    height = options.size or min(src.height() for _, src in chosen)
    videos: list[dict[str, object]] = []
    for n, (kind, src) in enumerate(chosen):
        frames = media.fit_frames(src.frames(), height)
        uid = secrets.token_hex(8)
        media.write_mp4(root / "media" / f"{uid}.mp4", frames, options.fps)
        media.write_strip(root / "strips" / f"{uid}.png", frames)
        videos.append(
            {
                "uid": uid,
                "kind": kind,
                "source": str(src.path),
                "media": f"media/{uid}.mp4",
                "strip": f"strips/{uid}.png",
                "frames": int(frames.shape[0]),
                "report": src.report,
                "codes": json.dumps(list(src.codes)),
            }
        )
        if progress is not None:
            progress(n + 1, len(chosen))
    return videos


def _write_database(
    root: Path,
    names: list[str],
    videos: list[dict[str, object]],
    orders: list[list[tuple[str, int]]],
    used_syn: list[int],
    used_real: list[int],
    options: StudyOptions,
) -> dict[str, str]:
    meta = {
        "title": options.title,
        "created": store.now(),
        "ffasora_version": __version__,
        "seed": options.seed,
        "real_share": options.real_share,
        "per_rater": options.per_rater,
        "fps": options.fps,
        "ask_real": bool(used_real) if options.ask_real is None else options.ask_real,
        # Signs CSRF tokens; it never leaves the server.
        "secret": secrets.token_hex(32),
    }
    conn = store.connect(root / store.DB_NAME)
    try:
        conn.execute("BEGIN")
        store.create_schema(conn, meta)
        video_ids: dict[tuple[str, int], int] = {}
        keys = [("synthetic", i) for i in used_syn] + [("real", i) for i in used_real]
        for key, video in zip(keys, videos, strict=True):
            cur = conn.execute(
                "INSERT INTO videos (uid, kind, source, media, strip, frames, report, codes) "
                "VALUES (:uid, :kind, :source, :media, :strip, :frames, :report, :codes)",
                video,
            )
            assert cur.lastrowid is not None
            video_ids[key] = cur.lastrowid
        conn.executemany(
            "INSERT INTO findings (code, label, position) VALUES (?, ?, ?)",
            [(code, label, n) for n, (code, label) in enumerate(options.findings)],
        )
        tokens: dict[str, str] = {}
        for name, order in zip(names, orders, strict=True):
            tokens[name] = store.new_token()
            cur = conn.execute(
                "INSERT INTO raters (name, token_hash) VALUES (?, ?)", (name, store.hash_token(tokens[name]))
            )
            conn.executemany(
                "INSERT INTO assignments (rater_id, position, video_id) VALUES (?, ?, ?)",
                [(cur.lastrowid, p, video_ids[key]) for p, key in enumerate(order, start=1)],
            )
        conn.execute("COMMIT")
    finally:
        conn.close()
    return tokens


def _write_links(path: Path, tokens: dict[str, str]) -> None:
    # The only copy of the tokens: readable by the study owner alone.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["rater", "path"])
        for name, token in tokens.items():
            writer.writerow([name, f"/r/{token}/"])
