"""`ffasora simulate`, `ffasora show` and `ffasora validate` through the CLI runner."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from ffasora.cli import app
from ffasora.data.format import read_manifest
from ffasora.io.video import read_metadata, read_video, write_gif

runner = CliRunner()


def _flat(text: str) -> str:
    """CLI output without rich's box characters and line wrapping."""
    return " ".join(text.replace("│", " ").split())


def _simulate(out, n=6, size=32):
    return runner.invoke(
        app, ["simulate", "--n", str(n), "--size", str(size), "--frames", "5", "--out", str(out)]
    )


def test_simulate_show_validate(tmp_path):
    """The real simulator, tiny: 6 eyes of 32 px, 5 frames."""
    result = _simulate(tmp_path / "ds")
    assert result.exit_code == 0, result.output
    assert "6 videos" in result.output
    assert json.loads((tmp_path / "ds" / "dataset.json").read_text())["n_videos"] == 6

    result = runner.invoke(app, ["validate", str(tmp_path / "ds")])
    assert result.exit_code == 0 and "valid" in result.output

    result = runner.invoke(
        app, ["show", str(tmp_path / "ds"), "--cases", "3", "--frames", "3", "--out", str(tmp_path / "s.png")]
    )
    assert result.exit_code == 0, result.output
    sheet = Image.open(tmp_path / "s.png")
    assert sheet.width == 4 + 3 * (32 + 4) and sheet.height > 3 * 32
    first = read_manifest(tmp_path / "ds")[0].id
    frames, _ = read_video(tmp_path / f"s_{first}.gif")
    assert frames.shape == (5, 32, 32)
    assert "synthetic" in read_metadata(tmp_path / f"s_{first}.mp4")["comment"]


def test_validate_fails_on_a_broken_dataset(tmp_path):
    assert _simulate(tmp_path / "ds", n=3).exit_code == 0
    next((tmp_path / "ds" / "videos").glob("*.npz")).unlink()
    result = runner.invoke(app, ["validate", str(tmp_path / "ds")])
    assert result.exit_code == 1 and "missing" in result.output


def test_show_a_single_video_file(tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, (5, 24, 24), dtype=np.uint8)
    write_gif(frames, tmp_path / "v.gif", fps=2)
    result = runner.invoke(app, ["show", str(tmp_path / "v.gif"), "--no-video"])
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "v_sheet.png").width == 4 + 5 * 28


def test_bad_arguments_give_clear_errors(tmp_path):
    result = runner.invoke(app, ["simulate", "--n", "2", "--frames", "20", "--out", str(tmp_path / "x")])
    assert result.exit_code != 0 and "1 + 4k" in _flat(result.output)
    result = runner.invoke(app, ["show", str(tmp_path / "nothing")])
    assert result.exit_code != 0 and "does not exist" in _flat(result.output)


@pytest.mark.parametrize("command", ["simulate", "show", "validate"])
def test_help(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


def test_show_picks_cases_and_frame_indices(tmp_path):
    assert _simulate(tmp_path / "ds", n=4).exit_code == 0
    ids = [r.id for r in read_manifest(tmp_path / "ds")]
    args = ["show", str(tmp_path / "ds"), "--ids", f"{ids[2]},{ids[0]}", "--indices", "0,4", "--no-video"]
    result = runner.invoke(app, [*args, "--tile", "16"])
    assert result.exit_code == 0, result.output
    assert "2 cases x 2 frames" in _flat(result.output)
    assert Image.open(tmp_path / "ds" / "contact_sheet.png").width == 4 + 2 * (16 + 4)
    result = runner.invoke(app, [*args[:-3], "--indices", "0,9"])
    assert result.exit_code != 0 and "has 5 frames" in _flat(result.output)
