"""CLI commands: data (``simulate``, ``show``, ``validate``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ffasora.cli.errors import UserError, check_output_path, refuse_overwrite

PHASE_SHORT = {
    "choroidal": "chor",
    "arterial": "art",
    "early_AV": "early AV",
    "late_AV": "late AV",
    "venous": "ven",
    "mid": "mid",
    "late": "late",
}


def register(app: typer.Typer) -> None:
    """Add this group's commands to the root app."""
    app.command("simulate")(simulate)
    app.command("show")(show)
    app.command("validate")(validate)


def simulate(
    out: Path = typer.Option(..., "--out", "-o", help="Dataset folder to write (resumed if it exists)."),
    n: int = typer.Option(256, "--n", help="Number of videos (eyes)."),
    size: int = typer.Option(256, "--size", help="Frame side in pixels."),
    frames: int = typer.Option(21, "--frames", help="Frames per video, 1 + 4k."),
    seed: int = typer.Option(0, "--seed", help="Dataset seed: cases, eyes per patient and splits."),
    sampler: str = typer.Option("canonical", "--sampler", help="Frame-time sampler of the simulator."),
    workers: int = typer.Option(1, "--workers", "-w", help="Simulator processes."),
    photos: bool = typer.Option(
        True,
        "--photos/--no-photos",
        help="Also write each eye's simulated colour fundus photograph (images/<id>.png), registered to its "
        "angiogram: for image-conditioned training and paired evaluation.",
    ),
    mix: str = typer.Option(
        "",
        "--mix",
        help="The cohort's diagnosis mix as relative weights, e.g. 'BRVO=0.4,CRVO=0.4,normal=0.2' (a code, "
        "code:grade or other); default: the simulator's clinic mix. A second eye follows its patient's first.",
    ),
) -> None:
    """Build an FFA dataset folder from the procedural simulator (resumable after an interruption)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from ffasora.data.build import SimulateConfig, simulate_dataset
    from ffasora.data.validate import validate_dataset
    from ffasora.simulate.cases import parse_mix

    if workers < 1:
        raise UserError(f"--workers {workers}: expected at least 1")
    try:
        cohort = tuple(parse_mix(mix).items()) if mix else ()
    except ValueError as e:
        raise UserError(f"--mix {mix!r}: {e}") from None
    check_output_path(out, "--out", folder=True)
    cfg = SimulateConfig(n=n, size=size, frames=frames, seed=seed, sampler=sampler, photos=photos, mix=cohort)
    columns = (
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns) as bar:
        task = bar.add_task("simulating", total=n)
        try:
            info = simulate_dataset(
                out, cfg, workers=workers, progress=lambda done, total: bar.update(task, completed=done)
            )
        except KeyboardInterrupt:
            typer.echo(f"interrupted; rerun the same command to resume {out}", err=True)
            raise typer.Exit(130) from None
    problems = validate_dataset(out, check_videos=False)  # just written: check the files, not every pixel
    typer.echo(f"{out}: {info['n_videos']} videos of {info['n_patients']} patients, splits {info['counts']}")
    if problems:
        typer.echo("\n".join(problems), err=True)
        raise typer.Exit(1)


def validate(
    dataset: Path = typer.Argument(..., help="Dataset folder."),
    quick: bool = typer.Option(False, "--quick", help="Check files exist without reading every video."),
) -> None:
    """Check a dataset folder against the format; exit status 1 when a problem is found."""
    from ffasora.data.validate import validate_dataset

    problems = validate_dataset(dataset, check_videos=not quick)
    for problem in problems:
        typer.echo(f"- {problem}")
    if problems:
        typer.echo(f"{dataset}: {len(problems)} problem(s)", err=True)
        raise typer.Exit(1)
    typer.echo(f"{dataset}: valid")


def show(
    path: Path = typer.Argument(
        ..., help="Dataset folder, or one video (.npz of a dataset, .mp4, .avi, .gif)."
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="PNG to write [default: beside PATH]."),
    cases: int = typer.Option(8, "--cases", help="Cases (rows) to show; distinct diagnoses first."),
    frames: int = typer.Option(7, "--frames", help="Frames per row, evenly spaced."),
    ids: str | None = typer.Option(None, "--ids", help="Comma-separated video ids to show instead."),
    indices: str | None = typer.Option(
        None, "--indices", help="Comma-separated frame indices instead of --frames."
    ),
    tile: int = typer.Option(256, "--tile", help="Largest tile width in pixels."),
    video: bool = typer.Option(True, "--video/--no-video", help="Also write the first case as mp4 and gif."),
    fps: float = typer.Option(4.0, "--fps", help="Frame rate of the mp4/gif."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace the sheet (and mp4/gif) if they exist."
    ),
) -> None:
    """Write a contact sheet (cases x frames, times, finding codes) and an mp4/gif of one case."""
    from ffasora.io.sheet import contact_sheet
    from ffasora.io.video import write_gif, write_mp4

    if not path.exists():
        raise UserError(f"{path} does not exist")
    if frames < 1 or cases < 1:
        raise UserError(f"--frames {frames} and --cases {cases} must be positive")
    if not 8 <= tile <= 4096:
        raise UserError(f"--tile {tile}: expected 8 to 4096 pixels")
    if not 0 < fps <= 120:
        raise UserError(f"--fps {fps}: expected a frame rate above 0 and at most 120")
    picked = _parse_indices(indices)
    if out is None:
        out = path / "contact_sheet.png" if path.is_dir() else path.with_name(path.stem + "_sheet.png")
    if out.suffix.lower() != ".png":
        raise UserError(f"--out {out}: expected a .png file name")
    check_output_path(out, "--out")
    if path.is_dir():
        records = _dataset_records(path, cases, ids)
        first_id, counts = records[0].id, [(r.id, r.frames) for r in records]
    else:
        single = _load_file_case(path)
        first_id, counts = single["id"], [(single["id"], len(single["frames"]))]
    for name, count in counts:
        if picked is not None and any(not 0 <= i < count for i in picked):
            raise UserError(f"--indices {indices}: {name} has {count} frames (indices 0 to {count - 1})")
    stem = out.with_name(f"{out.stem}_{first_id}")
    videos = [stem.with_suffix(".mp4"), stem.with_suffix(".gif")] if video else []
    refuse_overwrite([out, *videos], overwrite)
    shown = _load_dataset_cases(path, records) if path.is_dir() else [single]
    rows, labels, frame_labels = [], [], []
    for case in shown:
        idx = _spaced(len(case["frames"]), frames) if picked is None else picked
        rows.append(case["frames"][idx])
        labels.append(case["label"])
        frame_labels.append([case["frame_labels"][i] for i in idx])
    width = min(tile, max(r.shape[2] for r in rows))
    sheet = contact_sheet(rows, labels, frame_labels, tile=width, title=shown[0].get("title"))
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, optimize=True)
    typer.echo(
        f"wrote {out} ({sheet.width}x{sheet.height}, {len(rows)} cases x {max(len(r) for r in rows)} frames)"
    )
    if video:
        first = shown[0]
        tags = {"comment": first["comment"], "title": first["id"]}
        for written in (
            write_mp4(first["frames"], videos[0], fps, tags),
            write_gif(first["frames"], videos[1], fps),
        ):
            typer.echo(f"wrote {written}")


def _parse_indices(indices: str | None) -> list[int] | None:
    if not indices:
        return None
    try:
        picked = [int(i) for i in indices.split(",") if i.strip()]
    except ValueError:
        raise UserError(
            f"--indices {indices!r}: expected comma-separated frame numbers, e.g. 0,10,20"
        ) from None
    if not picked:
        raise UserError(f"--indices {indices!r}: expected comma-separated frame numbers, e.g. 0,10,20")
    return picked


def _spaced(stored: int, wanted: int) -> list[int]:
    import numpy as np

    if wanted >= stored:
        return list(range(stored))
    return [int(i) for i in np.round(np.linspace(0, stored - 1, wanted))]


def _dataset_records(root: Path, n: int, ids: str | None) -> list[Any]:
    """The manifest records to show, each with its video file present (frames are not read yet)."""
    from ffasora.data.format import INFO, MANIFEST, read_manifest, video_path

    if not (root / INFO).is_file() or not (root / MANIFEST).is_file():
        missing = INFO if not (root / INFO).is_file() else MANIFEST
        raise UserError(f"{root}: no {missing}; not an FFA dataset folder (or an incomplete one)")
    records = read_manifest(root)
    if not records:
        raise UserError(f"{root}: no videos in {MANIFEST}")
    if ids:
        wanted = [i.strip() for i in ids.split(",") if i.strip()]
        by_id = {r.id: r for r in records}
        unknown = [i for i in wanted if i not in by_id]
        if unknown:
            raise UserError(f"--ids: {root} has no video(s) {unknown}")
        chosen = [by_id[i] for i in wanted]
    else:
        # One case per diagnosis first, so a small sheet shows the dataset's range; then fill in id order.
        first_of: dict[str | None, Any] = {}
        for r in sorted(records, key=lambda r: r.id):
            first_of.setdefault(r.primary_diagnosis, r)
        chosen = list(first_of.values())[:n]
        chosen += [r for r in records if r not in chosen][: n - len(chosen)]
    for r in chosen:
        if not video_path(root, r.id).is_file():
            raise UserError(
                f"{root}: the video file of {r.id!r} (videos/{r.id}.npz) is missing; "
                f"`ffasora validate {root}` lists every problem"
            )
    return chosen


def _load_dataset_cases(root: Path, records: list[Any]) -> list[dict[str, Any]]:
    from ffasora.data.format import load_video, read_manifest

    title = f"{root.name}: {len(read_manifest(root))} videos"
    cases = []
    for r in records:
        try:
            frames = load_video(root, r.id)
        except (OSError, ValueError, KeyError) as err:
            raise UserError(
                f"{root}: cannot read the video of {r.id!r} ({err}); the file is damaged"
            ) from None
        cases.append(_record_case(r, frames, title))
    return cases


def _record_case(record: Any, frames: Any, title: str | None) -> dict[str, Any]:
    diagnoses = " + ".join(
        d["code"] + (f" ({d['grade']})" if d.get("grade") else "") for d in record.diagnoses
    )
    codes = ", ".join(record.codes) or "none"
    label = f"{record.id}  {record.eye}  {diagnoses or 'no diagnosis'}  |  findings: {codes}"
    if record.negated:
        label += f"  |  absent: {', '.join(record.negated)}"
    times = record.frame_times_s
    phases = record.phases
    frame_labels = [
        (f"{times[i]:.1f} s" if times else f"#{i}")
        + (f" {PHASE_SHORT.get(phases[i], phases[i])}" if phases else "")
        for i in range(len(frames))
    ]
    comment = "synthetic (ffasora simulator)" if record.source == "simulator" else "ffasora dataset video"
    return {
        "id": record.id,
        "frames": frames,
        "label": label,
        "frame_labels": frame_labels,
        "title": title,
        "comment": comment,
    }


def _load_file_case(path: Path) -> dict[str, Any]:
    from ffasora.data.format import load_video_file, read_manifest

    if path.suffix == ".npz":
        try:
            frames = load_video_file(path)
        except (OSError, ValueError, KeyError) as err:
            raise UserError(f"{path}: cannot read the video ({err}); the file is damaged") from None
        root = path.parent.parent
        if path.parent.name == "videos" and (root / "manifest.jsonl").is_file():
            match = [r for r in read_manifest(root) if r.id == path.stem]
            if match:
                return _record_case(match[0], frames, None)
        times = None
    else:
        from ffasora.io.video import read_video

        try:
            frames, times = read_video(path)
        except (OSError, ValueError) as err:
            reason = " ".join(str(err).split()).removeprefix(f"{path}: ")
            raise UserError(f"{path}: cannot read the video ({reason}); it is empty or damaged") from None
    labels = [f"{t:.1f} s" for t in times] if times is not None else [f"#{i}" for i in range(len(frames))]
    return {
        "id": path.stem,
        "frames": frames,
        "label": path.name,
        "frame_labels": labels,
        "title": None,
        "comment": "ffasora show",
    }
