"""CLI commands: generate (one report, or a file of reports split across ``torchrun`` ranks).

Everything is checked before the models load (options against the pipeline folder's config, the output
paths, every line of a batch file) and every report before the first video is made, so a bad input costs
seconds and leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from ffasora.cli.errors import UserError, check_output_path

DTYPES = ("fp32", "bf16", "fp16")


@dataclass(frozen=True)
class Job:
    report: str
    seed: int
    path: Path
    where: str  # how messages name this report: "the report" or "--batch FILE, line N"
    image: Path | None = None  # a colour fundus photograph of the eye (image-conditioned models)


def register(app: typer.Typer) -> None:
    """Add this group's commands to the root app."""
    app.command("generate")(generate)


def generate(
    report: str = typer.Argument(
        "", help="Report text, English or Chinese (leave out with --batch; optional with --image)."
    ),
    image: Path | None = typer.Option(
        None,
        "--image",
        help="Colour fundus photograph of the eye (PNG/JPEG, RGB) for an image-conditioned model; the report "
        "is then optional. The provenance names the file by its SHA-256, never by its path.",
    ),
    model: Path | None = typer.Option(
        None,
        "--model",
        "-m",
        help="Pipeline folder (model_index.json, vae/, dit/); default: the bundled pretrained/ model.",
    ),
    variant: str = typer.Option(
        "standard",
        "--variant",
        help="Which of the model's DiTs to run: 'standard' (its own dit/) or a variant listed in its "
        "model_index.json (e.g. a few-step distilled student), with that variant's steps, guidance and "
        "sampler as defaults (docs/sampling.md).",
    ),
    adapter: Path | None = typer.Option(
        None,
        "--adapter",
        help="LoRA adapter folder trained on the model's DiT (`ffasora export` of a LoRA run): merged in.",
    ),
    out: Path = typer.Option(
        Path("ffasora_video.mp4"), "--out", "-o", help="Video file (.mp4 or .gif); with --batch, a folder."
    ),
    batch: Path | None = typer.Option(
        None,
        "--batch",
        help="UTF-8 text file with one report per line (writes <out>/<line-1:05d>.mp4 + .json), or a .jsonl "
        'file of {"report": ..., "image": ..., "id": ..., "seed": ...} objects (id names the files; image: a '
        "photograph's path, relative to the batch file; report optional with an image). Videos already "
        "in <out> are kept (an interrupted batch resumes) unless --overwrite.",
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace existing output videos (and their .json) instead of refusing."
    ),
    frames: int | None = typer.Option(None, "--frames", help="Frames, 1 + 4k (default: the model's, 21)."),
    height: int | None = typer.Option(
        None, "--height", help="Pixels, a multiple of 16 (default: the model's)."
    ),
    width: int | None = typer.Option(
        None, "--width", help="Pixels, a multiple of 16 (default: the model's)."
    ),
    steps: int | None = typer.Option(
        None, "--steps", help="Sampler steps, 1 to 1000 (default: the model's)."
    ),
    guidance: float | None = typer.Option(None, "--guidance", "-g", help="CFG scale; 1 = none."),
    negative: str | None = typer.Option(None, "--negative", help="Negative report for guidance."),
    seed: int = typer.Option(
        0, "--seed", help="Seed, 0 to 2^63 - 1; with --batch, line i uses seed + i - 1."
    ),
    sampler: str | None = typer.Option(None, "--sampler", help="euler_ancestral, dpmpp_2m, euler or heun."),
    device: str = typer.Option(
        "cpu", "--device", help="cpu, cuda, cuda:1, ... (under torchrun: cuda:LOCAL_RANK)."
    ),
    dtype: str = typer.Option("fp32", "--dtype", help=f"DiT precision: {', '.join(DTYPES)}."),
    cache: float = typer.Option(
        0.0,
        "--cache",
        help="Step-cache threshold: skip the DiT's blocks on steps whose input changed less than this "
        "(summed relative L1; 0 = off, 0.1 about halves the forwards; docs/sampling.md).",
    ),
    refiner: bool = typer.Option(
        True,
        "--refiner/--no-refiner",
        help="With --image on a variant that has a photograph-guided refiner: run it on the decoded video "
        "(default), or leave the decoder's video as it is (docs/image-conditioning.md).",
    ),
) -> None:
    """Generate synthetic FFA videos from reports; each video gets a provenance JSON beside it."""
    import torch

    from ffasora.pipeline import (
        FFASoraPipeline,
        PipelineFolder,
        check_report_text,
        check_seed,
        resolve_settings,
    )

    if dtype not in DTYPES:
        raise UserError(f"--dtype {dtype!r}: expected one of {', '.join(DTYPES)}")
    if not 0 <= cache < float("inf"):
        raise UserError(f"--cache {cache}: expected a finite threshold >= 0 (0 = off)")
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    if device == "cuda" and "LOCAL_RANK" in os.environ:
        device = f"cuda:{os.environ['LOCAL_RANK']}"
    _check_device(device)
    if batch is not None:
        if image is not None:
            raise UserError('give --image for one report; with --batch, an "image" per line of a .jsonl file')
        jobs = _batch_jobs(batch, report, out, seed)
    else:
        jobs = [_single_job(report, out, seed, overwrite, image)]
    photos = {job.image: _read_photo(job.image, job.where) for job in jobs if job.image is not None}
    for job in jobs:
        try:
            if job.image is None or job.report.strip():
                check_report_text(job.report)
        except ValueError as err:
            raise UserError(f"{job.where}: {err}") from None
        try:
            check_seed(job.seed)
        except ValueError as err:
            raise UserError(
                f"--seed {seed}: {str(err).split(': ', 1)[1]}" if batch is None else f"{job.where}: {err}"
            ) from None
    # an unknown --variant, or a variant whose folder is missing: a ValueError naming the file and the variant
    folder = PipelineFolder.read(model if model is not None else bundled_model(), variant)
    if adapter is not None:
        _check_adapter(adapter, folder.dit)
    settings: dict[str, Any] = dict(
        num_frames=frames,
        height=height,
        width=width,
        steps=steps,
        guidance=guidance,
        negative_report=negative,
        sampler=sampler,
    )
    try:  # every option, before the models load
        resolve_settings(folder.config, folder.patch_size, **settings)
    except ValueError as err:
        raise UserError(_option_names(str(err))) from None
    if photos and not folder.image_channels:
        model_name = "this model" if folder.variant is None else f"the variant {folder.variant!r}"
        takers = [n for n in folder.variants if PipelineFolder.read(folder.root, n).image_channels]
        hint = (
            f"this folder's {', '.join(f'--variant {n}' for n in takers)} takes one"
            if takers
            else "use an image-conditioned model or variant"
        )
        raise UserError(
            f"{folder.root}: {model_name} takes no image condition (its DiT has no image channels); "
            f"leave out --image, or {hint}"
        )
    torch_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    pipe = FFASoraPipeline.from_pretrained(folder.root, device=device, dtype=torch_dtype, variant=variant)
    adapter_sha256 = None
    if adapter is not None:
        from ffasora.models.lora import ADAPTER_WEIGHTS, merge_adapter

        merge_adapter(pipe.dit, adapter)  # folded into the weights: sampling costs what it did
        adapter_sha256 = hashlib.sha256((adapter / ADAPTER_WEIGHTS).read_bytes()).hexdigest()
    for job in jobs:  # every report, before the first video
        if job.image is not None and not job.report.strip():
            continue  # image-only: nothing to check in an empty report
        try:
            warnings = pipe.check_report(job.report)
        except ValueError as err:
            raise UserError(f"{job.where}: {err}") from None
        if rank == 0:
            for warning in warnings:
                typer.echo(f"warning: {job.where}: {warning}", err=True)
    todo = [job for i, job in enumerate(jobs) if i % world == rank]
    if batch is not None and not overwrite:  # resumable: a video with its .json is finished
        todo = [job for job in todo if not (job.path.is_file() and job.path.with_suffix(".json").is_file())]
    with _quiet("ffasora.pipeline"):  # its warnings about the reports were shown just above
        for job in todo:
            options = {**settings, "cache_threshold": cache}
            if job.image is not None:
                photo, digest = photos[job.image]
                options |= {"image": photo, "refine": refiner}
            video = _run(pipe, job.report, job.seed, options, show=rank == 0, label=job.path.name)
            if job.image is not None:
                video.metadata["image_sha256"] = digest  # the file's hash: `sha256sum` finds it again
            if adapter_sha256 is not None:  # model_hashes["dit"] is of the merged weights
                video.metadata["adapter_sha256"] = adapter_sha256
            job.path.parent.mkdir(parents=True, exist_ok=True)
            video.save(job.path)
            if rank == 0:
                typer.echo(f"{job.path} ({video.metadata['seconds']:.1f} s)")


@contextlib.contextmanager
def _quiet(logger: str) -> Iterator[None]:
    """Only errors from ``logger`` while the block runs."""
    target = logging.getLogger(logger)
    level = target.level
    target.setLevel(logging.ERROR)
    try:
        yield
    finally:
        target.setLevel(level)


def bundled_model() -> Path:
    """The small model shipped inside the package (:func:`ffasora.io.bundled.bundled_model`), or a clear
    command-line error."""
    from ffasora.io import bundled

    try:
        return bundled.bundled_model()
    except ValueError as err:
        raise typer.BadParameter(f"no --model given and {err} with --model") from None


OPTION_OF = {"num_frames": "--frames", "height": "--height", "width": "--width", "steps": "--steps",
             "guidance": "--guidance", "negative_report": "--negative", "sampler": "--sampler"}  # fmt: skip


def _option_names(message: str) -> str:
    """The pipeline names settings as ``steps=0``; the command line as ``--steps 0``."""
    name, sep, rest = message.partition("=")
    return f"{OPTION_OF[name]} {rest}" if sep and name in OPTION_OF else message


def _check_device(device: str) -> None:
    import torch

    try:
        where = torch.device(device)
    except RuntimeError:
        raise UserError(f"--device {device!r}: expected cpu, cuda or cuda:N") from None
    if where.type == "cuda" and (
        not torch.cuda.is_available() or (where.index or 0) >= torch.cuda.device_count()
    ):
        raise UserError(f"--device {device}: no such CUDA device here ({torch.cuda.device_count()} found)")
    if where.type not in ("cpu", "cuda"):
        raise UserError(f"--device {device!r}: expected cpu, cuda or cuda:N")


def _read_photo(path: Path, where: str) -> tuple[Any, str]:
    """The photograph (H, W, 3) uint8 RGB and the SHA-256 of its file, or a clear error naming ``where``; read
    as the demo reads an upload (:func:`ffasora.io.photo.decode_photo`)."""
    from ffasora.io.photo import decode_photo

    if not path.is_file():
        raise UserError(f"{where}: image {path}: no such file")
    data = path.read_bytes()
    try:
        pixels = decode_photo(data, str(path))
    except ValueError as err:
        raise UserError(f"{where}: {err}") from None
    return pixels, hashlib.sha256(data).hexdigest()


def _single_job(report: str, out: Path, seed: int, overwrite: bool, image: Path | None = None) -> Job:
    from ffasora.pipeline import VIDEO_SUFFIXES

    if not report.strip() and image is None:
        raise UserError("give a report (in quotes), an --image, or --batch FILE")
    if out.suffix.lower() not in VIDEO_SUFFIXES:
        raise UserError(f"--out {out}: expected a file name ending in {' or '.join(VIDEO_SUFFIXES)}")
    check_output_path(out, "--out")
    existing = [p for p in (out, out.with_suffix(".json")) if p.exists()]
    if existing and not overwrite:
        raise UserError(f"--out {out}: {existing[0]} exists; pass --overwrite to replace it")
    return Job(report, seed, out, "the report" if image is None else "--image", image)


def _batch_jobs(batch: Path, report: str, out: Path, seed: int) -> list[Job]:
    """Every job of a batch file, each line checked (1-based line numbers) before anything is written."""
    if report:
        raise UserError("give either a report or --batch, not both")
    if not batch.is_file():
        raise UserError(f"--batch {batch}: no such file")
    check_output_path(out, "--out", folder=True)
    where = f"--batch {batch}"
    data = batch.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        bad_line = data[: err.start].count(b"\n") + 1
        raise UserError(
            f"{where}, line {bad_line}: not UTF-8 text (byte 0x{data[err.start]:02x}); save the file as UTF-8"
        ) from None
    entries: list[tuple[int, str, int, str, Path | None]] = []  # (line, report, seed, file stem, image)
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if batch.suffix == ".jsonl":
            entry = _jsonl_entry(f"{where}, line {number}", line, seed + number - 1, number, batch.parent)
            entries.append((number, *entry))
        else:
            entries.append((number, line, seed + number - 1, f"{number - 1:05d}", None))
    if not entries:
        raise UserError(f"{where}: holds no reports")
    first: dict[str, int] = {}
    for number, _, _, name, _ in entries:
        if name in first:
            raise UserError(
                f"{where}, line {number}: id {name!r} repeats line {first[name]} (ids name the output files)"
            )
        first[name] = number
    return [
        Job(text, s, out / f"{name}.mp4", f"{where}, line {n}", photo) for n, text, s, name, photo in entries
    ]


def _jsonl_entry(
    where: str, line: str, default_seed: int, number: int, base: Path
) -> tuple[str, int, str, Path | None]:
    """(report, seed, file stem, image path) from one JSONL line; a relative image path is read from the
    batch file's folder."""
    import json
    import re

    try:
        entry = json.loads(line)
    except json.JSONDecodeError as err:
        raise UserError(f"{where}: not JSON ({err.msg} at column {err.colno})") from None
    if not isinstance(entry, dict):
        raise UserError(f'{where}: expected an object with a "report" string and/or an "image" path')
    image = entry.get("image")
    if image is not None and (not isinstance(image, str) or not image.strip()):
        raise UserError(f'{where}: "image" must be a file path string, got {json.dumps(image)[:40]}')
    report = entry.get("report", "")
    if not isinstance(report, str) or (not report.strip() and image is None):
        raise UserError(f'{where}: expected an object with a non-empty "report" string (or an "image")')
    seed = entry.get("seed", default_seed)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise UserError(f'{where}: "seed" must be an integer, got {json.dumps(seed)[:40]}')
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", str(entry.get("id", f"{number - 1:05d}")))
    if not name.strip("._"):
        raise UserError(f'{where}: "id" {str(entry.get("id"))[:40]!r} cannot name a file')
    return report, seed, name, None if image is None else base / image


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


def _check_adapter(adapter: Path, dit: Path) -> None:
    """--adapter: an adapter folder trained on a DiT of this shape (the variant's), before the models load."""
    from ffasora.models.dit import read_dit_config
    from ffasora.models.lora import check_base

    try:
        check_base(adapter, read_dit_config(dit))
    except ValueError as err:
        raise UserError(f"--adapter {adapter}: {err}") from None
