"""CLI commands: generate (one report, or a file of reports split across ``torchrun`` ranks)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

DTYPES = ("fp32", "bf16", "fp16")


def register(app: typer.Typer) -> None:
    """Add this group's commands to the root app."""
    app.command("generate")(generate)


def generate(
    report: str = typer.Argument("", help="Report text (leave out with --batch)."),
    model: Path | None = typer.Option(
        None,
        "--model",
        "-m",
        help="Pipeline folder (model_index.json, vae/, dit/); default: the bundled pretrained/ model.",
    ),
    out: Path = typer.Option(
        Path("ffasora_video.mp4"), "--out", "-o", help="Video file (.mp4 or .gif); with --batch, a folder."
    ),
    batch: Path | None = typer.Option(
        None,
        "--batch",
        help="Text file with one report per line (writes <out>/<line:05d>.mp4 + .json), or a .jsonl file "
        'of {"report": ..., "id": ..., "seed": ...} objects (reports may span lines; id names the files).',
    ),
    frames: int | None = typer.Option(None, "--frames", help="Frames, 1 + 4k (default: the model's, 21)."),
    height: int | None = typer.Option(
        None, "--height", help="Pixels, a multiple of 16 (default: the model's)."
    ),
    width: int | None = typer.Option(
        None, "--width", help="Pixels, a multiple of 16 (default: the model's)."
    ),
    steps: int | None = typer.Option(None, "--steps", help="Sampler steps (default: the model's)."),
    guidance: float | None = typer.Option(None, "--guidance", "-g", help="CFG scale; 1 = none."),
    negative: str | None = typer.Option(None, "--negative", help="Negative report for guidance."),
    seed: int = typer.Option(0, "--seed", help="Seed; with --batch, line i uses seed + i."),
    sampler: str | None = typer.Option(None, "--sampler", help="euler_ancestral, dpmpp_2m, euler or heun."),
    device: str = typer.Option(
        "cpu", "--device", help="cpu, cuda, cuda:1, ... (under torchrun: cuda:LOCAL_RANK)."
    ),
    dtype: str = typer.Option("fp32", "--dtype", help=f"DiT precision: {', '.join(DTYPES)}."),
) -> None:
    """Generate synthetic FFA videos from reports; each video gets a provenance JSON beside it."""
    import torch

    from ffasora.pipeline import FFASoraPipeline

    if dtype not in DTYPES:
        raise typer.BadParameter(f"--dtype {dtype!r}: expected one of {DTYPES}")
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    if device == "cuda" and "LOCAL_RANK" in os.environ:
        device = f"cuda:{os.environ['LOCAL_RANK']}"
    jobs = _jobs(report, batch, out, seed, rank, world)
    model = model if model is not None else bundled_model()
    torch_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    try:
        pipe = FFASoraPipeline.from_pretrained(model, device=device, dtype=torch_dtype)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err
    options: dict[str, Any] = dict(
        num_frames=frames,
        height=height,
        width=width,
        steps=steps,
        guidance=guidance,
        negative_report=negative,
        sampler=sampler,
    )
    for text, job_seed, path in jobs:
        if batch is not None and path.with_suffix(".json").is_file():
            continue  # resumable: finished videos are kept
        try:
            video = _run(pipe, text, job_seed, options, show=rank == 0, label=path.name)
        except ValueError as err:
            raise typer.BadParameter(str(err)) from err
        video.save(path)
        if rank == 0:
            typer.echo(f"{path} ({video.metadata['seconds']:.1f} s)")


def bundled_model() -> Path:
    """The small model shipped in the repository checkout (``pretrained/``, see docs/bundled-model.md).

    It lives beside ``src/`` rather than inside the package, so it is found from an editable install (the
    way ``make setup`` installs ffasora); a wheel install has to name a folder with ``--model``.
    """
    import ffasora

    folder = Path(ffasora.__file__).resolve().parents[2] / "pretrained"
    if not (folder / "model_index.json").is_file():
        raise typer.BadParameter(
            f"no --model given and no bundled model at {folder} (expected model_index.json there); "
            "pass --model PIPELINE_FOLDER or run from a repository checkout"
        )
    return folder


def _jobs(
    report: str, batch: Path | None, out: Path, seed: int, rank: int, world: int
) -> list[tuple[str, int, Path]]:
    """(report, seed, output path) for this rank: line i of the batch file goes to rank i % world."""
    if batch is None:
        if not report.strip():
            raise typer.BadParameter("give a report, or --batch FILE")
        return [(report, seed, out)]
    if report:
        raise typer.BadParameter("give either a report or --batch, not both")
    if not batch.is_file():
        raise typer.BadParameter(f"--batch {batch}: no such file")
    lines = batch.read_text(encoding="utf-8").splitlines()
    if batch.suffix == ".jsonl":
        entries = [_jsonl_entry(batch, n, line, seed) for n, line in enumerate(lines, 1) if line.strip()]
    else:
        entries = [(line, seed + i, f"{i:05d}") for i, line in enumerate(lines) if line.strip()]
    names = [name for _, _, name in entries]
    if len(set(names)) != len(names):
        raise typer.BadParameter(f"--batch {batch}: ids must be unique (they name the output files)")
    out.mkdir(parents=True, exist_ok=True)
    return [(text, s, out / f"{name}.mp4") for i, (text, s, name) in enumerate(entries) if i % world == rank]


def _jsonl_entry(batch: Path, line_no: int, line: str, seed: int) -> tuple[str, int, str]:
    """(report, seed, file stem) from one JSONL line; the seed defaults to ``seed + line index``."""
    import json
    import re

    try:
        entry = json.loads(line)
    except json.JSONDecodeError as err:
        raise typer.BadParameter(f"--batch {batch}, line {line_no}: not JSON ({err.msg})") from None
    if not isinstance(entry, dict) or not str(entry.get("report", "")).strip():
        raise typer.BadParameter(f'--batch {batch}, line {line_no}: expected an object with a "report"')
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", str(entry.get("id", f"{line_no - 1:05d}")))
    return str(entry["report"]), int(entry.get("seed", seed + line_no - 1)), name


def _run(pipe: Any, report: str, seed: int, options: dict[str, Any], show: bool, label: str) -> Any:
    """One generation with a rich progress bar per phase (rank 0 only)."""
    if not show:
        return pipe(report, seed=seed, **options)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
    ) as bar:
        tasks: dict[str, Any] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(f"{label}: {phase}", total=total)
            bar.update(tasks[phase], completed=done, total=total)

        return pipe(report, seed=seed, progress=progress, **options)
