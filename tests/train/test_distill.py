"""Few-step distillation (ffasora.train.distill_task): trajectories from the teacher, a student on the engine."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from latent_fixtures import quick_train_config
from typer.testing import CliRunner

from ffasora.cli import app
from ffasora.models.dit import DiT
from ffasora.pipeline import FFASoraPipeline
from ffasora.train.distill_task import (
    DistillDataConfig,
    DistillTask,
    DistillTaskConfig,
    TrajectoryDataset,
    write_trajectories,
)

BUNDLED = Path(__file__).resolve().parents[2] / "pretrained"
REPORTS = [
    ("a", "Left eye: in the venous phase, leak points over the macula. Impression: acute CSC."),
    ("b", "Right eye: arterial phase, numerous microaneurysms over the posterior pole. Impression: NPDR."),
]


@pytest.fixture(scope="module")
def teacher() -> FFASoraPipeline:
    """The bundled pipeline at a tiny size: 5 frames of 32 px, 8 guided Euler steps."""
    pipe = FFASoraPipeline.from_pretrained(BUNDLED)
    small = dataclasses.replace(pipe.config.diffusion, steps=8)
    pipe.config = dataclasses.replace(pipe.config, num_frames=5, height=32, width=32, diffusion=small)
    return pipe


@pytest.fixture(scope="module")
def trajectories(teacher: FFASoraPipeline, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_trajectories(teacher, REPORTS, tmp_path_factory.mktemp("traj"), student_steps=4, seed=3)


def test_trajectories_hold_the_teachers_sample_on_the_students_grid(
    teacher: FFASoraPipeline, trajectories: Path
) -> None:
    data = TrajectoryDataset(trajectories)
    assert len(data) == 2 and len(data.times) == 5
    assert float(data.times[0]) == 1.0 and float(data.times[-1]) == 0.0
    c = teacher.config
    generator = torch.Generator().manual_seed(3)  # the same noise and settings, through the plain sampler
    noise = teacher.prepare_latents(c.num_frames, c.height, c.width, generator)
    cond, uncond = teacher.encode_report(REPORTS[0][1], c.negative_report)
    d = c.diffusion
    sample = teacher.denoise(
        noise, cond, uncond, steps=d.steps, guidance=d.guidance, sampler="euler", generator=generator
    )
    states = data[0]["states"]
    assert states.shape[0] == 5 and torch.equal(states[0], noise[0])
    assert torch.allclose(states[-1:], sample, atol=1e-5)


def _one_step(model: DiT, states: torch.Tensor, text: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The student's 1-step Euler sample from the trajectory's noise (t = 1 -> 0)."""
    with torch.no_grad():
        velocity = model(states[:1], torch.tensor([1000.0]), text[None], mask[None])
    return states[:1] - velocity


def test_the_students_one_step_sample_lands_on_the_teachers(trajectories: Path, tmp_path: Path) -> None:
    from ffasora.train.engine import Trainer
    from ffasora.train.export import export_run

    train = quick_train_config(300, 2, 1e-3)
    data = DistillDataConfig(trajectories=str(trajectories), student_steps=(1,))
    cfg = DistillTaskConfig(data=data, train=train, init=str(BUNDLED / "dit"))
    item = TrajectoryDataset(trajectories)[0]
    target = item["states"][-1:]
    before = DiT.from_pretrained(BUNDLED / "dit", dtype=torch.float32)
    error_before = float((_one_step(before, item["states"], item["text"], item["text_mask"]) - target).norm())

    Trainer(DistillTask(), cfg, tmp_path / "run", task_name="distill").fit()
    student = DiT.from_pretrained(
        export_run(tmp_path / "run", tmp_path / "student", dtype="fp32", use_ema=False)
    )
    error_after = float((_one_step(student, item["states"], item["text"], item["text_mask"]) - target).norm())
    assert error_after < 0.1 * error_before, (error_before, error_after)
    assert error_after < 0.1 * float(target.norm())
    source = json.loads((tmp_path / "student" / "training_source.json").read_text())
    assert source["distilled"]["student_steps"] == [1]
    assert source["distilled"]["sample_with"] == {"sampler": "euler", "guidance": 1.0}
    # assembled, the student samples as it was trained: the teacher's flow recipe, its own steps, no guidance
    from ffasora.train.assemble import assemble_pipeline

    assemble_pipeline(tmp_path / "student", tmp_path / "pipe", vae=BUNDLED / "vae", frames=5)
    assembled = FFASoraPipeline.from_pretrained(tmp_path / "pipe")
    d = assembled.config.diffusion
    assert (d.objective, d.sampler, d.steps, d.guidance) == ("flow", "euler", 1, 1.0)
    assert (assembled.config.height, assembled.config.width) == (32, 32)


def test_a_grid_that_does_not_divide_the_trajectories_is_refused(trajectories: Path) -> None:
    cfg = DistillTaskConfig(data=DistillDataConfig(trajectories=str(trajectories), student_steps=(3,)))
    with pytest.raises(ValueError, match="must divide 4"):
        DistillTask().build_dataset(cfg, "train")


def test_distill_trajectories_command_refuses_a_grid_the_teacher_cannot_give(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["distill", "trajectories", str(tmp_path), "--out", str(tmp_path / "t"), "--student-steps", "5"]
    )
    assert result.exit_code != 0 and "must divide the teacher's 24 steps" in result.output
    assert not (tmp_path / "t").exists()


def test_the_bundled_preset_loads_and_the_registry_finds_the_task() -> None:
    from ffasora.config import load_config
    from ffasora.train.tasks import load_task

    preset = BUNDLED.parent / "configs" / "dit" / "distill_bundled.toml"
    cfg = load_config(DistillTaskConfig, preset, ["init=pretrained/dit", "data.trajectories=/t"])
    assert cfg.data.student_steps == (1, 2, 4) and cfg.data.trajectories == "/t"
    assert isinstance(load_task("distill"), DistillTask)


def test_assembling_a_student_without_its_teachers_recipe_points_to_add_variant(tmp_path: Path) -> None:
    """Older trajectories did not record the teacher's recipe: assemble refuses rather than guess an objective."""
    from ffasora.train.assemble import assemble_pipeline

    student = tmp_path / "student"
    DiT.from_pretrained(BUNDLED / "dit").save_pretrained(student)
    (student / "training_source.json").write_text(json.dumps({"distilled": {"student_steps": [4]}}))
    with pytest.raises(ValueError, match="pipeline add-variant"):
        assemble_pipeline(student, tmp_path / "pipe", vae=BUNDLED / "vae")
    assert not (tmp_path / "pipe").exists()
