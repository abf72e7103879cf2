"""A built wheel, installed into a fresh virtual environment outside the checkout, generates with no --model."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_in_a_fresh_venv_generates_with_the_bundled_model(tmp_path: Path) -> None:
    # The wheel, built without network access (setuptools from this environment) from a copy of the
    # checkout's sources, so that the build's own files never land in the checkout.
    source = tmp_path / "source"
    for name in ("pyproject.toml", "README.md"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-w", str(wheels)],
        check=True, capture_output=True, cwd=tmp_path,
    )  # fmt: skip
    (wheel,) = wheels.glob("ffasora-*.whl")
    # A fresh venv; the dependencies (torch's CPU build among them) come from this environment's
    # site-packages through a .pth line. Lines added that way are not scanned for .pth files themselves,
    # so the checkout's editable install (a .pth there) stays out and ffasora can only come from the wheel.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    Path(site, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"OMP_NUM_THREADS": "1"}
    where = subprocess.run(
        [str(python), "-c", "import ffasora; print(ffasora.__file__)"],
        check=True, capture_output=True, text=True, cwd=work, env=env,
    ).stdout.strip()  # fmt: skip
    assert Path(where).is_relative_to(site), where  # the wheel's copy, not the checkout's
    out = work / "video.mp4"
    run = subprocess.run(
        [str(venv / "bin" / "ffasora"), "generate", "Late leakage at the macula.", "--frames", "5",
         "--height", "32", "--width", "32", "--steps", "2", "--out", str(out)],
        capture_output=True, text=True, cwd=work, env=env, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    meta = json.loads(out.with_suffix(".json").read_text())
    assert out.stat().st_size > 0 and meta["text_encoder"] == "all-MiniLM-L6-v2"
    assert str(ROOT) not in json.dumps(meta)  # nothing in the provenance points into the checkout
