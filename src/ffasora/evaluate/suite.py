"""`ffasora evaluate`: every number for a set of generated videos against a reference dataset, plus the
protocol that produced it. Library entry point ``evaluate_videos``; ``report.write_report`` renders it.

Stages: load -> in-domain features and findings (encoder) -> distribution (FVD-FFA, KVD, bootstrap CIs,
real-vs-real floor; standard FVD with a user I3D) -> paired (PSNR/SSIM/MS-SSIM, LPIPS with user weights) ->
alignment (VQAScore-style, finding P/R/F1, onset phase, BERTScore; real-video ceilings) -> physiology
(simulated references) -> vessel visibility (against the real videos' spread) -> privacy (Recall@K vs chance, held-out floor, positive control, nearest-neighbour
similarity).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from ffasora.data.format import load_truth, read_manifest
from ffasora.evaluate import alignment, classifier, own_anatomy, physiology, privacy, vessels
from ffasora.evaluate.distribution import bootstrap, frechet_distance, kernel_distance, real_vs_real_floor
from ffasora.evaluate.encoder import VideoEncoder, load_encoder, run_encoder, weights_hash
from ffasora.evaluate.features import item_onsets
from ffasora.evaluate.inputs import (
    VideoItem,
    fill_labels,
    load_dataset_items,
    load_generated,
    pair_items,
    report_parser,
    stack_clips,
    to_clip,
)
from ffasora.evaluate.paired import video_metrics

Stage = Callable[[str, int, int], None]


@dataclass(frozen=True)
class EvaluateConfig:
    """What to compute; every field is written to the report's protocol section."""

    split: str = "test"
    generated_split: str | None = None  # split of a dataset given as --generated (default: ``split``)
    limit: int | None = None
    bootstrap_rounds: int = 200
    floor_rounds: int = 10
    seed: int = 0
    threshold: float = 0.5
    bert_model: str | None = None  # default: the bundled all-MiniLM-L6-v2
    bert_layers: int | None = None
    bertscore: bool = True
    i3d_weights: str | None = None
    i3d_frames: int = 16
    lpips_trunk: str | None = None
    lpips_heads: str | None = None
    lpips_net: str = "alex"
    gallery_limit: int | None = None
    control_size: int = 50
    examples: int = 4


@dataclass
class Example:
    """A generated video (and its paired reference) for the report's contact sheets; frames (T, H, W) uint8."""

    name: str
    report: str
    generated: np.ndarray
    reference: np.ndarray | None


@dataclass
class Evaluation:
    results: dict[str, Any]
    examples: list[Example]


def describe(x: np.ndarray | list[float]) -> dict[str, float]:
    """Mean, SD and count of the finite values (PSNR of identical videos is infinite: counted apart)."""
    a = np.asarray(x, dtype=np.float64)
    out: dict[str, float] = {"n_infinite": int(np.isinf(a).sum())} if np.isinf(a).any() else {}
    a = a[np.isfinite(a)]
    if not len(a):
        return {"n": 0, **out}
    return {
        "mean": float(a.mean()),
        "sd": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
        "n": int(len(a)),
        **out,
    }


def _estimate(est: Any) -> dict[str, Any]:
    return {k: v for k, v in asdict(est).items() if v is not None}


def distribution_metrics(
    gen: np.ndarray, ref: np.ndarray, cfg: EvaluateConfig, pool: np.ndarray | None = None
) -> dict[str, Any]:
    """Fréchet and kernel distances with bootstrap CIs, and the real-vs-real floor at the same sample sizes.

    ``pool`` holds features of other real videos (the training split): the floor then scores as many of them
    as there are generated videos against the same reference set. Without enough pool, disjoint halves of
    the reference are used and the floor is labelled with its (smaller) sample sizes.
    """
    out: dict[str, Any] = {
        "frechet": _estimate(bootstrap(frechet_distance, gen, ref, cfg.bootstrap_rounds, seed=cfg.seed)),
        "kernel": _estimate(bootstrap(kernel_distance, gen, ref, cfg.bootstrap_rounds, seed=cfg.seed)),
    }
    use_pool = pool is not None and len(pool) >= len(gen) >= 2
    half = min(len(gen), len(ref) // 2)
    if use_pool or half >= 2:
        for name, metric in (("frechet", frechet_distance), ("kernel", kernel_distance)):
            if use_pool:
                floor = real_vs_real_floor(ref, len(gen), metric, cfg.floor_rounds, cfg.seed, pool=pool)
            else:
                floor = real_vs_real_floor(ref, half, metric, cfg.floor_rounds, cfg.seed)
            out[f"{name}_floor"] = {
                **_estimate(floor),
                "method": "train-split pool" if use_pool else "reference halves",
            }
    return out


def paired_metrics(
    generated: list[VideoItem], reference: list[VideoItem], pairs: list[int | None], frames: int, size: int
) -> tuple[dict[str, Any], list[dict[str, float]]]:
    """Per-frame PSNR / SSIM / MS-SSIM of each paired video on a common (frames, size) grid, averaged."""
    per_video = []
    for g, j in zip(generated, pairs, strict=True):
        if j is None:
            continue
        a = ((to_clip(g.frames, frames, size)[0] + 1) * 127.5).numpy()
        b = ((to_clip(reference[j].frames, frames, size)[0] + 1) * 127.5).numpy()
        per_video.append({k: float(np.mean(v)) for k, v in video_metrics(a, b).items()})
    summary = {k: describe([v[k] for v in per_video]) for k in ("psnr", "ssim", "ms_ssim")}
    return summary, per_video


def alignment_metrics(
    items: list[VideoItem],
    out: dict[str, np.ndarray],
    model: VideoEncoder,
    cfg: EvaluateConfig,
    scorer: Any,
    onsets: list[dict[str, str]],
) -> dict[str, Any]:
    """VQAScore-style score, finding P/R/F1, onset-phase accuracy and BERTScore of one set of videos against
    their own reports (``onsets``: per video, code -> onset phase from the simulated truth, or {})."""
    names = model.config.codes
    vqa = alignment.vqa_style_scores(
        out["findings"], [i.codes for i in items], [i.negated for i in items], names
    )
    predicted = out["findings"] >= cfg.threshold
    truth = classifier.multi_hot([i.codes for i in items], names)
    result: dict[str, Any] = {
        "vqa_style": describe(vqa),
        "findings": classifier.finding_scores(predicted, truth, names),
        "onset_accuracy": classifier.onset_accuracy(out["onset"], onsets, names, model.config.phases),
    }
    if scorer is not None:
        decoded = [[names[int(k)] for k in np.flatnonzero(row)] for row in predicted]
        written = [
            alignment.report_from_codes(codes, str(i.meta.get("eye", "OD")))
            for codes, i in zip(decoded, items, strict=True)
        ]
        result["bertscore"] = {
            "label": scorer.label,
            **{k: describe(v) for k, v in scorer.score(written, [i.report for i in items]).items()},
        }
    return result


Truth = tuple[dict[str, np.ndarray], np.ndarray | None]  # masks, frame times of a simulated case


def _paired_truth(
    reference_root: Path, reference: list[VideoItem], pairs: list[int | None]
) -> dict[int, Truth]:
    """Masks and frame times of each reference that some generated video is paired with (simulated only)."""
    manifest_times = {r.id: r.frame_times_s for r in read_manifest(reference_root)}
    truth: dict[int, Truth] = {}
    for j in sorted({j for j in pairs if j is not None}):
        try:
            masks, _ = load_truth(reference_root, reference[j].name)
        except ValueError:
            continue
        times = manifest_times.get(reference[j].name)
        truth[j] = (masks, np.asarray(times, dtype=np.float64) if times else None)
    return truth


def _clock(times: np.ndarray | None, n: int) -> np.ndarray | None:
    """The reference clock stretched over ``n`` frames."""
    if times is None:
        return None
    return np.interp(np.linspace(0, 1, n), np.linspace(0, 1, len(times)), times)


def physiology_metrics(
    generated: list[VideoItem], reference_root: Path, reference: list[VideoItem], pairs: list[int | None]
) -> dict[str, Any] | None:
    """Pass rates of the four physiology checks on generated videos with a simulated, paired reference, and the
    same checks on three controls built from the paired references: the reference itself (what a video that
    obeys physiology scores), the reference played backwards (kinetics broken), and the next reference's video
    judged in this case's masks ("other anatomy": what a video with the right physiology but its own vessels
    and lesion positions scores, i.e. the level a free-running generator reaches by chance placement).
    ``own_anatomy``: the checks in regions found in each video itself, for its report's signs
    (:mod:`ffasora.evaluate.own_anatomy`), with the reference and time-reversed controls."""
    truth = _paired_truth(reference_root, reference, pairs)
    paired = [(g, truth[j]) for g, j in zip(generated, pairs, strict=True) if j is not None and j in truth]
    if not paired:
        return None
    cases = [(reference[j], *truth[j]) for j in sorted(truth)]
    others = [item for item, _, _ in cases[1:] + cases[:1]]
    check, own = physiology.physiology_checks, own_anatomy.own_anatomy_checks
    rates = physiology.pass_rates
    controls = {
        "reference": rates([check(r.frames, t, m) for r, m, t in cases]),
        "time_reversed": rates([check(r.frames[::-1].copy(), t, m) for r, m, t in cases]),
    }
    if len(cases) > 1:
        controls["other_anatomy"] = rates(
            [
                check(o.frames, t, m)
                for (r, m, t), o in zip(cases, others, strict=True)
                if o.frames.shape == r.frames.shape
            ]
        )
    return {
        "n_videos": len(paired),
        "checks": rates([check(g.frames, _clock(t, len(g.frames)), m) for g, (m, t) in paired]),
        "controls": controls,
        "own_anatomy": {
            "checks": rates([own(g.frames, _clock(t, len(g.frames)), g.codes) for g, (_, t) in paired]),
            "controls": {
                "reference": rates([own(r.frames, t, r.codes) for r, _, t in cases]),
                "time_reversed": rates([own(r.frames[::-1].copy(), t, r.codes) for r, _, t in cases]),
            },
        },
    }


def vessel_metrics(
    generated: list[VideoItem], reference: list[VideoItem], controls: int = 50
) -> dict[str, Any]:
    """Vessel visibility (``vessels.vessel_visibility``) of each generated video against the real videos'
    spread, with what the same test says of the references themselves and of Gaussian-blurred copies of them
    (1 and 2 px at 128 px, scaled with the frame): the level at which the measure stops seeing vessels."""
    gen = [vessels.vessel_visibility(g.frames) for g in generated]
    ref = [vessels.vessel_visibility(r.frames) for r in reference]
    blurred: dict[str, float] = {}
    for sigma in (1.0, 2.0):
        values = []
        for r in reference[:controls]:
            s = sigma * r.frames.shape[-1] / 128.0
            values.append(
                vessels.vessel_visibility(ndimage.gaussian_filter(r.frames.astype(np.float32), (0, s, s)))
            )
        blurred[f"blur_{sigma:g}px"] = vessels.within_range(values, ref)
    finite = [x for x in ref if np.isfinite(x)]
    return {
        "visibility": describe(gen),
        "reference_visibility": describe(ref),
        "reference_range_10_90": [float(v) for v in np.percentile(finite, [10, 90])] if finite else None,
        "inside_reference_range": vessels.within_range(gen, ref),
        "controls": {"reference": vessels.within_range(ref, ref), **blurred},
    }


PRIVACY_SIZE = 128


def privacy_metrics(
    model: VideoEncoder,
    generated: list[VideoItem],
    reference: list[VideoItem],
    train: list[VideoItem],
    cfg: EvaluateConfig,
) -> dict[str, Any]:
    """The privacy audit against the training gallery (see ``privacy.py``)."""
    # The audit looks at anatomy, not findings: the vessel-tree descriptor at >= 128 px (see privacy.py).
    size = max(PRIVACY_SIZE, model.config.size)
    frames = model.config.frames
    train_clips = stack_clips(train, frames, size)
    gallery = privacy.vessel_descriptor(train_clips)
    control = privacy.vessel_descriptor(privacy.lightly_altered(train_clips[: cfg.control_size], cfg.seed))
    gen_emb = privacy.vessel_descriptor(stack_clips(generated, frames, size))
    ref_emb = privacy.vessel_descriptor(stack_clips(reference, frames, size))
    # A generated video's target is its source training video (same report); a video made from a report the
    # training set lacks is scored against the training video whose findings are most alike, as held-out
    # real videos are, so the two recalls compare like with like.
    sources = pair_items(generated, train)
    alike: Any = privacy.most_alike([g.codes for g in generated], [t.codes for t in train]) if train else []
    targets = [s if s is not None else int(alike[i]) for i, s in enumerate(sources)]
    heldout_ok = cfg.split != "train"
    result = privacy.privacy_audit(
        gallery,
        gen_emb,
        targets,
        ref_emb if heldout_ok else np.zeros((0, gallery.shape[1])),
        privacy.most_alike([r.codes for r in reference], [t.codes for t in train]) if heldout_ok else [],
        control,
    )
    result["embedding"] = (
        "vessel-tree descriptor (Sato vesselness of the filled-vessel frames, 32x32, cosine)"
    )
    result["targets"] = {
        "source_report": int(sum(s is not None for s in sources)),
        "most_alike_findings": int(sum(s is None for s in sources)),
    }
    return result


def _load(
    generated_path: str | Path, reference_root: Path, cfg: EvaluateConfig, tick: Callable[[str], Any]
) -> tuple[list[VideoItem], list[VideoItem], list[int | None]]:
    generated = load_generated(
        generated_path, cfg.generated_split or cfg.split, cfg.limit, tick("load generated")
    )
    reference = load_dataset_items(reference_root, cfg.split, None, tick("load reference"))
    fill_labels(generated, report_parser())
    pairs = pair_items(generated, reference)
    for g, j in zip(generated, pairs, strict=True):  # a paired reference knows the codes its report states
        if j is not None and not g.codes:
            g.codes, g.negated = list(reference[j].codes), list(reference[j].negated)
    return generated, reference, pairs


def evaluate_videos(
    generated_path: str | Path,
    reference_root: str | Path,
    encoder_path: str | Path,
    cfg: EvaluateConfig = EvaluateConfig(),
    stage: Stage | None = None,
) -> Evaluation:
    """All metrics of generated videos against ``reference_root``'s ``cfg.split``, and examples to show."""
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def step(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 2)
        clock = now

    def tick(name: str) -> Callable[[int, int], None] | None:
        return (lambda done, total: stage(name, done, total)) if stage else None

    reference_root = Path(reference_root)
    torch.manual_seed(cfg.seed)
    generated, reference, pairs = _load(generated_path, reference_root, cfg, tick)
    step("load")
    model, encoder_config = load_encoder(encoder_path)
    c = model.config
    gen_out = run_encoder(model, stack_clips(generated, c.frames, c.size))
    ref_out = run_encoder(model, stack_clips(reference, c.frames, c.size))
    train = load_dataset_items(reference_root, "train", cfg.gallery_limit, tick("load training gallery"))
    train_features = run_encoder(model, stack_clips(train, c.frames, c.size))["features"] if train else None
    step("features")
    fvd_ffa = distribution_metrics(gen_out["features"], ref_out["features"], cfg, pool=train_features)
    results: dict[str, Any] = {"distribution": {"fvd_ffa": fvd_ffa}}
    # the same distances on octave-band detail features: what blur removes (vessels.band_features)
    gen_bands, ref_bands = (
        np.stack([vessels.band_features(i.frames) for i in items]) for items in (generated, reference)
    )
    pool = np.stack([vessels.band_features(i.frames) for i in train]) if train else None
    results["distribution"]["fd_bands"] = distribution_metrics(gen_bands, ref_bands, cfg, pool=pool)
    if cfg.i3d_weights:
        from ffasora.evaluate.i3d import i3d_features, load_i3d

        i3d, i3d_info = load_i3d(cfg.i3d_weights)
        g3 = i3d_features(i3d, [g.frames for g in generated], cfg.i3d_frames, tick("I3D generated"))
        r3 = i3d_features(i3d, [r.frames for r in reference], cfg.i3d_frames, tick("I3D reference"))
        results["distribution"]["fvd_i3d"] = {**distribution_metrics(g3, r3, cfg), "extractor": i3d_info}
    step("distribution")
    paired_summary, _ = paired_metrics(generated, reference, pairs, c.frames, c.size)
    results["paired"] = {"n_pairs": sum(p is not None for p in pairs), **paired_summary}
    if cfg.lpips_trunk and cfg.lpips_heads:
        from ffasora.evaluate.lpips import load_lpips, paired_lpips

        net, lpips_info = load_lpips(cfg.lpips_trunk, cfg.lpips_heads, cfg.lpips_net)
        values = [
            paired_lpips(net, g.frames, reference[j].frames, c.frames, c.size)
            for g, j in zip(generated, pairs, strict=True)
            if j is not None
        ]
        results["paired"]["lpips"] = {**describe(values), **lpips_info}
    step("paired")
    scorer = alignment.BertScorer.load(cfg.bert_model, cfg.bert_layers) if cfg.bertscore else None
    ref_onsets = item_onsets(reference_root, reference)
    gen_onsets = [ref_onsets[j] if j is not None else {} for j in pairs]
    results["alignment"] = {
        "generated": alignment_metrics(generated, gen_out, model, cfg, scorer, gen_onsets),
        "real_ceiling": alignment_metrics(reference, ref_out, model, cfg, scorer, ref_onsets),
    }
    step("alignment")
    results["physiology"] = physiology_metrics(generated, reference_root, reference, pairs)
    step("physiology")
    results["vessels"] = vessel_metrics(generated, reference)
    step("vessels")
    results["privacy"] = privacy_metrics(model, generated, reference, train, cfg)
    step("privacy")
    results["protocol"] = {
        "generated": str(Path(generated_path).resolve()),
        "reference": str(reference_root.resolve()),
        "config": asdict(cfg),
        "n_generated": len(generated),
        "n_reference": len(reference),
        "n_train_gallery": len(train),
        "n_paired": sum(p is not None for p in pairs),
        "feature_extractor": {
            "name": "ffasora in-domain video encoder",
            "path": str(Path(encoder_path).resolve()),
            "frames": c.frames,
            "size": c.size,
            "feature_dim": c.feature_dim,
            "weights_sha256_16": weights_hash(model),
            "trained_on": encoder_config.get("trained_on"),
        },
        "bertscore_model": scorer.label if scorer else None,
        "seconds": timings,
    }
    examples = [
        Example(g.name, g.report, g.frames, reference[j].frames if j is not None else None)
        for g, j in list(zip(generated, pairs, strict=True))[: cfg.examples]
    ]
    results["examples"] = [
        {"name": e.name, "report": e.report, "paired": e.reference is not None} for e in examples
    ]
    return Evaluation(results, examples)
