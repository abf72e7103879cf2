"""The validator finds each kind of planted problem (and none in a good dataset)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ffa_fake_simulator import fake_simulate_case
from PIL import Image

from ffasora.data.build import SimulateConfig, simulate_dataset
from ffasora.data.format import npz_bytes, read_manifest
from ffasora.data.validate import validate_dataset


@pytest.fixture()
def dataset(tmp_path):
    simulate_dataset(tmp_path, SimulateConfig(n=6, size=16, frames=5, seed=2), simulate_fn=fake_simulate_case)
    assert validate_dataset(tmp_path) == []
    return tmp_path


def _edit_manifest(root, index, **changes):
    lines = (root / "manifest.jsonl").read_text().splitlines()
    record = json.loads(lines[index])
    record.update(changes)
    lines[index] = json.dumps(record)
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return record


def test_missing_video_and_truth(dataset):
    ids = [r.id for r in read_manifest(dataset)]
    (dataset / "videos" / f"{ids[0]}.npz").unlink()
    (dataset / "truth" / f"{ids[1]}.json").unlink()
    problems = validate_dataset(dataset)
    assert any(ids[0] in p and "missing" in p for p in problems)
    assert any(ids[1] in p and "ground truth" in p for p in problems)


def test_shape_mismatch_and_bad_frame_count(dataset):
    ids = [r.id for r in read_manifest(dataset)]
    (dataset / "videos" / f"{ids[0]}.npz").write_bytes(npz_bytes({"frames": np.zeros((5, 16, 8), np.uint8)}))
    _edit_manifest(dataset, 1, frames=6)
    problems = validate_dataset(dataset)
    assert any(ids[0] in p and "(5, 16, 8)" in p for p in problems)
    assert any(ids[1] in p and "1 + 4k frames" in p for p in problems)


def test_patient_in_two_splits(dataset):
    records = read_manifest(dataset)
    a, b = records[0], next(r for r in records if r.split != records[0].split)
    _edit_manifest(dataset, records.index(b), patient_id=a.patient_id)
    problems = validate_dataset(dataset)
    assert any(a.patient_id in p and "several splits" in p for p in problems)


def test_unknown_version_and_incomplete(dataset):
    info = json.loads((dataset / "dataset.json").read_text())
    (dataset / "dataset.json").write_text(json.dumps({**info, "complete": False}))
    assert any("incomplete" in p for p in validate_dataset(dataset))
    (dataset / "dataset.json").write_text(json.dumps({**info, "format_version": 3}))
    assert any("unknown format_version 3" in p for p in validate_dataset(dataset))


def test_paired_images_are_checked(dataset):
    """Format 2: a record's paired colour photograph must exist, be RGB at the video's size, and no image
    file may sit there unclaimed; a format-1 folder (no images) still validates."""
    records = read_manifest(dataset)
    assert all(r.image == "cfp" for r in records)
    first, second, third = (dataset / "images" / f"{r.id}.png" for r in records[:3])
    assert np.asarray(Image.open(first)).shape == (16, 16, 3)
    first.unlink()
    Image.new("L", (16, 16)).save(second)
    Image.new("RGB", (8, 16)).save(third)
    _edit_manifest(dataset, 3, image="fluorescein")
    problems = validate_dataset(dataset)
    assert any(records[0].id in p and "paired image" in p and "missing" in p for p in problems)
    assert any(records[1].id in p and "8-bit RGB" in p for p in problems)
    assert any(records[2].id in p and "8-bit RGB" in p for p in problems)
    assert any(records[3].id in p and "fluorescein" in p for p in problems)
    _edit_manifest(dataset, 4, image=None)
    assert any(records[4].id in p and "names no image" in p for p in validate_dataset(dataset))


def test_format_one_folder_without_images_is_valid(tmp_path):
    cfg = SimulateConfig(n=3, size=16, frames=5, seed=2, photos=False)
    simulate_dataset(tmp_path, cfg, simulate_fn=fake_simulate_case)
    assert not (tmp_path / "images").exists()
    assert all(
        "image" not in json.loads(line) for line in (tmp_path / "manifest.jsonl").read_text().splitlines()
    )
    info = json.loads((tmp_path / "dataset.json").read_text())
    (tmp_path / "dataset.json").write_text(json.dumps({**info, "format_version": 1}))
    assert validate_dataset(tmp_path) == []


def test_counts_and_times(dataset):
    _edit_manifest(dataset, 0, split="test" if read_manifest(dataset)[0].split != "test" else "val")
    _edit_manifest(dataset, 2, frame_times_s=[5.0, 4.0, 6.0, 7.0, 8.0])
    problems = validate_dataset(dataset)
    assert any("counts" in p for p in problems)
    assert any("strictly increasing" in p for p in problems)


@pytest.mark.parametrize("bad_id", ["../escape", "..", "a/b", "/abs", "..\\win", ".hidden", ""])
def test_an_id_that_is_a_path_is_refused_without_reading_outside(dataset, bad_id):
    outside = dataset.parent / "escape.npz"  # what videos/../escape would read if the id were trusted
    outside.write_bytes((dataset / "videos" / f"{read_manifest(dataset)[0].id}.npz").read_bytes())
    _edit_manifest(dataset, 0, id=bad_id)
    problems = validate_dataset(dataset)
    assert any(repr(bad_id) in p and "plain file name" in p for p in problems), problems
