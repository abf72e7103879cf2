"""The study database: one SQLite file in WAL mode holding videos, raters, blinded orders and ratings.

Layout of a study folder::

    STUDY/
      study.sqlite     this schema (WAL journal, ``synchronous=FULL``: a rating acknowledged is on disk)
      media/<uid>.mp4  every video re-encoded the same way, named by a random uid (nothing reveals its source)
      strips/<uid>.png frame strip shown under the player
      raters.csv       the secret links, written once at creation (mode 0600); only token hashes are in the DB

Every call opens its own short-lived connection, so the store is safe to use from the server's worker threads
and from several processes at once; writers take the lock up front (``BEGIN IMMEDIATE``) and wait for each
other through ``busy_timeout`` rather than failing. (Queueing writers on a Python lock instead gave a fifth of
the throughput with 20 concurrent raters; see docs/review.md.)
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DB_NAME = "study.sqlite"
SCHEMA_VERSION = 1
QUALITY_SCALE = (1, 2, 3, 4, 5)
REAL_CALLS = ("real", "synthetic")
KINDS = ("synthetic", "real")

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE videos (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('synthetic', 'real')),
    source TEXT NOT NULL,
    media TEXT NOT NULL,
    strip TEXT,
    frames INTEGER NOT NULL,
    report TEXT,
    codes TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE raters (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    token_hash TEXT NOT NULL UNIQUE
);
CREATE TABLE findings (code TEXT PRIMARY KEY, label TEXT NOT NULL, position INTEGER NOT NULL);
CREATE TABLE assignments (
    rater_id INTEGER NOT NULL REFERENCES raters(id),
    position INTEGER NOT NULL CHECK (position >= 1),
    video_id INTEGER NOT NULL REFERENCES videos(id),
    PRIMARY KEY (rater_id, position),
    UNIQUE (rater_id, video_id)
);
CREATE TABLE ratings (
    rater_id INTEGER NOT NULL,
    video_id INTEGER NOT NULL,
    quality INTEGER NOT NULL CHECK (quality BETWEEN 1 AND 5),
    real_call TEXT CHECK (real_call IN ('real', 'synthetic')),
    findings TEXT NOT NULL DEFAULT '[]',
    comment TEXT NOT NULL DEFAULT '',
    revision INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (rater_id, video_id),
    FOREIGN KEY (rater_id, video_id) REFERENCES assignments(rater_id, video_id)
);
CREATE TABLE rating_events (
    id INTEGER PRIMARY KEY,
    rater_id INTEGER NOT NULL,
    video_id INTEGER NOT NULL,
    quality INTEGER NOT NULL,
    real_call TEXT,
    findings TEXT NOT NULL,
    comment TEXT NOT NULL,
    at TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Rater:
    id: int
    name: str


@dataclass(frozen=True)
class Item:
    """One entry of a rater's blinded list: what the rating page needs, and nothing that reveals the source."""

    position: int
    total: int
    video_id: int
    media: Path
    strip: Path | None


@dataclass(frozen=True)
class Rating:
    quality: int
    real_call: str | None
    findings: tuple[str, ...]
    comment: str
    revision: int
    updated_at: str


def new_token() -> str:
    """A secret link token: 32 URL-safe characters (192 bits) from the OS random source."""
    return secrets.token_urlsafe(24)


def hash_token(token: str) -> str:
    # Only the hash is stored, so a copy of the database does not hand out working links.
    return hashlib.sha256(token.encode()).hexdigest()


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def connect(path: str | Path) -> sqlite3.Connection:
    """A connection with the settings every reader and writer must share."""
    conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def create_schema(conn: sqlite3.Connection, meta: dict[str, Any]) -> None:
    """Create the tables of an empty database and record ``meta`` (values stored as JSON)."""
    # Statement by statement: ``executescript`` would commit the caller's open transaction first.
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    rows = [("schema_version", json.dumps(SCHEMA_VERSION))] + [(k, json.dumps(v)) for k, v in meta.items()]
    conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", rows)


class Store:
    """Reads and writes one study's database; holds only the path, never an open connection."""

    def __init__(self, study_dir: str | Path) -> None:
        self.root = Path(study_dir).resolve()
        self.db_path = self.root / DB_NAME
        if not self.db_path.is_file():
            raise ValueError(f"{study_dir}: no {DB_NAME}; create a study with `ffasora review create`")
        version = self.meta().get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(f"{self.db_path}: schema version {version}, this ffasora reads {SCHEMA_VERSION}")

    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        conn = connect(self.db_path)
        try:
            yield conn
        finally:
            conn.close()

    # ------------------------------------------------------------------------------------------ reading

    def meta(self) -> dict[str, Any]:
        with self._conn() as conn:
            return {r["key"]: json.loads(r["value"]) for r in conn.execute("SELECT key, value FROM meta")}

    def findings(self) -> list[tuple[str, str]]:
        """The checklist shown to raters: (code, label) in display order."""
        with self._conn() as conn:
            rows = conn.execute("SELECT code, label FROM findings ORDER BY position").fetchall()
        return [(r["code"], r["label"]) for r in rows]

    def rater_by_token(self, token: str) -> Rater | None:
        with self._conn() as conn:
            row = conn.execute(
                "SELECT id, name FROM raters WHERE token_hash = ?", (hash_token(token),)
            ).fetchone()
        return Rater(row["id"], row["name"]) if row else None

    def item(self, rater_id: int, position: int) -> Item | None:
        """The rater's ``position``-th video (1-based), or None when the rater has no such position."""
        with self._conn() as conn:
            total = conn.execute(
                "SELECT COUNT(*) FROM assignments WHERE rater_id = ?", (rater_id,)
            ).fetchone()[0]
            row = conn.execute(
                "SELECT v.id, v.media, v.strip FROM assignments a JOIN videos v ON v.id = a.video_id "
                "WHERE a.rater_id = ? AND a.position = ?",
                (rater_id, position),
            ).fetchone()
        if row is None:
            return None
        strip = self.root / row["strip"] if row["strip"] else None
        return Item(position, total, row["id"], self.root / row["media"], strip)

    def positions(self, rater_id: int) -> list[tuple[int, bool]]:
        """(position, rated) for the rater's whole list, in order."""
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT a.position, r.quality IS NOT NULL AS rated FROM assignments a "
                "LEFT JOIN ratings r ON r.rater_id = a.rater_id AND r.video_id = a.video_id "
                "WHERE a.rater_id = ? ORDER BY a.position",
                (rater_id,),
            ).fetchall()
        return [(r["position"], bool(r["rated"])) for r in rows]

    def rating(self, rater_id: int, video_id: int) -> Rating | None:
        with self._conn() as conn:
            row = conn.execute(
                "SELECT quality, real_call, findings, comment, revision, updated_at FROM ratings "
                "WHERE rater_id = ? AND video_id = ?",
                (rater_id, video_id),
            ).fetchone()
        if row is None:
            return None
        return Rating(
            row["quality"],
            row["real_call"],
            tuple(json.loads(row["findings"])),
            row["comment"],
            row["revision"],
            row["updated_at"],
        )

    def table(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows of a read-only query as dicts (used by statistics and export)."""
        with self._conn() as conn:
            return [dict(r) for r in conn.execute(sql, tuple(params)).fetchall()]

    # ------------------------------------------------------------------------------------------ writing

    def save_rating(
        self,
        rater_id: int,
        position: int,
        quality: int,
        real_call: str | None,
        findings: Sequence[str],
        comment: str,
    ) -> int:
        """Insert or replace the rater's rating of their ``position``-th video; returns its revision.

        Every submission is also appended to ``rating_events`` in the same transaction, so the history of
        changed ratings is kept and the count of stored submissions can be checked against the count sent.
        """
        if quality not in QUALITY_SCALE:
            raise ValueError(f"quality {quality!r}: expected one of {QUALITY_SCALE}")
        if real_call is not None and real_call not in REAL_CALLS:
            raise ValueError(f"real_call {real_call!r}: expected one of {REAL_CALLS} or None")
        codes = json.dumps(sorted(set(findings)))
        stamp = now()
        with self._conn() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(
                    "SELECT video_id FROM assignments WHERE rater_id = ? AND position = ?",
                    (rater_id, position),
                ).fetchone()
                if row is None:
                    raise ValueError(f"rater {rater_id} has no position {position}")
                video_id = row["video_id"]
                conn.execute(
                    "INSERT INTO ratings (rater_id, video_id, quality, real_call, findings, comment, "
                    "revision, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?) "
                    "ON CONFLICT (rater_id, video_id) DO UPDATE SET quality = excluded.quality, "
                    "real_call = excluded.real_call, findings = excluded.findings, comment = excluded.comment, "
                    "revision = ratings.revision + 1, updated_at = excluded.updated_at",
                    (rater_id, video_id, quality, real_call, codes, comment, stamp, stamp),
                )
                conn.execute(
                    "INSERT INTO rating_events (rater_id, video_id, quality, real_call, findings, comment, at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (rater_id, video_id, quality, real_call, codes, comment, stamp),
                )
                revision = conn.execute(
                    "SELECT revision FROM ratings WHERE rater_id = ? AND video_id = ?", (rater_id, video_id)
                ).fetchone()[0]
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return int(revision)

    def reset_token(self, rater_name: str) -> str:
        """Give ``rater_name`` a new secret link (the old one stops working); returns the new token."""
        token = new_token()
        with self._conn() as conn:
            cur = conn.execute(
                "UPDATE raters SET token_hash = ? WHERE name = ?", (hash_token(token), rater_name)
            )
        if cur.rowcount != 1:
            raise ValueError(f"{self.root}: no rater named {rater_name!r}")
        return token
