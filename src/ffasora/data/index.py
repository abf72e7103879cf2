"""The index file of ``ffasora prepare``: one row per video, CSV or JSONL (docs/prepare.md).

Required columns: ``video`` (path relative to --videos: a file or a folder of frames), ``patient_id``, ``eye``
(OD / OS), ``report``. Optional: ``frame_times`` (seconds, ``;``-separated), ``diagnosis``, ``exam_date``,
``patient_name``, ``image`` (the colour fundus photograph of the same eye, relative to --videos as ``video`` is;
empty for none). Columns the user marks as identifying (``--id-columns``) are read too: their values are
scrubbed from the report wherever they occur and never stored. A file without a required column, or one
that is not UTF-8, is refused as a whole (naming the file and the line); a bad row becomes a ``RowError`` and
the rest go on.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path
from typing import Any

from ffasora.data.ingest import read_text_file

REQUIRED = ("video", "patient_id", "eye", "report")
OPTIONAL = ("frame_times", "diagnosis", "exam_date", "patient_name", "image")
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
    patient_name: str | None = None
    identifiers: tuple[str, ...] = ()  # values of the columns marked as identifying
    image: str | None = None  # the paired colour fundus photograph, relative to --videos


@dataclasses.dataclass(frozen=True)
class RowError:
    """An index row that cannot be used: its number, the video it names (if any) and why."""

    row: int
    video: str
    reason: str


def read_index(path: str | Path, id_columns: tuple[str, ...] = ()) -> tuple[list[IndexRow], list[RowError]]:
    """Valid rows, and one ``RowError`` per invalid row; ``ValueError`` if the file as a whole is unusable.

    id_columns: further columns whose values identify the patient (a name, a phone number, an address).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"--index {path}: no such file")
    text = read_text_file(path)
    raw = _read_jsonl(path, text) if path.suffix.lower() in (".jsonl", ".ndjson") else _read_csv(path, text)
    if raw and id_columns:
        columns = set().union(*(r.keys() for r in raw))
        missing = [c for c in id_columns if c not in columns]
        if missing:
            raise ValueError(f"index {path}: identifying column(s) {missing} not in the file")
    rows, errors = [], []
    for number, data in enumerate(raw, 1):
        try:
            rows.append(parse_row(number, data, id_columns))
        except ValueError as err:
            video = str(data.get("video") or "") if isinstance(data, dict) else ""
            errors.append(RowError(number, video, str(err)))
    return rows, errors


def _read_csv(path: Path, text: str) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = [c.strip() for c in reader.fieldnames or []]
    _check_columns(path, columns)
    try:
        return [{(k or "").strip(): v for k, v in row.items()} for row in reader]
    except csv.Error as err:
        raise ValueError(f"index {path}: line {reader.line_num}: {err}") from err


def _read_jsonl(path: Path, text: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), 1):
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


def parse_row(number: int, data: dict[str, Any], id_columns: tuple[str, ...] = ()) -> IndexRow:
    """Validate one row; ``ValueError`` names the row, the field and what was expected."""
    if "_error" in data:
        raise ValueError(f"row {number}: {data['_error']}")
    values = {k: ("" if data.get(k) is None else str(data.get(k)).strip()) for k in (*REQUIRED, *OPTIONAL)}
    for column in REQUIRED:
        if not values[column]:
            raise ValueError(f"row {number}: empty {column!r}")
    video = _inside_path(number, "video", values["video"])
    image = _inside_path(number, "image", values["image"]) if values["image"] else None
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
        patient_name=values["patient_name"] or None,
        identifiers=tuple(str(data[c]).strip() for c in id_columns if data.get(c) not in (None, "")),
        image=image,
    )


def _inside_path(number: int, column: str, value: str) -> str:
    """A path cell as a posix path relative to --videos; one that leaves the folder is a bad row."""
    path = value.replace("\\", "/")
    if Path(path).is_absolute() or ".." in Path(path).parts:
        raise ValueError(f"row {number}: {column} {path!r} must be a path inside --videos")
    return path


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
