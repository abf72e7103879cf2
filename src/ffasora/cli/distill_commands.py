"""CLI commands: ``distill trajectories`` (the teacher's sampling runs a few-step student learns from).

The student itself trains with ``ffasora train distill -c configs/dit/distill_bundled.toml``; see
:mod:`ffasora.train.distill_task` for the method and docs/sampling.md for the recipe.
"""

from __future__ import annotations

from pathlib import Path

import typer

from ffasora.cli.errors import UserError

distill_app = typer.Typer(help="Few-step students distilled from a guided teacher.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add this group's commands to the root app."""
    distill_app.command("trajectories")(trajectories)
    app.add_typer(distill_app, name="distill")


def trajectories(
    dataset: Path = typer.Argument(..., help="Dataset folder whose reports the teacher samples."),
    out: Path = typer.Option(..., "--out", "-o", help="Trajectory folder (resumes if it exists)."),
    teacher: Path | None = typer.Option(
        None, "--teacher", "-m", help="Teacher pipeline folder; default: the bundled pretrained/ model."
    ),
    split: str = typer.Option("train", "--split", help="Which split's reports."),
    n: int = typer.Option(0, "--n", help="How many reports, in manifest order (0 = all)."),
    student_steps: int = typer.Option(
        4, "--student-steps", help="The student's finest grid; 1 and 2 steps train on its subsets."
    ),
    seed: int = typer.Option(0, "--seed", help="Noise seed of the first report; report i uses seed + i."),
    batch_size: int = typer.Option(8, "--batch-size", help="Reports sampled together."),
) -> None:
    """Sample reports with the teacher (its steps, guidance and size) and keep its states on the student's
    grid, one safetensors file per report."""
    from rich.progress import Progress

    from ffasora.cli.generate_commands import bundled_model
    from ffasora.data.format import read_manifest
    from ffasora.pipeline import FFASoraPipeline, PipelineFolder
    from ffasora.train.distill_task import write_trajectories

    if n < 0 or student_steps < 1 or batch_size < 1:
        raise UserError(
            f"--n {n}, --student-steps {student_steps}, --batch-size {batch_size}: expected n >= 0 and the "
            "others >= 1"
        )
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; expected a folder")
    folder = PipelineFolder.read(teacher if teacher is not None else bundled_model())
    steps = folder.config.diffusion.steps
    if steps % student_steps:
        raise UserError(f"--student-steps {student_steps}: must divide the teacher's {steps} steps")
    if not (dataset / "manifest.jsonl").is_file():
        raise UserError(f"{dataset}: no manifest.jsonl; not an FFA dataset folder")
    reports = [(r.id, r.report) for r in read_manifest(dataset) if r.split == split]
    if not reports:
        raise UserError(f"{dataset}: no videos in split {split!r}")
    reports = reports[:n] if n else reports
    pipe = FFASoraPipeline.from_pretrained(folder.root)
    with Progress() as bar:
        task = bar.add_task("teacher trajectories", total=len(reports))
        write_trajectories(
            pipe,
            reports,
            out,
            student_steps=student_steps,
            seed=seed,
            batch_size=batch_size,
            progress=lambda done, total: bar.update(task, completed=done),
        )
    typer.echo(f"{out}: {len(reports)} trajectories on a {student_steps}-step grid")
