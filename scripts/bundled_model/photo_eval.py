"""Paired evaluation of photograph-conditioned generation on a simulated split, beside controls and baselines.

    .venv/bin/python scripts/bundled_model/photo_eval.py DATASET --image-model runs/pipe_image \
        --report-model pretrained --encoder runs/eval_encoder128 --split test --n 24 \
        --generated-dir runs/photo_eval_videos --out runs/photo_eval.json

Conditions per eye, each scored against the eye's own true video and masks (:mod:`ffasora.evaluate.photo`):

* controls: ``reference`` (the true video), ``time_reversed`` (it, played backwards) and ``other_anatomy``
  (another eye's true video with the same physiology checks applicable, in this eye's masks);
* model-free baselines: ``cfp_grey`` and ``cfp_green_inverted``;
* ``report+image``, ``image`` and ``report (image model)`` from ``--image-model``, and
  ``report (report-only model)`` from ``--report-model``; ``--condition NAME`` (repeatable) generates and scores
  only those model conditions.

Seeds are the eye's row number in the manifest, the same for every condition. Columns: PSNR / SSIM in the
field of view, vessel retention and visibility (mean with a bootstrap 95 % interval over eyes), findings
micro-F1 from ``--encoder`` (bootstrap interval over eyes), the four physiology checks in the eye's masks and
"all": the share of videos passing every check that applies to them (exact binomial 95 % interval; a check
that does not apply to an eye is not counted).

``--refiner`` adds, for the photograph conditions and the VAE control, the same videos passed through a
photograph-guided refiner (:mod:`ffasora.models.refiner`) with the eye's photograph: exactly what a pipeline
variant with that refiner returns (its decoder's video, refined). Generated videos are stored unrefined.

``--generated-dir`` keeps each generated video as ``<dir>/<condition>/<id>.npz`` (frames, generation seconds
and the report it was made from) beside a ``condition.json`` naming the model and settings; a rerun reuses what
is there (a video made from another report of the eye is refused) and loads a model only for videos still
missing, so a rerun without ``--image-model`` / ``--report-model`` rescores the
stored videos. Prints two markdown tables and writes every row and the summary to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from ffasora.data.format import VideoRecord, read_manifest
from ffasora.evaluate.photo import (
    PairedEye,
    condition_videos,
    findings_f1,
    paired_eyes,
    score_conditions,
    summarise,
)
from ffasora.evaluate.physiology import CHECKS

# condition -> (folder under --generated-dir, which model, with the report, with the photograph)
GENERATED = {
    "report+image": ("report_image", "image", True, True),
    "image": ("image", "image", False, True),
    "report (image model)": ("report_image_model", "image", True, False),
    "report (report-only model)": ("report_report_model", "report", True, False),
}
LABELS = {
    "reference": "reference: the true video (control)",
    "time_reversed": "true video time-reversed (control)",
    "other_anatomy": "another eye's true video (control)",
    "reference_vae": "the true video through the VAE (control)",
    "cfp_grey": "copy the CFP grey into every frame",
    "cfp_green_inverted": "CFP inverted green channel",
    "report+image": "image model, photograph + report",
    "image": "image model, photograph only",
    "report (image model)": "image model, report only",
    "report (report-only model)": "report-only model, report",
    "reference_vae + refiner": "the true video through the VAE, then the refiner (control)",
    "report+image + refiner": "image model + refiner, photograph + report",
    "image + refiner": "image model + refiner, photograph only",
}
CHECK_HEADERS = ("A before V", "leakage grows", "WD fades", "NPA dark")
REFINED = ("reference_vae", "report+image", "image")  # the conditions --refiner adds refined


class StoredGenerator:
    """``fn(record, photo) -> frames`` that reuses ``<folder>/<id>.npz`` and generates (loading the model on
    first need) only what is missing; records the generation seconds of every video, stored or new."""

    def __init__(
        self,
        name: str,
        folder: Path | None,
        model: Path | None,
        settings: dict[str, Any],
        seeds: dict[str, int],
        shapes: dict[str, tuple[int, ...]],
    ) -> None:
        self.name, self.folder, self.model, self.settings = name, folder, model, settings
        self.seeds, self.shapes = seeds, shapes
        self.pipe: Any = None
        self.seconds: list[float] = []
        if folder is not None:
            meta = folder / "condition.json"
            described = {"model": str(model.resolve()) if model is not None else None, **settings}
            if meta.is_file() and model is not None:
                stored = json.loads(meta.read_text())
                if stored != described:
                    raise SystemExit(
                        f"{meta}: videos made with {stored}, asked for {described}; use another --generated-dir"
                    )
            elif model is not None:
                folder.mkdir(parents=True, exist_ok=True)
                meta.write_text(json.dumps(described, indent=1))

    def __call__(self, record: VideoRecord, photo: np.ndarray) -> np.ndarray:
        path = self.folder / f"{record.id}.npz" if self.folder is not None else None
        if path is not None and path.is_file():
            with np.load(path) as stored:
                if "report" in stored.files and str(stored["report"]) != record.report:
                    raise SystemExit(
                        f"{path}: made from another report of {record.id}; use another --generated-dir"
                    )
                self.seconds.append(float(stored["seconds"]))
                return np.asarray(stored["frames"])
        if self.model is None:
            raise SystemExit(f"{self.name}: no stored video for {record.id} ({path}) and no model to make it")
        if self.pipe is None:
            from ffasora.pipeline import FFASoraPipeline

            self.pipe = FFASoraPipeline.from_pretrained(self.model)
        frames, height, width = self.shapes[record.id]
        started = time.perf_counter()
        video = self.pipe(
            record.report if self.settings["report"] else "",
            num_frames=frames,
            height=height,
            width=width,
            steps=self.settings["steps"],
            seed=self.seeds[record.id],
            image=photo if self.settings["image"] else None,
            refine=False,  # stored videos are the decoder's; --refiner scores the refined ones beside them
        ).frames
        self.seconds.append(time.perf_counter() - started)
        if path is not None:
            np.savez_compressed(path, frames=video, seconds=self.seconds[-1], report=record.report)
        return video


def refined_conditions(
    refiner_folder: Path, eyes: list[PairedEye], videos: dict[str, list[np.ndarray | None]]
) -> dict[str, list[np.ndarray | None]]:
    """``"<condition> + refiner"``: each photograph condition's videos (and the VAE control) through the refiner
    with the eye's photograph, as a pipeline with that refiner generates them."""
    from ffasora.models.refiner import PhotoRefiner
    from ffasora.pipeline import refine_video

    refiner = PhotoRefiner.from_pretrained(refiner_folder).eval()
    out: dict[str, list[np.ndarray | None]] = {}
    for name in REFINED:
        if name in videos:
            out[f"{name} + refiner"] = [
                None if v is None else refine_video(refiner, v, e.photo)
                for e, v in zip(eyes, videos[name], strict=True)
            ]
    return out


def encoder_scores(
    encoder: Path, eyes: list[PairedEye], videos: dict[str, list[np.ndarray | None]], rounds: int
) -> dict[str, dict[str, Any]]:
    """Findings micro-F1 of each condition's videos against the eyes' stated codes."""
    import torch

    from ffasora.evaluate.classifier import multi_hot
    from ffasora.evaluate.encoder import load_encoder, run_encoder
    from ffasora.evaluate.inputs import to_clip

    model, _ = load_encoder(encoder)
    config = model.config
    out = {}
    for name, per_eye in videos.items():
        kept = [(e, v) for e, v in zip(eyes, per_eye, strict=True) if v is not None]
        if not kept:
            continue
        clips = torch.stack([to_clip(v, config.frames, config.size) for _, v in kept])
        predicted = run_encoder(model, clips)["findings"] >= 0.5
        truth = multi_hot([e.record.codes for e, _ in kept], config.codes)
        out[name] = findings_f1(predicted, truth, config.codes, rounds=rounds)
    return out


def _interval(mean: float, ci: list[float] | None, digits: int) -> str:
    if not np.isfinite(mean):
        return "-"
    return f"{mean:.{digits}f} [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]" if ci else f"{mean:.{digits}f}"


def _rate(entry: dict[str, Any]) -> str:
    if not entry["n"]:
        return "n/a"
    low, high = entry["ci95"]
    return f"{entry['passed']}/{entry['n']} = {entry['pass_rate']:.2f} [{low:.2f}, {high:.2f}]"


def markdown_tables(
    summary: dict[str, dict[str, Any]], f1: dict[str, dict[str, Any]], seconds: dict[str, list[float]]
) -> str:
    """Two markdown tables, one row per condition: pixels, vessels, findings and CPU time; physiology."""
    lines = [
        "| condition | eyes | PSNR (dB) | SSIM | vessel retention | vessel visibility | findings micro-F1 "
        "| CPU s / video |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, entry in summary.items():
        psnr = "∞" if name == "reference" else _interval(entry["psnr"][0], entry["psnr_ci95"], 2)
        cells = [
            psnr,
            _interval(entry["ssim"][0], entry["ssim_ci95"], 3),
            _interval(entry["vessel_retention"][0], entry["vessel_retention_ci95"], 2),
            _interval(entry["vessel_visibility"][0], entry["vessel_visibility_ci95"], 3),
            _interval(f1[name]["f1"], f1[name]["f1_ci95"], 3) if name in f1 else "-",
            f"{np.median(seconds[name]):.1f}" if seconds.get(name) else "-",
        ]
        lines.append(f"| {LABELS.get(name, name)} | {entry['n']} | {' | '.join(cells)} |")
    lines += [
        "",
        f"| condition | {' | '.join(CHECK_HEADERS)} | all applicable checks | no check applies |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, entry in summary.items():
        physiology = entry["physiology"]
        cells = [_rate(physiology[c]) for c in (*CHECKS, "overall")]
        lines.append(f"| {LABELS.get(name, name)} | {' | '.join(cells)} | {physiology['no_check']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--image-model", type=Path, default=None, help="pipeline with an image condition")
    parser.add_argument(
        "--report-model", type=Path, default=None, help="report-only pipeline (e.g. pretrained)"
    )
    parser.add_argument("--encoder", type=Path, default=None, help="video encoder folder for findings F1")
    parser.add_argument(
        "--vae", type=Path, default=None, help="WF-VAE folder: add the true videos' round trip through it"
    )
    parser.add_argument(
        "--generated-dir", type=Path, default=None, help="store / reuse generated videos here"
    )
    parser.add_argument(
        "--refiner",
        type=Path,
        default=None,
        help="photograph-guided refiner folder: add every photograph condition (and the VAE control) refined",
    )
    parser.add_argument(
        "--condition",
        dest="conditions",
        action="append",
        choices=list(GENERATED),
        default=None,
        help="generate only this condition (repeatable; default: every one a model is given for)",
    )
    parser.add_argument("--split", default="test")
    parser.add_argument("--n", type=int, default=24)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    eyes = paired_eyes(args.dataset, args.split, args.n)
    seeds = {r.id: i for i, r in enumerate(read_manifest(args.dataset))}
    shapes = {e.record.id: e.frames.shape for e in eyes}
    models = {"image": args.image_model, "report": args.report_model}
    generators: dict[str, StoredGenerator] = {}
    for name, (slug, which, report, image) in GENERATED.items():
        if args.conditions is not None and name not in args.conditions:
            continue
        folder = args.generated_dir / slug if args.generated_dir is not None else None
        if models[which] is None and (folder is None or not folder.is_dir()):
            continue
        settings = {"steps": args.steps, "report": report, "image": image}
        generators[name] = StoredGenerator(name, folder, models[which], settings, seeds, shapes)
    if not generators:
        print("no model given and no stored videos: scoring the controls and baselines only", flush=True)

    def progress(done: int, total: int) -> None:
        print(f"{done}/{total} eyes", flush=True)

    vae = None
    if args.vae is not None:
        from ffasora.models.vae import WFVAE

        vae = WFVAE.from_pretrained(args.vae).eval()
    videos = condition_videos(eyes, generators, vae=vae, progress=progress)
    if args.refiner is not None:
        videos |= refined_conditions(args.refiner, eyes, videos)
    rows = score_conditions(eyes, videos)
    summary = summarise(rows, rounds=args.rounds)
    f1 = encoder_scores(args.encoder, eyes, videos, args.rounds) if args.encoder is not None else {}
    seconds = {name: g.seconds for name, g in generators.items()}
    print(markdown_tables(summary, f1, seconds))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {"rows": rows, "summary": summary, "findings": f1, "seconds": seconds, "args": vars(args)}
    args.out.write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
