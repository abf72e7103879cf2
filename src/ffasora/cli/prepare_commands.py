"""CLI commands: prepare (clinical FFA exports + reports -> an FFA dataset folder)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add this group's commands to the root app."""
    app.command("prepare")(prepare)


def prepare(
    videos: Path = typer.Option(
        ..., "--videos", help="Folder holding the exports (paths in the index are relative to it)."
    ),
    index: Path = typer.Option(..., "--index", help="Index file, CSV or JSONL (docs/prepare.md)."),
    out: Path = typer.Option(..., "--out", "-o", help="Dataset folder to write (resumed if it exists)."),
    size: int = typer.Option(512, "--size", help="Frame side in pixels."),
    frames: int = typer.Option(21, "--frames", help="Frames per video, 1 + 4k."),
    interp: str = typer.Option(
        "time", "--interp", help="Temporal interpolation: 'time' or 'index' (the paper's)."
    ),
    workers: int = typer.Option(1, "--workers", "-w", help="Worker processes."),
    min_vessel_ratio: float = typer.Option(
        0.02, "--min-vessel-ratio", help="Drop videos below this vessel-area ratio."
    ),
    seed: int = typer.Option(0, "--seed", help="Split seed."),
    patterns: Path | None = typer.Option(
        None, "--scrub-patterns", help="Extra 'LABEL regex' lines for report scrubbing."
    ),
    private: Path | None = typer.Option(
        None, "--private", help="Folder for the key, errors.jsonl and mapping (default OUT.private)."
    ),
    mapping: bool = typer.Option(
        False, "--mapping", help="Also write pseudonym -> source mapping.csv to the private folder."
    ),
) -> None:
    """Standardise, quality-filter, de-identify and split clinical FFA videos into a dataset folder."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ffasora.data.deid import load_patterns
    from ffasora.data.prepare import PrepareConfig, prepare_dataset
    from ffasora.data.validate import validate_dataset

    try:
        extra = tuple(load_patterns(patterns)) if patterns else ()
        cfg = PrepareConfig(
            size=size,
            frames=frames,
            interp=interp,
            min_vessel_ratio=min_vessel_ratio,
            split_seed=seed,
            extra_patterns=extra,
        )
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err
    columns = (
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("kept {task.fields[kept]} dropped {task.fields[dropped]} failed {task.fields[failed]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns) as bar:
        task = bar.add_task("preparing", total=None, kept=0, dropped=0, failed=0)

        def progress(counts: dict[str, int], total: int) -> None:
            kept, dropped, failed = counts["kept"], counts["dropped"], counts["failed"]
            bar.update(task, completed=counts["done"], total=total, kept=kept, dropped=dropped, failed=failed)

        try:
            summary = prepare_dataset(
                videos,
                index,
                out,
                cfg,
                workers=workers,
                private_dir=private,
                write_mapping=mapping,
                progress=progress,
            )
        except ValueError as err:
            raise typer.BadParameter(str(err)) from err
        except KeyboardInterrupt:
            typer.echo(f"interrupted; rerun the same command to resume {out}", err=True)
            raise typer.Exit(130) from None
    info, counts = summary.info, summary.counts
    typer.echo(
        f"{out}: {info['n_videos']} videos of {info['n_patients']} patients; "
        f"kept {counts['kept']}, dropped {counts['dropped']}, failed {counts['failed']}"
    )
    typer.echo("splits: " + ", ".join(f"{k} {v}" for k, v in info["counts"].items()))
    typer.echo(
        f"errors: {summary.errors_path}"
        + (f"; mapping: {summary.mapping_path}" if summary.mapping_path else "")
    )
    problems = validate_dataset(out, check_videos=False) if info["n_videos"] else []
    if problems:
        typer.echo("\n".join(problems), err=True)
        raise typer.Exit(1)
