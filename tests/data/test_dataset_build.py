"""Building a simulated dataset: patients, fellow eyes, resumability, worker processes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from ffa_fake_simulator import fake_simulate_case

from ffasora.data.build import SimulateConfig, plan_patients, simulate_dataset
from ffasora.data.format import load_truth, load_video, read_manifest
from ffasora.data.validate import validate_dataset

CFG = SimulateConfig(n=7, size=32, frames=5, seed=0)


def _digest(root: Path) -> dict[str, str]:
    """Hash of every file except dataset.json (it holds the creation time)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "dataset.json"
    }


def test_plan_groups_eyes_into_patients_deterministically():
    plan = plan_patients(SimulateConfig(n=50, seed=1))
    assert plan == plan_patients(SimulateConfig(n=50, seed=1))
    assert plan != plan_patients(SimulateConfig(n=50, seed=2))
    cases = [c for p in plan for c in p]
    assert len(cases) == 50 and len({c.id for c in cases}) == 50 and len({c.seed for c in cases}) == 50
    assert {len(p) for p in plan} == {1, 2}
    assert all([c.eye for c in p] == ["OD", "OS"] for p in plan if len(p) == 2)
    # A larger dataset extends a smaller one with the same seed.
    assert plan_patients(SimulateConfig(n=60, seed=1))[: len(plan) - 1] == plan[:-1]


def test_simulated_dataset_is_valid_and_carries_truth(tmp_path):
    calls = []
    info = simulate_dataset(
        tmp_path, CFG, simulate_fn=fake_simulate_case, progress=lambda d, t: calls.append((d, t))
    )
    assert validate_dataset(tmp_path) == []
    assert info["n_videos"] == 7 and calls[0] == (0, 7) and calls[-1] == (7, 7)
    records = read_manifest(tmp_path)
    for r in records:
        assert r.frames == 5 and r.frame_times_s is not None and len(r.phases or []) == 5
        assert r.codes and r.diagnoses and r.translations["zh"]
        masks, truth = load_truth(tmp_path, r.id)
        assert set(masks) == {"blob", "fov"} and truth["seed"] == r.seed and truth["findings"]["eye"] == r.eye
        if r.eye == "OD" or r.patient_id != records[records.index(r) - 1].patient_id:
            continue
        # A fellow eye is the simulator's case for its seed, eye and the patient's diagnosis.
        case = fake_simulate_case(r.seed, 32, 5, "canonical", r.eye, r.primary_diagnosis)
        assert load_video(tmp_path, r.id).tobytes() == case.frames.tobytes()
    by_patient: dict[str, list] = {}
    for r in records:
        by_patient.setdefault(r.patient_id, []).append(r)
    for eyes in by_patient.values():
        if len(eyes) == 2:  # fellow eye: same diagnosis when bilateral (DR, normal), otherwise normal
            first, second = eyes[0].primary_diagnosis, eyes[1].primary_diagnosis
            assert second == (first if first in ("DR", "normal") else "normal")


def test_interrupted_build_resumes_to_the_same_dataset(tmp_path):
    simulate_dataset(tmp_path / "full", CFG, simulate_fn=fake_simulate_case)

    def interrupt(done: int, total: int) -> None:
        if done >= 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        simulate_dataset(tmp_path / "cut", CFG, simulate_fn=fake_simulate_case, progress=interrupt)
    assert 3 <= len(read_manifest(tmp_path / "cut")) < 7
    assert any("incomplete" in p for p in validate_dataset(tmp_path / "cut"))
    seen = []
    simulate_dataset(
        tmp_path / "cut", CFG, simulate_fn=fake_simulate_case, progress=lambda d, t: seen.append(d)
    )
    assert seen[0] >= 3  # the written cases were skipped
    assert _digest(tmp_path / "cut") == _digest(tmp_path / "full")
    assert validate_dataset(tmp_path / "cut") == []


def test_rerun_with_other_settings_is_refused(tmp_path):
    simulate_dataset(tmp_path, CFG, simulate_fn=fake_simulate_case)
    with pytest.raises(ValueError, match="different settings"):
        simulate_dataset(tmp_path, SimulateConfig(n=7, size=64, frames=5), simulate_fn=fake_simulate_case)


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="1 \\+ 4k"):
        SimulateConfig(frames=20)


@pytest.mark.multiproc
def test_worker_processes_give_the_same_dataset(tmp_path):
    simulate_dataset(tmp_path / "one", CFG, simulate_fn=fake_simulate_case)
    simulate_dataset(tmp_path / "two", CFG, simulate_fn=fake_simulate_case, workers=2)
    assert _digest(tmp_path / "one") == _digest(tmp_path / "two")


KILL_SCRIPT = """
import os, signal, sys
sys.path.insert(0, {here!r})
from ffa_fake_simulator import fake_simulate_case
from ffasora.data.build import SimulateConfig, simulate_dataset

def kill(done, total):
    if done >= 4:
        os.kill(os.getpid(), signal.SIGKILL)  # no clean-up of any kind, as with a power cut

simulate_dataset({out!r}, SimulateConfig(n=7, size=32, frames=5, seed=0), simulate_fn=fake_simulate_case,
                 progress=kill)
"""


@pytest.mark.multiproc
def test_killed_build_resumes_to_the_same_dataset(tmp_path):
    import subprocess
    import sys

    simulate_dataset(tmp_path / "full", CFG, simulate_fn=fake_simulate_case)
    script = KILL_SCRIPT.format(here=str(Path(__file__).parent), out=str(tmp_path / "cut"))
    assert subprocess.run([sys.executable, "-c", script], timeout=120).returncode == -9
    assert len(read_manifest(tmp_path / "cut")) >= 4
    simulate_dataset(tmp_path / "cut", CFG, simulate_fn=fake_simulate_case)
    assert _digest(tmp_path / "cut") == _digest(tmp_path / "full")


def test_real_simulator_records_compact_findings(tmp_path):
    from ffasora.findings.compact import from_compact

    simulate_dataset(tmp_path, SimulateConfig(n=3, size=32, frames=5, seed=1))
    assert validate_dataset(tmp_path) == []
    for r in read_manifest(tmp_path):
        findings = from_compact(r.findings)
        assert findings.codes() == set(r.codes) and findings.negated() == set(r.negated)
        assert findings.eye == r.eye and r.frame_times_s == sorted(r.frame_times_s)
        masks, truth = load_truth(tmp_path, r.id)
        assert (
            masks["fov"].shape == (32, 32)
            and truth["seed"] == r.seed
            and truth["findings_compact"] == r.findings
        )


def test_a_cohort_mix_sets_the_first_eyes_diagnoses_and_the_clean_twin_follows(tmp_path):
    """Every patient's first eye comes from the mix (fellow eyes follow it); clean_twin re-simulates with it."""
    from ffasora.data.build import clean_twin
    from ffasora.data.format import load_video, read_info

    cfg = SimulateConfig(n=8, size=32, frames=5, seed=2, photos=False, mix=(("CRVO", 1.0), ("BRVO", 1.0)))
    simulate_dataset(tmp_path, cfg)
    assert validate_dataset(tmp_path) == []
    assert read_info(tmp_path)["config"]["mix"] == [["CRVO", 1.0], ["BRVO", 1.0]]
    records = read_manifest(tmp_path)
    first_eyes = {}
    for r in records:
        first_eyes.setdefault(r.patient_id, r)
    assert {r.primary_diagnosis for r in first_eyes.values()} <= {"CRVO", "BRVO"}
    assert {r.primary_diagnosis for r in records} <= {"CRVO", "BRVO", "normal"}  # RVO is one-sided
    first = next(iter(first_eyes.values()))
    twin = clean_twin(tmp_path, first.id)
    assert twin.findings.diagnoses[0].code == first.primary_diagnosis
    assert abs(twin.frames.astype(float) - load_video(tmp_path, first.id).astype(float)).mean() < 8
    with pytest.raises(ValueError, match="different settings"):
        simulate_dataset(tmp_path, SimulateConfig(n=8, size=32, frames=5, seed=2, photos=False))


def test_simulate_writes_each_eyes_photograph_from_the_simulator(tmp_path):
    """With the real simulator: images/<id>.png is the case's own photograph, pixel for pixel."""
    from ffasora.data.format import load_image
    from ffasora.simulate import simulate_case

    simulate_dataset(tmp_path, SimulateConfig(n=2, size=32, frames=5, seed=3))
    assert validate_dataset(tmp_path) == []
    for record in read_manifest(tmp_path):
        assert record.image == "cfp" and record.seed is not None
        case = simulate_case(record.seed, size=32, frames=5, eye=record.eye, photo=True)
        assert case.photo is not None
        if record.primary_diagnosis == case.findings.diagnoses[0].code:  # the first eye of its patient
            assert (load_image(tmp_path, record.id) == case.photo).all()
