"""CLI commands: demo (the local teaching web page)."""

from __future__ import annotations

from pathlib import Path

import typer

from ffasora.cli.errors import UserError


def register(app: typer.Typer) -> None:
    """Add this group's commands to the root app."""
    app.command("demo")(demo)


def demo(
    model: Path | None = typer.Option(
        None, "--model", "-m", help="Pipeline folder (default: the bundled model)."
    ),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to listen on (keep 127.0.0.1 unless you mean it)."
    ),
    port: int = typer.Option(7860, "--port", help="Port to listen on."),
    steps: int | None = typer.Option(
        None, "--steps", help="Sampler steps (default: the model's; fewer is faster)."
    ),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:1, ..."),
) -> None:
    """Serve the teaching demo: type or pick a report, watch the synthetic angiogram and its frames."""
    import uvicorn

    from ffasora.demo.server import create_app
    from ffasora.io.bundled import bundled_model
    from ffasora.pipeline import PipelineFolder, resolve_settings

    if not 1 <= port <= 65535:
        raise UserError(f"--port {port}: expected a port number from 1 to 65535")
    if model is None:
        try:
            model = bundled_model()
        except ValueError as err:
            raise UserError(f"no --model given and {err} with --model") from None
    if not (model / "model_index.json").is_file():
        raise UserError(
            f"--model {model} is not a pipeline folder: it needs model_index.json, vae/ and dit/ "
            "(make one with `ffasora pipeline assemble`)"
        )
    folder = PipelineFolder.read(model)
    if steps is not None:
        resolve_settings(folder.config, folder.patch_size, steps=steps)
    app = create_app(model, steps=steps, device=device)
    typer.echo(f"ffasora demo on http://{host}:{port} (Ctrl+C to stop)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
