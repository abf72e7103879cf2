"""CLI commands: ``refiner round-trips`` (what the photograph-guided refiner learns from).

The refiner itself trains with ``ffasora train refiner -c configs/refiner/bundled.toml``; see
:mod:`ffasora.train.refiner_task` for the method and docs/image-conditioning.md for the recipe.
"""

from __future__ import annotations

from pathlib import Path

import typer

from ffasora.cli.errors import UserError

refiner_app = typer.Typer(
    help="The photograph-guided refiner of image-conditioned models.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    """Add this group's commands to the root app."""
    refiner_app.command("round-trips")(round_trips)
    app.add_typer(refiner_app, name="refiner")


def round_trips(
    dataset: Path = typer.Argument(..., help="Dataset folder with paired photographs (simulate, prepare)."),
    vae: Path = typer.Option(..., "--vae", help="The WF-VAE folder the refined pipeline decodes with."),
    out: Path = typer.Option(..., "--out", "-o", help="Round-trip folder (resumes if it exists)."),
    split: list[str] = typer.Option(["train"], "--split", help="Splits to include (repeat for several)."),
    generator: Path | None = typer.Option(
        None,
        "--generator",
        help="Also keep this image-conditioned pipeline's own video of each eye (photograph + report, "
        "unrefined), so the refiner can learn to correct the generator as well as the decoder.",
    ),
    variant: str = typer.Option("standard", "--variant", help="The --generator's variant, e.g. photo."),
) -> None:
    """Pass every paired video of the splits through the VAE and back, and keep the decoded video beside the
    true one and the photograph: the refiner learns to turn the first into the second."""
    from rich.progress import Progress

    from ffasora.models.pretrained import find_weights, read_config
    from ffasora.models.vae import WFVAE
    from ffasora.train.refiner_task import write_round_trips

    if not (dataset / "manifest.jsonl").is_file():
        raise UserError(f"{dataset}: no manifest.jsonl; not an FFA dataset folder")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; expected a folder")
    read_config(vae)  # a ValueError naming the folder when it is not a model folder
    find_weights(vae)
    model = WFVAE.from_pretrained(vae).eval()
    pipe = None
    if generator is not None:
        from ffasora.pipeline import FFASoraPipeline, PipelineFolder

        if not PipelineFolder.read(generator, variant).image_channels:
            raise UserError(f"--generator {generator} --variant {variant}: its DiT takes no photograph")
        pipe = FFASoraPipeline.from_pretrained(generator, variant=variant)
    with Progress() as bar:
        task = bar.add_task("VAE round trips", total=None)
        write_round_trips(
            dataset,
            model,
            out,
            splits=tuple(split),
            generator=pipe,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    typer.echo(f"{out}: round trips of {'/'.join(split)} through {vae}")
