"""``prepare`` killed with SIGKILL at random points, with 1 and 2 workers: no process outlives the parent,
nothing is written after the kill, and the rerun leaves exactly the files of an uninterrupted run."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from prepare_corpus import angiogram, clinical_times, write_video

from ffasora.data.format import MANIFEST
from ffasora.data.prepare import PrepareConfig, prepare_dataset

KEY = "ab" * 32
ARGS = ["--size", "32", "--frames", "5"]
CFG = PrepareConfig(size=32, frames=5)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("crash")
    videos = root / "videos"
    rows = []
    for k in range(10):
        write_video(videos / f"p{k}/od.mp4", angiogram(clinical_times(9, k), seed=k))
        rows.append({"video": f"p{k}/od.mp4", "patient_id": f"H{k}", "eye": "OD", "report": f"Normal {k}."})
    (videos / "unindexed.mp4").write_bytes((videos / "p0/od.mp4").read_bytes())
    index = root / "index.csv"
    with open(index, "w", newline="") as f:
        table = csv.DictWriter(f, fieldnames=list(rows[0]))
        table.writeheader()
        table.writerows(rows)
    return videos, index


def _with_key(out: Path) -> Path:
    private = out.with_name(out.name + ".private")
    private.mkdir(parents=True)
    (private / "key").write_text(KEY + "\n")
    return private


def _files(out: Path) -> dict[str, bytes]:
    """Every file of the dataset and its bytes (dataset.json without its creation time)."""
    files = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.name == "dataset.json":
            data = b"\n".join(line for line in data.splitlines() if b'"created"' not in line)
        files[path.relative_to(out).as_posix()] = data
    return files


@pytest.fixture(scope="module")
def reference(source, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    videos, index = source
    out = tmp_path_factory.mktemp("reference") / "ds"
    _with_key(out)
    prepare_dataset(videos, index, out, CFG)
    return _files(out)


def _group(pgid: int) -> list[int]:
    """Live processes of a process group (zombies excluded)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(stat.parent.name))
    return alive


def _records(out: Path) -> int:
    try:
        return (out / MANIFEST).read_text().count("\n")
    except OSError:
        return 0


def _kill_and_rerun(
    source, reference, tmp_path: Path, workers: int, delay: float, after_records: int = 0
) -> bool:
    """Kill the run after ``delay`` seconds (and once ``after_records`` are in the manifest), check that
    nothing lives on or writes on, rerun, compare with the uninterrupted run; True if the kill cut a run."""
    videos, index = source
    out = tmp_path / "ds"
    _with_key(out)
    command = [
        sys.executable,
        "-c",
        "from ffasora.cli import main; main()",
        "prepare",
        "--videos",
        str(videos),
    ]
    command += ["--index", str(index), "--out", str(out), "--workers", str(workers), *ARGS]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    parent = subprocess.Popen(
        command, start_new_session=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    time.sleep(delay)
    while _records(out) < after_records and parent.poll() is None:
        time.sleep(0.02)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while _group(parent.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _group(parent.pid) == [], "a worker outlived the killed parent"
    before = _files(out) if out.exists() else {}
    time.sleep(0.3)
    assert (_files(out) if out.exists() else {}) == before, "something wrote after the kill"
    cut = parent.returncode == -signal.SIGKILL and b'"complete": true' not in before.get("dataset.json", b"")
    prepare_dataset(videos, index, out, CFG, workers=workers)
    assert _files(out) == reference
    assert not list(out.parent.rglob("*.tmp"))
    return cut


@pytest.mark.multiproc
def test_a_killed_two_worker_run_leaves_no_process_and_reruns_identically(
    source, reference, tmp_path: Path
) -> None:
    assert _kill_and_rerun(source, reference, tmp_path, workers=2, delay=0.0, after_records=2)


@pytest.mark.slow
@pytest.mark.multiproc
@pytest.mark.parametrize("workers", [1, 2])
def test_ten_random_kills(source, reference, tmp_path: Path, workers: int) -> None:
    rng = np.random.default_rng(workers)
    span = 5.0 if workers == 1 else 11.0  # about the length of a whole run on two shared cores
    cut = [
        _kill_and_rerun(source, reference, tmp_path / f"trial{k}", workers, float(rng.uniform(0.3, span)))
        for k in range(10)
    ]
    assert sum(cut) >= 5, cut  # most kills landed inside a run
