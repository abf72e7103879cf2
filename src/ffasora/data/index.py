"""The index file of ``ffasora prepare``: one row per video, CSV or JSONL (docs/prepare.md).

Required columns: ``video`` (path relative to --videos: a file or a folder of frames), ``patient_id``, ``eye``
(OD / OS), ``report``. Optional: ``frame_times`` (seconds, ``;``-separated), ``diagnosis``, ``exam_date``.
A file without a required column is refused as a whole; a bad row becomes an error outcome and the rest go on.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ffasora.data.prepare import Outcome

REQUIRED = ("video", "patient_id", "eye", "report")
OPTIONAL = ("frame_times", "diagnosis", "exam_date")
EYES = {
    "od": "OD",
    "re": "OD",
    "r": "OD",
    "right": "OD",
    "os": "OS",
    "le": "OS",
    "l": "OS",
    "left": "OS",
}


@dataclasses.dataclass(frozen=True)
class IndexRow:
    """One validated index row; ``row`` is its 1-based data-row number (for errors.jsonl)."""

    row: int
    video: str
    patient_id: str
    eye: str
    report: str
    frame_times: tuple[float, ...] | None = None
    diagnosis: str | None = None
    exam_date: str | None = None


def read_index(path: str | Path) -> tuple[list[IndexRow], list[Outcome]]:
    """Valid rows, and one failed outcome per invalid row."""
    from ffasora.data.prepare import Outcome

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"--index {path}: no such file")
    raw = _read_jsonl(path) if path.suffix.lower() in (".jsonl", ".ndjson") else _read_csv(path)
    rows, errors = [], []
    for number, data in enumerate(raw, 1):
        try:
            rows.append(parse_row(number, data))
        except ValueError as err:
            video = str(data.get("video") or "") if isinstance(data, dict) else ""
            errors.append(Outcome(video, "failed", number, "index", str(err)))
    return rows, errors


def _read_csv(path: Path) -> list[dict[str, Any]]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = [c.strip() for c in reader.fieldnames or []]
        _check_columns(path, columns)
        return [{(k or "").strip(): v for k, v in row.items()} for row in reader]


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as err:
            rows.append({"_error": f"line {number} is not valid JSON ({err})"})
            continue
        rows.append(data if isinstance(data, dict) else {"_error": f"line {number} is not a JSON object"})
    keys = set().union(*(r.keys() for r in rows)) if rows else set()
    _check_columns(path, sorted(keys))
    return rows


def _check_columns(path: Path, columns: list[str]) -> None:
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise ValueError(f"index {path}: missing column(s) {missing}; required are {list(REQUIRED)}")


def parse_row(number: int, data: dict[str, Any]) -> IndexRow:
    """Validate one row; ``ValueError`` names the row, the field and what was expected."""
    if "_error" in data:
        raise ValueError(f"row {number}: {data['_error']}")
    values = {k: ("" if data.get(k) is None else str(data.get(k)).strip()) for k in (*REQUIRED, *OPTIONAL)}
    for column in REQUIRED:
        if not values[column]:
            raise ValueError(f"row {number}: empty {column!r}")
    video = values["video"].replace("\\", "/")
    if Path(video).is_absolute() or ".." in Path(video).parts:
        raise ValueError(f"row {number}: video {video!r} must be a path inside --videos")
    eye = EYES.get(values["eye"].lower())
    if eye is None:
        raise ValueError(f"row {number}: eye {values['eye']!r}; expected OD or OS")
    return IndexRow(
        row=number,
        video=video,
        patient_id=values["patient_id"],
        eye=eye,
        report=values["report"],
        frame_times=_parse_times(number, data.get("frame_times")),
        diagnosis=values["diagnosis"] or None,
        exam_date=values["exam_date"] or None,
    )


def _parse_times(number: int, value: Any) -> tuple[float, ...] | None:
    if value is None or value == "" or value == []:
        return None
    items = value if isinstance(value, list) else str(value).replace(",", ";").split(";")
    try:
        times = tuple(float(x) for x in items if str(x).strip())
    except ValueError as err:
        raise ValueError(f"row {number}: frame_times {value!r} are not ';'-separated seconds") from err
    if any(b <= a for a, b in zip(times, times[1:], strict=False)):
        raise ValueError(f"row {number}: frame_times are not strictly increasing")
    return times
