"""The validator finds each kind of planted problem (and none in a good dataset)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ffa_fake_simulator import fake_simulate_case

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
    (dataset / "dataset.json").write_text(json.dumps({**info, "format_version": 2}))
    assert any("unknown format_version 2" in p for p in validate_dataset(dataset))


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
