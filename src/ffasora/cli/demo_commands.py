"""CLI commands: demo (the local teaching web page)."""

from __future__ import annotations

from pathlib import Path

import typer

from ffasora.cli.errors import UserError

# The bundled model: <repo>/pretrained when running from a checkout.
DEFAULT_MODEL = Path(__file__).resolve().parents[3] / "pretrained"


def register(app: typer.Typer) -> None:
    """Add this group's commands to the root app."""
    app.command("demo")(demo)


def demo(
    model: Path = typer.Option(
        DEFAULT_MODEL, "--model", "-m", help="Pipeline folder (default: the bundled model)."
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
    from ffasora.pipeline import PipelineFolder, resolve_settings

    if not 1 <= port <= 65535:
        raise UserError(f"--port {port}: expected a port number from 1 to 65535")
    if not (model / "model_index.json").is_file():
        hint = " (the bundled model is not in this checkout)" if model == DEFAULT_MODEL else ""
        raise UserError(
            f"--model {model} is not a pipeline folder{hint}: it needs model_index.json, vae/ and dit/ "
            "(make one with `ffasora pipeline assemble`)"
        )
    folder = PipelineFolder.read(model)
    if steps is not None:
        resolve_settings(folder.config, folder.patch_size, steps=steps)
    app = create_app(model, steps=steps, device=device)
    typer.echo(f"ffasora demo on http://{host}:{port} (Ctrl+C to stop)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
