"""CLI commands: evaluate (``ffasora evaluate --generated ... --reference ... --out ...``, ``train-features``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

ENCODER_DIR = "evaluate-encoder"

evaluate_app = typer.Typer(
    help="Score generated videos: distribution, paired, alignment, physiology and privacy metrics.",
    invoke_without_command=True,
    no_args_is_help=False,
)


def register(app: typer.Typer) -> None:
    """Add this group's commands to the root app."""
    app.add_typer(evaluate_app, name="evaluate")


@contextmanager
def _stages() -> Iterator[Callable[[str, int, int], None]]:
    """A rich progress display with one bar per named stage."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TimeElapsedColumn

    tasks: dict[str, TaskID] = {}
    with Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
    ) as bar:

        def stage(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=total)
            bar.update(tasks[name], completed=done, total=total)

        yield stage


@evaluate_app.callback()
def evaluate(
    ctx: typer.Context,
    generated: Path = typer.Option(
        None, "--generated", "-g", help="Folder of *.mp4/*.gif + <name>.json, or a dataset folder."
    ),
    reference: Path = typer.Option(None, "--reference", "-r", help="Reference FFA dataset folder."),
    split: str = typer.Option(
        "test", "--split", help="Reference split (and the split of a dataset --generated)."
    ),
    generated_split: str = typer.Option(
        None, "--generated-split", help="Split of a dataset given as --generated [default: --split]."
    ),
    out: Path = typer.Option(None, "--out", "-o", help="Report folder (report.html, report.json, plots)."),
    encoder: Path = typer.Option(
        None, "--encoder", help=f"In-domain encoder folder [default: REFERENCE/{ENCODER_DIR}]."
    ),
    i3d: Path = typer.Option(
        None, "--i3d", help="I3D Kinetics-400 weights (TorchScript or state dict) for standard FVD."
    ),
    lpips_trunk: Path = typer.Option(
        None, "--lpips-trunk", help="torchvision AlexNet/VGG16 ImageNet weights (.pth)."
    ),
    lpips_heads: Path = typer.Option(
        None, "--lpips-heads", help="LPIPS v0.1 linear-layer weights (.pth) for the trunk."
    ),
    lpips_net: str = typer.Option("alex", "--lpips-net", help="alex or vgg."),
    bert_model: Path = typer.Option(
        None, "--bert-model", help="Local transformers folder [default: bundled MiniLM-L6]."
    ),
    bert_layers: int = typer.Option(None, "--bert-layers", help="Layer for BERTScore (roberta-large: 17)."),
    no_bertscore: bool = typer.Option(False, "--no-bertscore", help="Skip BERTScore."),
    limit: int = typer.Option(None, "--limit", help="Evaluate only the first N generated videos."),
    bootstrap_rounds: int = typer.Option(
        200, "--bootstrap", help="Bootstrap rounds for confidence intervals."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed for bootstrap, floors and the positive control."),
) -> None:
    """Evaluate generated videos against a reference dataset and write report.html + report.json."""
    if ctx.invoked_subcommand is not None:
        return
    missing = [
        name
        for name, v in (("--generated", generated), ("--reference", reference), ("--out", out))
        if v is None
    ]
    if missing:
        raise typer.BadParameter(f"missing {', '.join(missing)} (see `ffasora evaluate --help`)")
    from ffasora.evaluate.inputs import is_dataset
    from ffasora.evaluate.report import headline, write_report
    from ffasora.evaluate.suite import EvaluateConfig, evaluate_videos

    if not generated.exists():
        raise typer.BadParameter(f"--generated {generated}: no such folder")
    if not is_dataset(reference):
        raise typer.BadParameter(f"--reference {reference}: not an FFA dataset folder (no dataset.json)")
    encoder = encoder or reference / ENCODER_DIR
    if not (encoder / "config.json").is_file():
        raise typer.BadParameter(
            f"no encoder at {encoder}; run `ffasora evaluate train-features {reference}` first"
        )
    cfg = EvaluateConfig(
        split=split,
        generated_split=generated_split,
        limit=limit,
        bootstrap_rounds=bootstrap_rounds,
        seed=seed,
        bert_model=str(bert_model) if bert_model else None,
        bert_layers=bert_layers,
        bertscore=not no_bertscore,
        i3d_weights=str(i3d) if i3d else None,
        lpips_trunk=str(lpips_trunk) if lpips_trunk else None,
        lpips_heads=str(lpips_heads) if lpips_heads else None,
        lpips_net=lpips_net,
    )
    try:
        with _stages() as stage:
            evaluation = evaluate_videos(generated, reference, encoder, cfg, stage)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err
    path = write_report(evaluation, out)
    _print_headline(headline(evaluation.results))
    typer.echo(f"report: {path}")


def _print_headline(rows: list[tuple[str, str, str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("metric", "generated", "compare with")
    for row in rows:
        table.add_row(*row)
    Console().print(table)


@evaluate_app.command("train-features")
def train_features_command(
    dataset: Path = typer.Argument(..., help="Reference dataset folder (its train split is used)."),
    out: Path = typer.Option(None, "--out", "-o", help=f"Model folder [default: DATASET/{ENCODER_DIR}]."),
    frames: int = typer.Option(21, "--frames", help="Frames per clip (1 + 4k)."),
    size: int = typer.Option(
        None,
        "--size",
        help="Clip side in pixels [default: the dataset's own frame size, so that blur costs FVD-FFA].",
    ),
    width: int = typer.Option(16, "--width", help="Channels of the first stage."),
    stages: int = typer.Option(3, "--stages", help="CNN stages (each after the first halves T, H, W)."),
    epochs: int = typer.Option(12, "--epochs", help="Training epochs."),
    batch_size: int = typer.Option(16, "--batch-size", help="Videos per step."),
    lr: float = typer.Option(2e-3, "--lr", help="Peak learning rate (one-cycle schedule)."),
    seed: int = typer.Option(0, "--seed", help="Training seed."),
    limit: int = typer.Option(None, "--limit", help="Use only the first N training videos."),
    calibrate: bool = typer.Option(
        True,
        "--calibrate/--no-calibrate",
        help="Choose per-code decision thresholds on the val split and fold them into the findings head.",
    ),
) -> None:
    """Train the in-domain encoder + findings classifier (FVD-FFA features, privacy embedding) on DATASET."""
    from ffasora.evaluate.encoder import EncoderConfig, TrainConfig
    from ffasora.evaluate.features import native_size, train_features

    try:
        size = size or native_size(dataset)
        config = EncoderConfig(frames=frames, size=size, width=width, stages=stages)
        with _stages() as stage:
            result = train_features(
                dataset,
                out or dataset / ENCODER_DIR,
                config,
                TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed),
                limit,
                stage,
                calibrate,
            )
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err
    held = result["holdout"]
    typer.echo(
        f"{result['model']}: trained on {result['trained_on']['n_train']} videos in {result['seconds']} s; "
        f"findings micro-F1 on {held['split']} ({held['n']} videos): {held['micro_f1']}"
        + (
            f" (per-code thresholds chosen there; at 0.5: {held['micro_f1_at_0.5']})"
            if "thresholds" in held
            else ""
        )
    )
