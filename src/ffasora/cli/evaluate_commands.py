"""CLI commands: evaluate (``ffasora evaluate --generated ... --reference ... --out ...``, ``train-features``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from ffasora.cli.errors import UserError

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


def _int_list(text: str | None, option: str) -> tuple[int, ...]:
    if not text:
        return ()
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise UserError(f"{option} {text!r}: expected comma-separated whole numbers, e.g. 60,120") from None


@evaluate_app.command("utility")
def utility_command(
    reference: Path = typer.Option(..., "--reference", "-r", help="Real FFA dataset folder."),
    synthetic: Path = typer.Option(
        ..., "--synthetic", "-s", help="Videos generated from training reports (mp4 + provenance JSON)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Report folder (report.html, report.json, plots)."),
    synthetic_test: Path = typer.Option(
        None, "--synthetic-test", help="Videos generated from test reports, for TRTS."
    ),
    train_split: str = typer.Option("train", "--train-split", help="Split the synthetic reports come from."),
    test_split: str = typer.Option("test", "--test-split", help="Real split every classifier is tested on."),
    limit: int = typer.Option(None, "--limit", help="Use only the first N synthetic videos."),
    curve: str = typer.Option(
        None, "--curve", help="Numbers of synthetic videos for the learning curve, e.g. 60,120."
    ),
    size: int = typer.Option(64, "--size", help="Clip side in pixels for every classifier."),
    frames: int = typer.Option(21, "--frames", help="Frames per clip (1 + 4k)."),
    width: int = typer.Option(16, "--width", help="Channels of the first stage."),
    epochs: int = typer.Option(12, "--epochs", help="Training epochs (the same for every classifier)."),
    batch_size: int = typer.Option(16, "--batch-size", help="Videos per step."),
    bootstrap_rounds: int = typer.Option(1000, "--bootstrap", help="Bootstrap rounds for the CIs."),
    seed: int = typer.Option(0, "--seed", help="Training and bootstrap seed."),
) -> None:
    """TSTR / TRTR / TRTS: the findings classifier trained on generated vs real videos of the same reports."""
    from ffasora.evaluate.audit_report import format_ci, write_utility_report
    from ffasora.evaluate.inputs import (
        fill_labels,
        load_dataset_items,
        load_generated,
        pair_items,
        report_parser,
    )
    from ffasora.evaluate.utility import UtilityConfig, utility_study

    for name, path in (
        ("--reference", reference),
        ("--synthetic", synthetic),
        ("--synthetic-test", synthetic_test),
    ):
        if path is not None and not path.is_dir():
            raise UserError(f"{name} {path}: no such folder")
    cfg = UtilityConfig(
        frames=frames,
        size=size,
        width=width,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        bootstrap_rounds=bootstrap_rounds,
        curve=_int_list(curve, "--curve"),
    )
    with _stages() as stage:
        real_pool = load_dataset_items(
            reference, train_split, None, lambda d, t: stage(f"load {train_split}", d, t)
        )
        real_test = load_dataset_items(
            reference, test_split, None, lambda d, t: stage(f"load {test_split}", d, t)
        )
        gen = load_generated(synthetic, limit=limit, progress=lambda d, t: stage("load synthetic", d, t))
        pairs = pair_items(gen, real_pool)
        if any(p is None for p in pairs):
            missing = [g.name for g, p in zip(gen, pairs, strict=True) if p is None][:3]
            raise UserError(
                f"--synthetic {synthetic}: {sum(p is None for p in pairs)} videos (e.g. {', '.join(missing)}) "
                f"name no source video of split {train_split!r}; TRTR needs the real video of each report"
            )
        fill_labels(gen, report_parser())
        real_train = [real_pool[p] for p in pairs if p is not None]
        for g, r in zip(gen, real_train, strict=True):  # the report's codes, as the real video is labelled
            g.codes = list(r.codes)
        gen_test, gen_test_sources = [], []
        if synthetic_test is not None:
            gen_test = load_generated(
                synthetic_test, progress=lambda d, t: stage("load synthetic test", d, t)
            )
            test_pairs = pair_items(gen_test, real_test)
            kept = [(g, real_test[p]) for g, p in zip(gen_test, test_pairs, strict=True) if p is not None]
            if not kept:
                raise UserError(
                    f"--synthetic-test {synthetic_test}: no video names a source in split {test_split!r}"
                )
            for g, r in kept:
                g.codes = list(r.codes)
            gen_test, gen_test_sources = [g for g, _ in kept], [r for _, r in kept]
        results = utility_study(real_train, gen, real_test, cfg, gen_test, gen_test_sources, stage)
    results["protocol"].update(
        {
            "reference": str(reference.resolve()),
            "synthetic": str(synthetic.resolve()),
            "synthetic_test": str(synthetic_test.resolve()) if synthetic_test else None,
            "train_split": train_split,
            "test_split": test_split,
        }
    )
    path = write_utility_report(results, out)
    cmp = results["TSTR_vs_TRTR"]
    for metric in ("macro_auroc", "micro_f1"):
        typer.echo(
            f"{metric}: TSTR {format_ci(cmp[metric]['a'])}  TRTR {format_ci(cmp[metric]['b'])}  "
            f"TSTR/TRTR {format_ci(cmp[metric]['ratio'])}"
        )
    typer.echo(f"report: {path}")


@evaluate_app.command("privacy")
def privacy_command(
    generated: list[Path] = typer.Option(
        ...,
        "--generated",
        "-g",
        help="Folder of generated videos naming their source (repeat: training-report and held-out-report sets).",
    ),
    reference: Path = typer.Option(..., "--reference", "-r", help="The generator's FFA dataset folder."),
    out: Path = typer.Option(..., "--out", "-o", help="Report folder (report.html, report.json, plots)."),
    members: str = typer.Option("train", "--members", help="Split the generator was trained on."),
    nonmembers: str = typer.Option("test", "--nonmembers", help="Split it never saw."),
    fresh_pool: str = typer.Option(
        "val", "--fresh-pool", help="Split of other real eyes for the fresh-eyes control."
    ),
    encoder: Path = typer.Option(
        None, "--encoder", help="Also audit with the in-domain encoder's embedding (model folder)."
    ),
    generator: Path = typer.Option(
        None, "--generator", help="The audited pipeline folder: adds the denoising-error attack."
    ),
    loss_videos: int = typer.Option(100, "--loss-videos", help="Members (and non-members) for that attack."),
    fpr: float = typer.Option(0.01, "--fpr", help="Rate at which a held-out real video is called a copy."),
    controls: bool = typer.Option(
        True, "--controls/--no-controls", help="Audit the memoriser and fresh-eyes controls alongside."
    ),
    bootstrap_rounds: int = typer.Option(1000, "--bootstrap", help="Bootstrap rounds for the AUC CIs."),
    examples: int = typer.Option(
        6, "--examples", help="Generated videos shown beside their nearest training videos."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed for the controls, cross-fitting and bootstrap."),
) -> None:
    """Copy detection, distance to closest record and membership inference, beside a memorising and a
    fresh-eyes control."""
    from ffasora.evaluate.audit_report import PRIVACY_HEADER, privacy_rows, write_privacy_report
    from ffasora.evaluate.leakage import LeakageConfig, leakage_audit

    for path in generated:
        if not path.is_dir():
            raise UserError(f"--generated {path}: no such folder")
    if not (reference / "dataset.json").is_file():
        raise UserError(f"--reference {reference}: not an FFA dataset folder (no dataset.json)")
    if encoder is not None and not (encoder / "config.json").is_file():
        raise UserError(f"--encoder {encoder}: no config.json (an `ffasora evaluate train-features` folder)")
    if not 0 < fpr < 0.5:
        raise UserError(f"--fpr {fpr}: expected a rate between 0 and 0.5")
    cfg = LeakageConfig(
        members=members,
        nonmembers=nonmembers,
        fresh_pool=fresh_pool,
        fpr=fpr,
        bootstrap_rounds=bootstrap_rounds,
        controls=controls,
        loss_attack_videos=loss_videos,
        seed=seed,
    )
    if generator is not None and not (generator / "model_index.json").is_file():
        raise UserError(
            f"--generator {generator}: no model_index.json (a pipeline folder such as pretrained/)"
        )
    with _stages() as stage:
        results, pictures = leakage_audit(generated, reference, cfg, encoder, stage, generator)
    path = write_privacy_report(results, pictures, out, examples)
    from rich.console import Console
    from rich.table import Table

    for label, block in results["embeddings"].items():
        table = Table(*PRIVACY_HEADER, title=label)
        for row in privacy_rows(block):
            table.add_row(*row)
        Console().print(table)
    typer.echo(f"report: {path}")
