"""``prepare`` end to end on the de-identification corpus: nothing planted survives in any written file, the
audit (``ffasora deid audit``) finds what is planted after the scrubber, clinical-word names change nothing,
every file under --videos is accounted for, and a refused index writes nothing."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from deid_corpus import CLINICAL_NAMES, clean_reports, planted_reports
from prepare_corpus import _dicom_base, angiogram, clinical_times, write_dicom_series, write_video
from pydicom.uid import generate_uid
from typer.testing import CliRunner

from ffasora.cli import app
from ffasora.data.deid import audit_dataset
from ffasora.data.format import MANIFEST, read_manifest
from ffasora.data.prepare import DeidentificationAuditError, PrepareConfig, prepare_dataset
from ffasora.findings import parse_report, to_compact

CFG = PrepareConfig(size=32, frames=5)
FIELDS = ["video", "patient_id", "eye", "report", "exam_date", "patient_name", "phone"]


def _write_index(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        table = csv.DictWriter(f, fieldnames=FIELDS)
        table.writeheader()
        table.writerows({k: r.get(k, "") for k in FIELDS} for r in rows)
    return path


@pytest.fixture(scope="module")
def one_video(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("src") / "a.mp4"
    write_video(path, angiogram(clinical_times(9, 0), seed=0))
    return path.read_bytes()


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory: pytest.TempPathFactory, one_video: bytes):
    """24 videos whose reports hold 384 planted identifiers; paths and index columns identify too."""
    root = tmp_path_factory.mktemp("planted")
    videos = root / "videos"
    reports = planted_reports(24)
    rows = []
    for k, report in enumerate(reports):
        video = (
            f"H{770000 + k}_Whitfield/OD_2024030{k % 9 + 1}.mp4"
            if k % 2
            else f"{CLINICAL_NAMES[k % 10]}/angio{k}.mp4"
        )
        (videos / video).parent.mkdir(parents=True, exist_ok=True)
        (videos / video).write_bytes(one_video)
        rows.append(
            {
                "video": video,
                "patient_id": f"H{770000 + k}",
                "eye": "OD",
                "report": report.text + f" Contact 0{k}77 9{k}3 421 (H{770000 + k}).",
                "exam_date": f"2024-03-0{k % 9 + 1}",
                "patient_name": "Whitfield^Grace",
                "phone": f"0{k}77 9{k}3 421",
            }
        )
    index = _write_index(root / "index.csv", rows)
    out = root / "ds"
    cfg = PrepareConfig(size=32, frames=5, id_columns=("phone",))
    summary = prepare_dataset(videos, index, out, cfg)
    return out, summary, reports, rows


def _written_text(out: Path) -> dict[str, str]:
    return {
        p.relative_to(out).as_posix(): p.read_bytes().decode("utf-8", "replace")
        for p in out.rglob("*")
        if p.is_file()
    }


def test_no_planted_identifier_survives_prepare_in_any_written_file(planted_run) -> None:
    out, summary, reports, rows = planted_run
    assert summary.counts["kept"] == 24 and len(read_manifest(out)) == 24
    written = _written_text(out)
    assert MANIFEST in written and "dataset.json" in written and len(written) == 2 + 24
    leaks = []
    for report, row in zip(reports, rows, strict=True):
        # an age alone ("92") is any number; the planted phrase is what must go
        values = [
            v for p in report.planted for v in (p.values if p.category != "age_over_89" else (p.phrase,))
        ]
        values += [row["patient_id"], row["phone"], "Whitfield", "Grace", row["exam_date"], row["video"]]
        for value in values:
            leaks += [(value, name) for name, text in written.items() if value.lower() in text.lower()]
    assert not leaks, leaks[:10]
    assert audit_dataset(out) == []  # prepare's own audit passed, so the dataset is complete
    assert json.loads((out / "dataset.json").read_text())["complete"] is True


def test_the_audit_names_each_record_with_an_identifier_planted_after_prepare(
    planted_run, tmp_path: Path
) -> None:
    out, _, reports, _ = planted_run
    copy = tmp_path / "ds"
    shutil.copytree(out, copy)
    records = [json.loads(line) for line in (copy / MANIFEST).read_text().splitlines()]
    phrases = [p.phrase for r in reports for p in r.planted]
    planted_in: dict[str, str] = {}
    for k, record in enumerate(records):
        if k % 2 == 0:
            record["report"] = record["report"] + " " + phrases[(k * 7) % len(phrases)]
            planted_in[record["id"]] = phrases[(k * 7) % len(phrases)]
    (copy / MANIFEST).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    found = {c.record for c in audit_dataset(copy)}
    assert found == set(planted_in)
    result = CliRunner().invoke(app, ["deid", "audit", str(copy), "--json"])
    assert result.exit_code == 1
    listed = {json.loads(line)["record"] for line in result.stdout.splitlines() if line.startswith("{")}
    assert listed == set(planted_in)
    clean = CliRunner().invoke(app, ["deid", "audit", str(out)])
    assert clean.exit_code == 0 and "no possible identifier" in clean.output


def test_prepare_fails_loudly_when_the_audit_finds_something(
    planted_run, tmp_path: Path, one_video, monkeypatch
) -> None:
    import ffasora.data.prepare as prepare_module

    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "a.mp4").write_bytes(one_video)
    index = _write_index(
        tmp_path / "index.csv",
        [
            {
                "video": "a.mp4",
                "patient_id": "H1",
                "eye": "OD",
                "report": "Patient Grace Whitfield, no leakage.",
            }
        ],
    )
    monkeypatch.setattr(
        prepare_module, "_scrubber", lambda extra: prepare_module.Scrubber.build(layers=["known"])
    )
    with pytest.raises(DeidentificationAuditError, match=r"v-[0-9a-f]{12}") as err:
        prepare_dataset(videos, index, tmp_path / "ds", CFG)
    assert (
        "Grace" in str(err.value)
        and json.loads((tmp_path / "ds" / "dataset.json").read_text())["complete"] is False
    )
    assert (tmp_path / "ds.private" / "deid_audit.jsonl").read_text().count("\n") >= 1


def test_clinical_word_names_leave_reports_and_codes_unchanged(tmp_path: Path, one_video: bytes) -> None:
    videos = tmp_path / "videos"
    written = [t for t, _ in clean_reports(4)]
    texts = written[:8] + written[-6:]  # the writer's, both languages, and hand-written ones
    texts += [
        "Angiogram: leakage at the disc increasing in the late phase.",
        "Disc: late leakage. Vein: staining.",
    ]
    rows = []
    for k, text in enumerate(texts):
        name, other = CLINICAL_NAMES[k % 10], CLINICAL_NAMES[(k + 3) % 10]
        video = (
            f"{name}/{other}_{k}/angio.mp4"
            if k % 3 == 0
            else f"{name}/{other}{'' if k % 3 == 1 else '.avi'}{k}.mp4"
        )
        (videos / video).parent.mkdir(parents=True, exist_ok=True)
        (videos / video).write_bytes(one_video)
        rows.append({"video": video, "patient_id": name, "eye": "OS", "report": text, "patient_name": other})
    index = _write_index(tmp_path / "index.csv", rows)
    summary = prepare_dataset(videos, index, tmp_path / "ds", CFG, write_mapping=True)
    assert summary.counts["kept"] == len(texts)
    with open(summary.mapping_path, encoding="utf-8") as f:
        mapping = {r["video_id"]: r["video"] for r in csv.DictReader(f)}
    by_video = {r["video"]: r["report"] for r in rows}
    for record in read_manifest(tmp_path / "ds"):
        original = by_video[mapping[record.id]]
        assert record.report == original
        assert record.findings == to_compact(parse_report(original))
        assert record.extra["scrubbed"] == {}


def _dicom_sr(path: Path) -> None:
    ds = _dicom_base("1.2.840.10008.5.1.4.1.1.88.11")  # basic text SR: no image
    for name in (
        "SamplesPerPixel",
        "PhotometricInterpretation",
        "BitsAllocated",
        "BitsStored",
        "HighBit",
        "PixelRepresentation",
    ):
        delattr(ds, name)
    ds.save_as(path, enforce_file_format=True)


def test_every_file_under_videos_is_accounted_for(tmp_path: Path, one_video: bytes) -> None:
    videos = tmp_path / "videos"
    times = clinical_times(5, 2)
    write_dicom_series(videos / "p1/series", angiogram(times, seed=2), times)
    (videos / "p1/series/beside.mp4").write_bytes(one_video)  # another video beside the series
    _dicom_sr(videos / "p1/series/report.dcm")
    mixed = write_dicom_series(videos / "p2/mixed", angiogram(times, seed=3), times)
    other = sorted(mixed.iterdir())[0]
    import pydicom

    ds = pydicom.dcmread(other)
    ds.SeriesInstanceUID = generate_uid()  # one frame of another acquisition: the folder is no series
    ds.save_as(other)
    (videos / "notes.txt").write_text("not a video")
    (videos / ".DS_Store").write_bytes(b"\0")
    rows = [
        {"video": "p1/series", "patient_id": "H1", "eye": "OD", "report": "Normal."},
        {"video": "p1/series/beside.mp4", "patient_id": "H1", "eye": "OS", "report": "Normal."},
        {"video": "p2/mixed", "patient_id": "H2", "eye": "OD", "report": "Normal."},
    ]
    index = _write_index(videos / "index.csv", rows)
    summary = prepare_dataset(videos, index, tmp_path / "ds", CFG)
    lines = [json.loads(x) for x in summary.inventory_path.read_text().splitlines()]
    files = sorted(p.relative_to(videos).as_posix() for p in videos.rglob("*") if p.is_file())
    assert [x["file"] for x in lines] == files  # every file exactly once
    status = {x["file"]: x for x in lines}
    assert {x["status"] for x in lines} <= {"kept", "dropped", "failed", "ignored"}
    assert all(x["reason"] for x in lines if x["status"] != "kept")
    series_frames = [f for f in files if f.startswith("p1/series/IM")]
    assert len(series_frames) == 5 and all(status[f]["status"] == "kept" for f in series_frames)
    assert status["p1/series/beside.mp4"]["status"] == "kept"
    assert "structured report" in status["p1/series/report.dcm"]["reason"]
    assert status["p1/series/report.dcm"]["status"] == "ignored"
    mixed_files = [f for f in files if f.startswith("p2/mixed/")]
    assert all(
        status[f]["status"] == "failed" for f in mixed_files
    )  # no series: the row fails, each file is unindexed
    assert status["index.csv"]["status"] == "ignored" and status[".DS_Store"]["status"] == "ignored"
    assert status["notes.txt"]["status"] == "ignored" and "not a video" in status["notes.txt"]["reason"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"video,eye\na.mp4,OD\n", "patient_id"),
        (
            b"video,patient_id,eye,report\na.mp4,H1,OD,Normal.\nb.mp4,H2,OD,Sch\xf6n\n",
            r"index\.csv: line 3, byte 16: not UTF-8",
        ),
    ],
)
def test_a_refused_index_writes_nothing(
    tmp_path: Path, content: bytes, message: str, one_video: bytes
) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "a.mp4").write_bytes(one_video)
    (tmp_path / "index.csv").write_bytes(content)
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(ValueError, match=message):
        prepare_dataset(videos, tmp_path / "index.csv", tmp_path / "ds", CFG)
    assert sorted(tmp_path.rglob("*")) == before
    result = CliRunner().invoke(
        app,
        [
            "prepare",
            "--videos",
            str(videos),
            "--index",
            str(tmp_path / "index.csv"),
            "--out",
            str(tmp_path / "ds"),
        ],
    )
    assert result.exit_code == 2 and "error:" in result.output and sorted(tmp_path.rglob("*")) == before


def test_every_encoding_error_names_the_file_and_the_line(tmp_path: Path) -> None:
    from prepare_corpus import write_frames

    from ffasora.data.deid import load_patterns
    from ffasora.data.ingest import read_source

    times = clinical_times(5, 1)
    folder = write_frames(tmp_path / "frames", angiogram(times, seed=1), times, sidecar=True)
    (folder / "times.csv").write_bytes(b"file,time_s\nframe0.png,1.0\nframe1.png,2\xe9\n")
    with pytest.raises(ValueError, match=r"times\.csv: line 3, byte 13: not UTF-8"):
        read_source(folder)
    patterns = tmp_path / "patterns.txt"
    patterns.write_bytes(b"# wards\nWARD Rose\nSITE Caf\xe9 Hospital\n")
    with pytest.raises(ValueError, match=r"patterns\.txt:3: not UTF-8"):
        load_patterns(patterns)


def test_cli_help_lists_the_deid_options() -> None:
    result = CliRunner().invoke(app, ["deid", "audit", "--help"])
    assert result.exit_code == 0 and "--json" in result.output
    result = CliRunner().invoke(app, ["prepare", "--help"])
    assert result.exit_code == 0 and "--id-columns" in result.output
