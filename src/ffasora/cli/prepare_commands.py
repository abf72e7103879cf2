"""CLI commands: prepare (clinical FFA exports + reports -> an FFA dataset folder) and deid audit."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ffasora.cli.errors import UserError

deid_app = typer.Typer(help="De-identification: audit what a dataset folder holds.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add this group's commands to the root app."""
    app.command("prepare")(prepare)
    app.add_typer(deid_app, name="deid")


@deid_app.command("audit")
def deid_audit(
    dataset: Path = typer.Argument(
        ..., help="Dataset folder to audit (manifest, dataset.json, every text file)."
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per candidate instead of a table."),
) -> None:
    """List every possible identifier left in a dataset folder, with its category and record.

    An independent second pass (not the scrubber's rules): exit status 1 when anything is found, 0 when clean.
    """
    from rich.console import Console
    from rich.table import Table

    from ffasora.data.deid import audit_dataset

    if not dataset.is_dir():
        raise UserError(f"{dataset}: not a folder; expected a dataset folder written by prepare or simulate")
    candidates = audit_dataset(dataset)
    files = sorted(p for p in dataset.rglob("*") if p.is_file())
    if as_json:
        for c in candidates:
            typer.echo(
                json.dumps(
                    {
                        "category": c.category,
                        "file": c.file,
                        "record": c.record,
                        "field": c.field,
                        "text": c.text,
                    },
                    ensure_ascii=False,
                )
            )
    elif candidates:
        table = Table("category", "record", "file", "field", "text", title=f"{dataset}: possible identifiers")
        for c in candidates:
            table.add_row(c.category, c.record or "-", c.file, c.field, c.text)
        Console().print(table)
    if candidates:
        typer.echo(f"{len(candidates)} possible identifier(s) in {len(files)} file(s) of {dataset}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{dataset}: no possible identifier in {len(files)} file(s)")


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
    id_columns: str = typer.Option(
        "",
        "--id-columns",
        help="Comma-separated index columns that identify the patient (scrubbed from reports, never stored).",
    ),
    private: Path | None = typer.Option(
        None, "--private", help="Folder for the key, errors.jsonl and mapping (default OUT.private)."
    ),
    mapping: bool = typer.Option(
        False, "--mapping", help="Also write pseudonym -> source mapping.csv to the private folder."
    ),
    drop_mismatched_pairs: bool = typer.Option(
        False,
        "--drop-mismatched-pairs",
        help="Leave out photographs (index column 'image') whose field or optic-disc side disagrees with "
        "the video; the video is kept.",
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
            id_columns=tuple(c.strip() for c in id_columns.split(",") if c.strip()),
            drop_mismatched_pairs=drop_mismatched_pairs,
        )
    except ValueError as err:
        raise UserError(str(err)) from err
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
        except ValueError as err:  # a refused index, another dataset at --out, or the audit's findings
            raise UserError(str(err)) from err
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
        f"errors: {summary.errors_path}; inventory: {summary.inventory_path}"
        + (f"; mapping: {summary.mapping_path}" if summary.mapping_path else "")
    )
    if summary.pairs_path is not None:
        pairs = ", ".join(f"{k} {v}" for k, v in sorted(summary.pairs.items()))
        typer.echo(f"photographs: {pairs}; pairs: {summary.pairs_path}")
    typer.echo("de-identification audit: no possible identifier left")
    problems = validate_dataset(out, check_videos=False) if info["n_videos"] else []
    if problems:
        typer.echo("\n".join(problems), err=True)
        raise typer.Exit(1)
