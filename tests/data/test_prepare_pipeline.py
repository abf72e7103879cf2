"""``ffasora prepare`` end to end over the generated corpus: every format, every bad case, resume, privacy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from prepare_corpus import build_corpus
from typer.testing import CliRunner

from ffasora.cli import app
from ffasora.data.format import MANIFEST, load_video, read_manifest
from ffasora.data.prepare import PrepareConfig, prepare_dataset
from ffasora.data.standardise import disc_mask
from ffasora.data.validate import validate_dataset

CFG = PrepareConfig(size=40, frames=5)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    return build_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def prepared(corpus, tmp_path_factory: pytest.TempPathFactory):
    videos, index, _ = corpus
    out = tmp_path_factory.mktemp("prepared") / "ds"
    calls: list[dict[str, int]] = []
    summary = prepare_dataset(videos, index, out, CFG, progress=lambda c, total: calls.append(c))
    return out, summary, calls


def _errors(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_format_is_kept_and_every_bad_case_is_one_error_line(corpus, prepared) -> None:
    _, _, expected = corpus
    out, summary, calls = prepared
    errors = _errors(summary.errors_path)
    assert {e["video"]: e["status"] for e in errors if e["video"] != "p5/od_series"} == {
        v: s for v, s in expected.items() if s != "kept"
    }
    assert all(e["reason"] for e in errors)
    kept = sum(s == "kept" for s in expected.values())
    assert summary.counts["kept"] == kept == len(read_manifest(out))
    assert summary.counts["failed"] + summary.counts["dropped"] == len(errors)
    assert calls[-1]["done"] == len(errors) + kept
    assert validate_dataset(out) == []
    readers = {r.extra["reader"] for r in read_manifest(out)}
    assert readers == {"video", "frames", "dicom"}


def test_manifest_records_time_sources_interpolation_and_quality(prepared) -> None:
    out, _, _ = prepared
    records = read_manifest(out)
    sources = {r.extra["time_source"] for r in records}
    assert sources == {"container", "filename", "sidecar", "index", "dicom", "none"}
    for r in records:
        assert r.interpolation == ("index" if r.extra["time_source"] == "none" else "time")
        assert 0.02 < r.quality["vessel_ratio"] <= 1 and r.frames == 5 and r.height == r.width == 40
        assert (r.frame_times_s is None) == (r.extra["time_source"] == "none")
        if (
            "findings_parser" not in r.extra
        ):  # the parser is installed: the scrubbed report's codes are stored
            assert "MA" in r.codes and "NVD" in r.negated and r.findings


def test_dataset_holds_no_identifiers_and_no_burned_in_label(corpus, prepared) -> None:
    out, summary, _ = prepared
    text = (out / MANIFEST).read_text() + (out / "dataset.json").read_text()
    for secret in ("John", "Smith", "00123456", "2024-03-01", "MRN-p1", "p1/od", "Doe", "12345678"):
        assert secret not in text
    assert not list(out.rglob("*.dcm")) and summary.errors_path.parent != out
    for r in read_manifest(out):
        assert r.id.startswith("v-") and r.patient_id.startswith("p-")
        frames = load_video(out, r.id)
        assert np.all(frames[:, ~disc_mask(40)] == 0)  # the label lay outside the field: zeroed
    assert not (summary.errors_path.parent / "mapping.csv").exists()


def test_splits_keep_patients_together_and_repeat_for_a_seed(corpus, prepared, tmp_path: Path) -> None:
    videos, index, _ = corpus
    out, _, _ = prepared
    records = read_manifest(out)
    by_patient: dict[str, set[str]] = {}
    for r in records:
        by_patient.setdefault(r.patient_id, set()).add(str(r.split))
    assert all(len(s) == 1 for s in by_patient.values())
    # Same key (copied private folder) and seed -> the same dataset, bit for bit.
    again = tmp_path / "again"
    shutil.copytree(out.with_name("ds.private"), tmp_path / "again.private")
    prepare_dataset(videos, index, again, CFG)
    assert [(r.id, r.split) for r in read_manifest(again)] == [(r.id, r.split) for r in records]
    assert all(np.array_equal(load_video(again, r.id), load_video(out, r.id)) for r in records)


def test_an_interrupted_run_resumes(corpus, prepared, tmp_path: Path) -> None:
    videos, index, _ = corpus
    out, _, _ = prepared
    copy = tmp_path / "ds"
    shutil.copytree(out, copy)
    shutil.copytree(out.with_name("ds.private"), tmp_path / "ds.private")
    lines = (copy / MANIFEST).read_text().splitlines()
    victim = json.loads(lines[2])["id"]
    (copy / MANIFEST).write_text("\n".join(lines[:2] + lines[3:]) + "\n" + lines[3][:25])  # torn last line
    (copy / "videos" / f".{victim}.npz.123.tmp").write_bytes(b"half")  # a half-written file
    info = json.loads((copy / "dataset.json").read_text())
    (copy / "dataset.json").write_text(json.dumps({**info, "complete": False}))
    seen: list[dict[str, int]] = []
    summary = prepare_dataset(videos, index, copy, CFG, progress=lambda c, total: seen.append(c))
    assert seen[0]["kept"] == len(lines) - 1  # all but the removed one were skipped
    assert summary.counts["kept"] == len(lines) and validate_dataset(copy) == []
    assert not list(copy.rglob("*.tmp"))
    assert np.array_equal(load_video(copy, victim), load_video(out, victim))


def test_resuming_with_other_settings_or_another_key_is_refused(corpus, prepared, tmp_path: Path) -> None:
    videos, index, _ = corpus
    out, _, _ = prepared
    with pytest.raises(ValueError, match="different settings"):
        prepare_dataset(videos, index, out, PrepareConfig(size=48, frames=5))
    with pytest.raises(ValueError, match="different settings"):
        prepare_dataset(videos, index, out, CFG, private_dir=tmp_path / "fresh-key")


def test_cli_prepares_with_a_mapping_written_apart(corpus, tmp_path: Path) -> None:
    videos, index, _ = corpus
    jsonl = tmp_path / "index.jsonl"
    import csv

    with open(index) as f:
        rows = [r for r in csv.DictReader(f) if r["video"].startswith(("p1/", "bad/empty"))]
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "ds"
    args = ["prepare", "--videos", str(videos), "--index", str(jsonl), "--out", str(out), "--size", "32"]
    result = CliRunner().invoke(
        app, [*args, "--frames", "5", "--mapping", "--private", str(tmp_path / "priv")]
    )
    assert result.exit_code == 0, result.output
    assert "kept 2" in result.output and "failed" in result.output and "splits:" in result.output
    mapping = (tmp_path / "priv" / "mapping.csv").read_text().splitlines()
    assert len(mapping) == 3 and "p1/od.mp4" in "".join(mapping)
    errors = _errors(tmp_path / "priv" / "errors.jsonl")
    unindexed = {e["video"] for e in errors if e["reason"] == "file without an index row"}
    assert "p2/od.mov" in unindexed and "bad/empty.avi" not in unindexed


def test_cli_refuses_an_index_without_required_columns(corpus, tmp_path: Path) -> None:
    videos, _, _ = corpus
    bad = tmp_path / "index.csv"
    bad.write_text("video,eye\np1/od.mp4,OD\n")
    result = CliRunner().invoke(
        app, ["prepare", "--videos", str(videos), "--index", str(bad), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code != 0 and "patient_id" in result.output


@pytest.mark.slow
@pytest.mark.multiproc
def test_two_workers_give_the_same_dataset(corpus, prepared, tmp_path: Path) -> None:
    videos, index, _ = corpus
    out, summary, _ = prepared
    shutil.copytree(out.with_name("ds.private"), tmp_path / "w2.private")
    (tmp_path / "w2.private" / "errors.jsonl").unlink()
    two = prepare_dataset(videos, index, tmp_path / "w2", CFG, workers=2)
    assert two.counts == summary.counts
    assert (tmp_path / "w2" / MANIFEST).read_text() == (out / MANIFEST).read_text()
    assert two.errors_path.read_text() == summary.errors_path.read_text().replace(str(out.parent), "")


def test_the_documented_example_index_parses(tmp_path: Path) -> None:
    from ffasora.data.index import read_index

    doc = (Path(__file__).resolve().parents[2] / "docs" / "prepare.md").read_text()
    example = doc.split("```csv\n", 1)[1].split("```", 1)[0]
    (tmp_path / "index.csv").write_text(example)
    rows, errors = read_index(tmp_path / "index.csv")
    assert (
        not errors and len(rows) == 4 and rows[0].frame_times is not None and len(rows[0].frame_times) == 11
    )
    assert [r.eye for r in rows] == ["OD", "OS", "OD", "OS"] and rows[1].frame_times is None
    lines = [
        {"video": "a.mp4", "patient_id": "1", "eye": "right", "report": "x", "frame_times": [0, 1.5]},
        {"video": "../b.mp4", "patient_id": "1", "eye": "OD", "report": "x"},
        {"video": "c.mp4", "patient_id": "1", "eye": "OS", "report": "x", "frame_times": "2;1"},
    ]
    (tmp_path / "index.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\nnot json\n")
    rows, errors = read_index(tmp_path / "index.jsonl")
    assert rows[0].eye == "OD" and rows[0].frame_times == (0.0, 1.5)
    assert [e.row for e in errors] == [2, 3, 4]
    assert "inside --videos" in errors[0].reason and "increasing" in errors[1].reason


def test_reports_are_parsed_into_finding_codes_after_scrubbing(corpus, tmp_path: Path, monkeypatch) -> None:
    import ffasora.findings as findings_module
    from ffasora.data.index import IndexRow
    from ffasora.data.prepare import prepare_row
    from ffasora.findings import Diagnosis, Finding, Findings

    seen: list[str] = []

    def parse_report(text: str) -> Findings:  # stands in for the parser being finished in parallel
        seen.append(text)
        return Findings(present=(Finding("MA"),), absent=frozenset({"NVD"}), diagnoses=(Diagnosis("DR"),))

    monkeypatch.setattr(findings_module, "parse_report", parse_report, raising=False)
    monkeypatch.setattr(findings_module, "to_compact", lambda f: "MA;-NVD;DR", raising=False)
    videos, _, _ = corpus
    row = IndexRow(1, "p1/od.mp4", "H77", "OD", "Dr. Ann Lee saw H77. Microaneurysms; no NVD.")
    outcome = prepare_row(row, videos, tmp_path, CFG, b"k" * 32)
    assert outcome.status == "kept" and outcome.record is not None
    assert seen == ["Dr. [NAME] saw [ID]. Microaneurysms; no NVD."]  # the title stays, the name goes
    record = outcome.record
    assert (record.codes, record.negated, record.findings) == (["MA"], ["NVD"], "MA;-NVD;DR")
    assert record.primary_diagnosis == "DR" and record.extra["scrubbed"] == {"ID": 1, "NAME": 1}


def test_an_undocumented_failure_is_still_one_error_line(corpus, tmp_path: Path, monkeypatch) -> None:
    import ffasora.data.prepare as prepare_module
    from ffasora.data.index import IndexRow

    def broken(frames: np.ndarray, threshold: float) -> float:
        raise RuntimeError("filter exploded")

    monkeypatch.setattr(prepare_module, "vessel_area_ratio", broken)
    videos, _, _ = corpus
    row = IndexRow(3, "p1/od.mp4", "H1", "OD", "Normal.")
    outcome = prepare_module.prepare_row(row, videos, tmp_path, CFG, b"k" * 32)
    assert outcome.status == "failed" and outcome.stage == "quality"
    assert "unexpected RuntimeError: filter exploded" in outcome.reason
    assert not list(tmp_path.rglob("*.npz"))


def test_cli_help_lists_the_options() -> None:
    result = CliRunner().invoke(app, ["prepare", "--help"])
    assert result.exit_code == 0
    for option in (
        "--videos",
        "--index",
        "--out",
        "--size",
        "--frames",
        "--interp",
        "--workers",
        "--mapping",
    ):
        assert option in result.output
