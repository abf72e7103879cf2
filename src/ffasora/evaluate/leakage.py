"""`ffasora evaluate privacy`: does a generated set leak its generator's training set? Copy detection, DCR and
membership inference (``memorisation.py``, ``membership.py``) on one protocol, beside two controls.

Inputs: videos generated from training reports and from held-out reports (each naming its source video),
the generator's training split (members, the copy gallery) and a held-out split (non-members, the copy
threshold's calibration set). The same numbers are computed for the generator under audit and for the
controls of ``membership.py`` asked for the same reports: the memoriser (must be caught) and fresh eyes
(must not be).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ffasora.evaluate import membership, memorisation, privacy
from ffasora.evaluate.encoder import load_encoder, run_encoder
from ffasora.evaluate.inputs import VideoItem, load_dataset_items, load_generated, pair_items, stack_clips

Stage = Callable[[str, int, int], None]
Embed = Callable[[Sequence[VideoItem]], np.ndarray]


@dataclass(frozen=True)
class LeakageConfig:
    members: str = "train"  # the generator's training split
    nonmembers: str = "test"  # a split it never saw
    fresh_pool: str = "val"  # real eyes for the fresh-eyes control (neither members nor non-members)
    fpr: float = 0.01
    neighbours: int = 3
    bootstrap_rounds: int = 1000
    dcr_rounds: int = 20
    frames: int = 21
    size: int = 128  # the vessel descriptor needs >= 128 px (privacy.py)
    controls: bool = True
    loss_attack_videos: int = 100  # per side, for the denoising-error attack (needs the generator's weights)
    seed: int = 0


def vessel_embedding(frames: int, size: int, chunk: int = 64) -> Embed:
    """The vessel-tree descriptor (``privacy.vessel_descriptor``), computed a chunk of videos at a time."""

    def embed(items: Sequence[VideoItem]) -> np.ndarray:
        rows = [
            privacy.vessel_descriptor(stack_clips(items[i : i + chunk], frames, size))
            for i in range(0, len(items), chunk)
        ]
        return np.concatenate(rows) if rows else np.zeros((0, (32 * 32)))

    return embed


def encoder_embedding(path: str | Path, chunk: int = 64) -> tuple[Embed, dict[str, Any]]:
    """The in-domain encoder's contrastive embedding (the one trained to recognise the same eye)."""
    model, raw = load_encoder(path)
    c = model.config

    def embed(items: Sequence[VideoItem]) -> np.ndarray:
        rows = [
            run_encoder(model, stack_clips(items[i : i + chunk], c.frames, c.size))["embedding"]
            for i in range(0, len(items), chunk)
        ]
        return np.concatenate(rows) if rows else np.zeros((0, c.feature_dim))

    return embed, {"path": str(Path(path).resolve()), "size": c.size, "trained_on": raw.get("trained_on")}


@dataclass
class Generated:
    """Generated videos of one generator, each with its source: ("member" | "nonmember", index in that split)."""

    name: str
    items: list[VideoItem]
    sources: list[tuple[str, int]]


def split_sources(
    generated: Sequence[VideoItem], members: Sequence[VideoItem], nonmembers: Sequence[VideoItem]
) -> list[tuple[str, int] | None]:
    """Per generated video, which split its report's real video is in and where (None: neither)."""
    in_members, in_nonmembers = pair_items(list(generated), members), pair_items(list(generated), nonmembers)
    return [
        ("member", m) if m is not None else ("nonmember", n) if n is not None else None
        for m, n in zip(in_members, in_nonmembers, strict=True)
    ]


def control_sets(
    audited: Generated,
    members: Sequence[VideoItem],
    nonmembers: Sequence[VideoItem],
    pool: Sequence[VideoItem],
    seed: int = 0,
) -> list[Generated]:
    """The memoriser (trained on ``members``) and fresh eyes (from ``pool``) asked for the audited set's
    reports, with its seeds."""
    gens: list[tuple[str, Callable[[str, Sequence[str], int], np.ndarray]]] = [
        ("memoriser (positive control)", membership.Memoriser(members, seed))
    ]
    if pool:
        gens.append(("fresh eyes (negative control)", membership.FreshEyes(pool)))
    out = []
    for name, generate in gens:
        items = []
        for g, (side, j) in zip(audited.items, audited.sources, strict=True):
            real = (members if side == "member" else nonmembers)[j]
            frames = generate(real.report, real.codes, int(g.seed or 0))
            items.append(VideoItem(g.name, frames, real.report, list(real.codes), source_id=real.name))
        out.append(Generated(name, items, list(audited.sources)))
    return out


def audit_one(
    gen: Generated,
    embed: Embed,
    gallery: np.ndarray,
    heldout: np.ndarray,
    cfg: LeakageConfig,
) -> dict[str, Any]:
    """Copy detection, DCR and both membership attacks of one generated set under one embedding."""
    emb = embed(gen.items)
    member_rows = [i for i, (side, _) in enumerate(gen.sources) if side == "member"]
    nonmember_rows = [i for i, (side, _) in enumerate(gen.sources) if side == "nonmember"]
    out: dict[str, Any] = {
        "n_generated": len(gen.items),
        "n_from_member_reports": len(member_rows),
        "n_from_nonmember_reports": len(nonmember_rows),
    }
    sources: list[int | None] = [j if side == "member" else None for side, j in gen.sources]
    out["copies"] = memorisation.copy_detection(
        gallery, emb, heldout, cfg.fpr, sources, cfg.neighbours, cfg.seed
    )
    # DCR against held-out videos whose reports did not prompt a generated video of this set
    used = {j for side, j in gen.sources if side == "nonmember"}
    fresh = (
        np.array([h for j, h in enumerate(heldout) if j not in used]) if len(used) < len(heldout) else heldout
    )
    out["dcr"] = memorisation.dcr(gallery, emb, fresh, cfg.dcr_rounds, cfg.seed)
    out["dcr"]["n_heldout"] = int(len(fresh))
    if member_rows and nonmember_rows:
        m_idx = [gen.sources[i][1] for i in member_rows]
        n_idx = [gen.sources[i][1] for i in nonmember_rows]
        out["membership"] = membership.membership_inference(
            gallery[m_idx],
            emb[member_rows],
            heldout[n_idx],
            emb[nonmember_rows],
            cfg.bootstrap_rounds,
            cfg.seed,
        )
    return out


def load_generated_sets(
    paths: Sequence[str | Path],
    members: Sequence[VideoItem],
    nonmembers: Sequence[VideoItem],
    stage: Stage | None,
) -> Generated:
    """Videos of every folder in ``paths`` (one generator), keeping those whose report comes from either split."""
    items: list[VideoItem] = []
    for path in paths:
        progress = (lambda done, total, p=path: stage(f"load {Path(p).name}", done, total)) if stage else None
        items.extend(load_generated(path, progress=progress))
    sources = split_sources(items, members, nonmembers)
    kept = [(g, s) for g, s in zip(items, sources, strict=True) if s is not None]
    if not kept:
        raise ValueError(
            f"none of the {len(items)} generated videos names a source video (source_id) or a report of the "
            "members or non-members split; generate them with scripts/bundled_model/generate_split.py"
        )
    name = " + ".join(Path(p).name for p in paths)
    return Generated(name, [g for g, _ in kept], [s for _, s in kept])


def leakage_audit(
    generated_paths: Sequence[str | Path],
    reference_root: str | Path,
    cfg: LeakageConfig = LeakageConfig(),
    encoder_path: str | Path | None = None,
    stage: Stage | None = None,
    generator_path: str | Path | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Results (JSON-ready) and what the report draws (frames of the nearest neighbours). With
    ``generator_path`` (the audited pipeline folder) the denoising-error attack runs as well."""

    def tick(name: str) -> Callable[[int, int], None] | None:
        return (lambda done, total: stage(name, done, total)) if stage else None

    members = load_dataset_items(reference_root, cfg.members, None, tick(f"load {cfg.members} (members)"))
    nonmembers = load_dataset_items(reference_root, cfg.nonmembers, None, tick(f"load {cfg.nonmembers}"))
    audited = load_generated_sets(generated_paths, members, nonmembers, stage)
    sets = [audited]
    if cfg.controls:
        try:
            pool = load_dataset_items(reference_root, cfg.fresh_pool, None, tick(f"load {cfg.fresh_pool}"))
        except ValueError:
            pool = []
        sets += control_sets(audited, members, nonmembers, pool, cfg.seed)
    embeddings: list[tuple[str, Embed]] = [
        ("vessel-tree descriptor (Sato vesselness, 32x32, cosine)", vessel_embedding(cfg.frames, cfg.size))
    ]
    encoder_info = None
    if encoder_path is not None:
        embed, encoder_info = encoder_embedding(encoder_path)
        embeddings.append(("in-domain encoder (contrastive embedding, cosine)", embed))
    results: dict[str, Any] = {"generators": [s.name for s in sets], "embeddings": {}}
    for e, (label, embed) in enumerate(embeddings):
        if stage:
            stage("embed and audit", e, len(embeddings))
        gallery, heldout = embed(members), embed(nonmembers)
        results["embeddings"][label] = {s.name: audit_one(s, embed, gallery, heldout, cfg) for s in sets}
    if stage:
        stage("embed and audit", len(embeddings), len(embeddings))
    if generator_path is not None:
        results["loss_attack"] = loss_attack(generator_path, members, nonmembers, cfg, stage)
    results["protocol"] = {
        "config": asdict(cfg),
        "reference": str(Path(reference_root).resolve()),
        "generated": [str(Path(p).resolve()) for p in generated_paths],
        "n_members": len(members),
        "n_nonmembers": len(nonmembers),
        "encoder": encoder_info,
    }
    pictures = {
        "members": members,
        "sets": {s.name: s for s in sets},
    }
    return results, pictures


def loss_attack(
    generator_path: str | Path,
    members: Sequence[VideoItem],
    nonmembers: Sequence[VideoItem],
    cfg: LeakageConfig,
    stage: Stage | None = None,
) -> dict[str, Any]:
    """The denoising-error attack (``membership.denoising_errors``) on ``cfg.loss_attack_videos`` random
    members and as many non-members: AUC of minus the error, with its CI."""
    from ffasora.pipeline import FFASoraPipeline

    pipe = FFASoraPipeline.from_pretrained(generator_path)
    rng = np.random.default_rng(cfg.seed)
    n = min(cfg.loss_attack_videos, len(members), len(nonmembers))
    picked = {
        side: [items[int(i)] for i in sorted(rng.choice(len(items), n, replace=False))]
        for side, items in (("members", members), ("nonmembers", nonmembers))
    }
    errors = {}
    for side, items in picked.items():
        progress = (
            (lambda done, total, s=side: stage(f"denoising error: {s}", done, total)) if stage else None
        )
        errors[side] = membership.denoising_errors(pipe, items, seed=cfg.seed, progress=progress)
    summary = membership.attack_summary(
        -errors["members"], -errors["nonmembers"], cfg.bootstrap_rounds, cfg.seed
    )
    return {
        **summary,
        "generator": str(Path(generator_path).resolve()),
        "times": list(membership.FLOW_TIMES),
        "median_error": {side: float(np.median(e)) for side, e in errors.items()},
        "scores": {side: (-e).tolist() for side, e in errors.items()},
    }
