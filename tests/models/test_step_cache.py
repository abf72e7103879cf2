"""The training-free step cache (ffasora.models.step_cache) on the bundled model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from ffasora.cli import app
from ffasora.models.step_cache import StepCache
from ffasora.pipeline import FFASoraPipeline

BUNDLED = Path(__file__).resolve().parents[2] / "pretrained"
REPORT = "Left eye: in the venous phase, leak points over the macula, increasing late. Impression: acute CSC."


@pytest.fixture(scope="module")
def pipe() -> FFASoraPipeline:
    return FFASoraPipeline.from_pretrained(BUNDLED)


def _sample(pipe: FFASoraPipeline, cache: StepCache | None, steps: int = 24) -> torch.Tensor:
    generator = torch.Generator().manual_seed(5)
    noise = pipe.prepare_latents(9, 64, 64, generator)
    cond, uncond = pipe.encode_report(REPORT, "")
    return pipe.denoise(
        noise, cond, uncond, steps=steps, guidance=4.0, sampler="euler", generator=generator, cache=cache
    )


def test_threshold_zero_runs_every_step_and_equals_the_plain_sampler(pipe: FFASoraPipeline) -> None:
    cache = StepCache(pipe.dit, 0.0)
    assert torch.equal(_sample(pipe, cache), _sample(pipe, None))
    assert (cache.computed, cache.skipped) == (24, 0)


def test_a_threshold_skips_steps_and_stays_near_the_plain_sample(pipe: FFASoraPipeline) -> None:
    plain = _sample(pipe, None)
    loose, tight = StepCache(pipe.dit, 0.2), StepCache(pipe.dit, 0.1)
    error = float((_sample(pipe, loose) - plain).norm() / plain.norm())
    error_tight = float((_sample(pipe, tight) - plain).norm() / plain.norm())
    assert loose.computed + loose.skipped == 24 and tight.computed + tight.skipped == 24
    assert 0 < tight.skipped < loose.skipped, (tight.skipped, loose.skipped)
    assert 0 < error_tight < error, (error_tight, error)
    assert error_tight < 0.1, error_tight  # the documented threshold stays near the full sampler


def test_the_first_call_and_a_new_shape_always_run_the_blocks(pipe: FFASoraPipeline) -> None:
    cache = StepCache(pipe.dit, 1e9)  # would skip anything it could
    text = torch.zeros(1, 4, pipe.dit.config.text_dim)
    for shape in [(1, 8, 2, 8, 8), (1, 8, 2, 8, 8), (1, 8, 2, 4, 4)]:
        cache(torch.randn(shape), torch.tensor([500.0]), text)
    assert (cache.computed, cache.skipped) == (2, 1)


@pytest.mark.parametrize("threshold", [-0.1, float("nan")])
def test_a_bad_threshold_is_refused(pipe: FFASoraPipeline, threshold: float) -> None:
    with pytest.raises(ValueError, match="threshold"):
        StepCache(pipe.dit, threshold)


def test_generate_cache_records_the_forwards_it_ran(tmp_path: Path) -> None:
    args = ["generate", REPORT, "--steps", "10", "--frames", "5", "--height", "32", "--width", "32"]
    result = CliRunner().invoke(app, [*args, "--cache", "0.3", "--out", str(tmp_path / "v.mp4")])
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "v.json").read_text())
    assert meta["cache_threshold"] == 0.3 and 1 <= meta["network_evaluations"] < 10
