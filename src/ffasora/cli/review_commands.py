"""CLI commands: review (blinded expert rating of videos: create a study, serve it, analyse it)."""

from __future__ import annotations

from pathlib import Path

import typer

from ffasora.cli.errors import UserError, check_output_path, refuse_overwrite

review_app = typer.Typer(
    name="review",
    help="Blinded expert rating of FFA videos: create a study, serve the rating app, compute statistics.",
    no_args_is_help=True,
)


def _findings_checklist(spec: str) -> tuple[tuple[str, str], ...]:
    """'all' (the ontology), 'none', or comma-separated finding codes."""
    from ffasora.findings.ontology import FINDING_CODES

    if spec == "none":
        return ()
    codes = list(FINDING_CODES) if spec == "all" else [c.strip() for c in spec.split(",") if c.strip()]
    unknown = [c for c in codes if c not in FINDING_CODES]
    if unknown:
        raise typer.BadParameter(f"unknown finding code(s) {unknown}; known: {sorted(FINDING_CODES)}")
    return tuple((c, FINDING_CODES[c].en) for c in codes)


def _check_study(study: Path) -> None:
    """A study folder made by `review create` (nothing is created when it is not)."""
    from ffasora.review.store import DB_NAME

    if not (study / DB_NAME).is_file():
        raise UserError(f"{study}: not a study folder (no {DB_NAME}); make one with `ffasora review create`")


@review_app.command("create")
def create(
    study: Path = typer.Argument(..., help="Folder to create for the study (must not exist or be empty)."),
    videos: list[Path] = typer.Option(
        ..., "--videos", help="Folder/file of synthetic videos or a dataset folder; repeatable."
    ),
    raters: str = typer.Option(..., "--raters", help="Comma-separated rater names, e.g. 'drA,drB,drC'."),
    real: list[Path] = typer.Option(
        [], "--real", help="Folder of real videos or a dataset folder; repeatable."
    ),
    real_share: float = typer.Option(
        0.2, "--real-share", help="Share of each rater's list that is real videos."
    ),
    per_rater: int | None = typer.Option(
        None, "--per-rater", help="Videos per rater (default: all, fully crossed)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the selection and the per-rater orders."),
    size: int | None = typer.Option(
        None, "--size", help="Height to resize every video to (default: smallest)."
    ),
    fps: int = typer.Option(7, "--fps", help="Playback frame rate of every video."),
    findings: str = typer.Option(
        "all", "--findings", help="Checklist: 'all', 'none', or codes 'MA,NPA,...'."
    ),
    title: str = typer.Option("FFA video quality review", "--title", help="Title shown to raters."),
    base_url: str = typer.Option("http://127.0.0.1:8000", "--base-url", help="Where the app will be served."),
) -> None:
    """Create a study: re-encode the videos blindly, give each rater a random order and a secret link."""
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from ffasora.review.study import StudyOptions, create_study

    names = [n.strip() for n in raters.split(",") if n.strip()]
    options = StudyOptions(
        real_share=real_share,
        per_rater=per_rater,
        seed=seed,
        size=size,
        fps=fps,
        findings=_findings_checklist(findings),
        title=title,
    )
    with Progress(transient=True) as bar:
        task = bar.add_task("encoding videos", total=None)
        try:
            created = create_study(
                study,
                videos,
                names,
                real=real,
                options=options,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
    console = Console()
    console.print(
        f"study {created.path}: {created.n_synthetic} synthetic + {created.n_real} real videos, "
        f"{created.per_rater} per rater"
    )
    for warning in created.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    table = Table("rater", "secret link (send privately; also in raters.csv)")
    for name, token in created.tokens.items():
        table.add_row(name, f"{base_url.rstrip('/')}/r/{token}/")
    console.print(table)


@review_app.command("serve")
def serve(
    study: Path = typer.Argument(..., help="A study folder made by `ffasora review create`."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on (loopback by default)."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
) -> None:
    """Serve the rating app (put it behind HTTPS before exposing it beyond this machine)."""
    import uvicorn

    from ffasora.review.server import create_app

    if not 1 <= port <= 65535:
        raise UserError(f"--port {port}: expected a port number from 1 to 65535")
    _check_study(study)
    try:
        app = create_app(study)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    # The log keeps paths without tokens: uvicorn's access log would write every secret link to it.
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="info")


@review_app.command("stats")
def stats_command(
    study: Path = typer.Argument(..., help="A study folder."),
    out: Path = typer.Option(..., "--out", help="Folder for the CSVs, summary.json and distributions.png."),
    n_boot: int = typer.Option(1000, "--n-boot", help="Bootstrap draws for the CIs of alpha, AC2 and kappa."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace the results of an earlier run in --out."
    ),
) -> None:
    """Unblind and analyse: per-video and per-rater tables, agreement with CIs, visual Turing test."""
    from rich.console import Console
    from rich.table import Table

    from ffasora.review.report import write_report

    if n_boot < 1:
        raise UserError(f"--n-boot {n_boot}: expected at least 1 bootstrap draw")
    _check_study(study)
    check_output_path(out, "--out", folder=True)
    refuse_overwrite([out / "summary.json"], overwrite)

    try:
        result = write_report(study, out, n_boot=n_boot, seed=seed)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    console = Console()
    counts = result["counts"]
    console.print(
        f"{counts['ratings']} of {counts['assigned']} assigned ratings stored "
        f"({counts['submissions']} submissions incl. changes), {counts['raters']} raters"
    )
    table = Table("videos", "n", "mean", "SD", "median", "IQR")
    for kind, s in result["overall"].items():
        if s["n"]:
            table.add_row(
                kind, str(s["n"]), f"{s['mean']:.3f}", f"{s['sd']:.3f}", f"{s['median']:g}", f"{s['iqr']:g}"
            )
    console.print(table)
    table = Table("videos", "statistic", "value", "95% CI", "units")
    for row in result["agreement"]:
        if row["statistic"].startswith("Cohen kappa"):
            continue  # pairwise, in agreement.csv
        table.add_row(
            row["videos"],
            row["statistic"],
            f"{row['value']:.3f}",
            f"[{row['ci_low']:.3f}, {row['ci_high']:.3f}]",
            str(row["n_units"]),
        )
    console.print(table)
    for row in result["turing"]:
        console.print(
            f"Turing test {row['rater']}: accuracy {row['accuracy']:.3f} ({row['correct']}/{row['n']}), "
            f"p vs 50% = {row['p_value_vs_50']:.3g}"
        )
    console.print(f"written to {out}")


@review_app.command("reset-link")
def reset_link(
    study: Path = typer.Argument(..., help="A study folder."),
    rater: str = typer.Argument(..., help="The rater whose link is lost or leaked."),
    base_url: str = typer.Option("http://127.0.0.1:8000", "--base-url", help="Where the app is served."),
) -> None:
    """Give a rater a new secret link; the old one stops working at once, their ratings stay."""
    from ffasora.review.store import Store

    _check_study(study)
    try:
        token = Store(study).reset_token(rater)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    typer.echo(f"{rater}: {base_url.rstrip('/')}/r/{token}/")


def register(app: typer.Typer) -> None:
    """Add this group's commands to the root app."""
    app.add_typer(review_app, name="review")
