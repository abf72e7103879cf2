"""The root ``ffasora`` Typer app: the version and logging options, and every command group registered."""

from __future__ import annotations

import logging

import typer

from ffasora import __version__
from ffasora.cli import (
    data_commands,
    demo_commands,
    distill_commands,
    evaluate_commands,
    generate_commands,
    latents_commands,
    plan_commands,
    prepare_commands,
    refiner_commands,
    review_commands,
    train_commands,
    vae_commands,
)
from ffasora.cli.errors import CommandGroup

app = typer.Typer(
    name="ffasora",
    cls=CommandGroup,
    help="FFA report -> dynamic FFA video: simulate, prepare, train, generate, evaluate, review.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ffasora {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version."
    ),
) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(show_path=False, rich_tracebacks=False)],
    )


for _module in (
    data_commands,
    prepare_commands,
    train_commands,
    plan_commands,
    vae_commands,
    latents_commands,
    generate_commands,
    distill_commands,
    refiner_commands,
    evaluate_commands,
    review_commands,
    demo_commands,
):
    _module.register(app)


def main() -> None:
    app()
