"""The latent cache: a dataset encoded once by a WF-VAE and a text encoder, so DiT training never runs either.

Layout of a cache folder::

    CACHE/
      cache.json              format version, the dataset it came from, frames/size, the VAE and text encoder
                              (paths and weight hashes), latent shape, per-split counts, ``complete``
      manifest.jsonl          one record per video: id, split, report, the text fed to the encoder, file
      latents/<id>.safetensors
                              ``mean``, ``std``  (c, t, h, w) float32: the posterior in DiT units
                              ``text``           (L, D) float32 token states of the report
                              ``text_mask``      (L,) uint8, 1 = real token
                              ``image``          (3c, 1, h, w) float32, when the video has a paired colour
                                                 photograph: its image condition (models.image_condition)
      empty.safetensors       ``text``/``text_mask`` of the empty report (classifier-free-guidance dropout)

DiT units: the WF-VAE posterior N(mu, sigma^2) pushed through the per-channel normalisation the DiT sees,
``z' = (z - shift) * scale`` (Open-Sora Plan convention, :meth:`WFVAE.normalize_latents`), i.e.
``mean = (mu - shift) * scale`` and ``std = sigma * |scale|``; a training sample is ``mean + std * eps``,
exactly the normalised posterior sample. Storing the posterior instead of one sample keeps the VAE's
sampling noise as data augmentation (Open-Sora Plan samples the posterior at every step).

Encoding is resumable: a video whose file exists and whose record is in the manifest is skipped; a cache
written with another VAE, text encoder, dataset or frame/size setting is refused rather than mixed.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ffasora.data.dataset import FFADataset
from ffasora.data.format import load_image
from ffasora.models.image_condition import encode_photo, image_condition_channels
from ffasora.models.pretrained import weights_sha256
from ffasora.models.text import TextEncoder
from ffasora.models.vae import WFVAE

CACHE_VERSION = 1
CACHE_INFO = "cache.json"
CACHE_MANIFEST = "manifest.jsonl"
EMPTY_FILE = "empty.safetensors"

LatentProgress = Callable[[int, int], None]
"""``progress(done, total)`` after each video (skipped ones included)."""


@dataclass(frozen=True)
class CacheRecord:
    """One line of ``manifest.jsonl``."""

    id: str
    split: str
    report: str
    encoded_text: str  # the report after ``preprocess`` (what the text encoder saw)
    file: str  # relative to the cache folder

    def to_json(self) -> str:
        return json.dumps(self.__dict__, ensure_ascii=False)


def encoder_identity(encoder: TextEncoder) -> dict[str, Any]:
    """Name, width and (for Hugging Face encoders) weight hash of a text encoder."""
    model = getattr(encoder, "model", None)
    return {
        "name": str(getattr(encoder, "name", type(encoder).__name__)),
        "dim": int(encoder.dim),
        "max_tokens": int(encoder.max_tokens),
        "hash": weights_sha256(model) if isinstance(model, torch.nn.Module) else None,
    }


def read_cache_info(root: str | Path) -> dict[str, Any]:
    path = Path(root) / CACHE_INFO
    if not path.is_file():
        raise ValueError(f"{root}: no {CACHE_INFO}; expected a latent cache made by `ffasora latents`")
    info = json.loads(path.read_text())
    if info.get("format_version") != CACHE_VERSION:
        raise ValueError(f"{path}: format_version {info.get('format_version')!r}, expected {CACHE_VERSION}")
    return info


def read_cache_manifest(root: str | Path) -> list[CacheRecord]:
    path = Path(root) / CACHE_MANIFEST
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                records.append(CacheRecord(**json.loads(line)))
            except (json.JSONDecodeError, TypeError):
                break  # a torn last line of an interrupted run: everything after it is re-encoded
    return records


def _atomic_save(tensors: dict[str, torch.Tensor], path: Path) -> None:
    tmp = path.with_name("." + path.name + ".tmp")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp))
    os.replace(tmp, path)


def _write_info(root: Path, info: dict[str, Any]) -> None:
    tmp = root / ("." + CACHE_INFO + ".tmp")
    tmp.write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    os.replace(tmp, root / CACHE_INFO)


def _identity(
    dataset: Path,
    vae: WFVAE,
    vae_path: str | None,
    encoder: TextEncoder,
    frames: int | None,
    size: int | None,
) -> dict[str, Any]:
    """The settings a cache is tied to; a resumed cache must match them exactly."""
    return {
        "dataset": str(dataset.resolve()),
        "frames": frames,
        "size": size,
        "vae": {
            "path": vae_path,
            "hash": weights_sha256(vae),
            "latent_dim": vae.config.latent_dim,
            "scale": list(vae.config.scale),
            "shift": list(vae.config.shift),
        },
        "text_encoder": encoder_identity(encoder),
    }


@torch.no_grad()
def encode_text(
    encoder: TextEncoder, reports: Sequence[str], preprocess: Callable[[str], str] | None = None
) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """Per report: (the text encoded, states (L_i, D) float32, mask (L_i,) uint8), padding removed."""
    texts = [preprocess(r) if preprocess else r for r in reports]
    states, mask = encoder.encode(texts)
    out = []
    for i, text in enumerate(texts):
        n = int(mask[i].sum())
        out.append((text, states[i, :n].float().cpu(), mask[i, :n].to(torch.uint8).cpu()))
    return out


@torch.no_grad()
def encode_dataset(
    dataset: str | Path,
    out: str | Path,
    vae: WFVAE,
    text_encoder: TextEncoder,
    *,
    splits: Iterable[str] = ("train",),
    frames: int | None = None,
    size: int | None = None,
    vae_path: str | Path | None = None,
    text_encoder_spec: dict[str, Any] | None = None,
    preprocess: Callable[[str], str] | None = None,
    chunk: int | None = None,
    progress: LatentProgress | None = None,
) -> dict[str, Any]:
    """Encode the videos and reports of ``splits`` of the FFA dataset folder ``dataset`` into ``out``.

    ``frames``/``size`` resample the videos as :class:`FFADataset` does (None: as stored). ``vae_path`` and
    ``text_encoder_spec`` (a pipeline ``text_encoder`` entry, e.g. ``{"type": "default"}``) are recorded so
    a pipeline can be assembled later from the cache alone. ``preprocess`` maps each report before the text
    encoder (the pipeline's text path: ``ffasora.pipeline.TextPath.text``). ``chunk`` is the VAE's temporal
    encode chunk (frames). Returns the written ``cache.json`` content.
    """
    root, dataset = Path(out), Path(dataset)
    splits = tuple(splits)
    identity = _identity(
        dataset, vae, None if vae_path is None else str(vae_path), text_encoder, frames, size
    )
    identity["text_encoder"]["spec"] = text_encoder_spec
    root.mkdir(parents=True, exist_ok=True)
    (root / "latents").mkdir(exist_ok=True)
    old: dict[str, Any] = {}
    if (root / CACHE_INFO).is_file():
        old = read_cache_info(root)
        if {k: old.get(k) for k in identity} != identity:
            raise ValueError(
                f"{root} holds a latent cache made with other settings (dataset, frames, size, VAE or text "
                f"encoder differ); choose another --out or delete it"
            )
    done = {r.id: r for r in read_cache_manifest(root) if (root / r.file).is_file()}
    manifest = root / CACHE_MANIFEST
    manifest.write_text("".join(r.to_json() + "\n" for r in done.values()), encoding="utf-8")
    info = {"format_version": CACHE_VERSION, **identity, "complete": False, "splits": list(splits)}
    _write_info(root, info)

    empty = encode_text(text_encoder, [""])[0]
    _atomic_save({"text": empty[1], "text_mask": empty[2]}, root / EMPTY_FILE)
    parts = [FFADataset(dataset, split=s, frames=frames, size=size, channels=1) for s in splits]
    total, count, latent_shape = sum(len(p) for p in parts), 0, old.get("latent_shape")
    device = next(vae.parameters()).device
    with manifest.open("a", encoding="utf-8") as lines:
        for split, part in zip(splits, parts, strict=True):
            for index, record in enumerate(part.records):
                count += 1
                if record.id in done:
                    if progress is not None:
                        progress(count, total)
                    continue
                video = part[index]["video"][None].to(device)  # (1, 1, T, H, W) in [-1, 1]
                posterior = vae.encode(video, chunk=chunk)
                mean = vae.normalize_latents(posterior.mean)[0].float().cpu()
                # the normalisation is affine per channel, so a std scales by |scale| only
                unit = vae.normalize_latents(torch.ones_like(posterior.std)) - vae.normalize_latents(
                    torch.zeros_like(posterior.std)
                )
                std = (posterior.std * unit.abs())[0].float().cpu()
                text, states, mask = encode_text(text_encoder, [record.report], preprocess)[0]
                file = f"latents/{record.id}.safetensors"
                tensors = {"mean": mean, "std": std, "text": states, "text_mask": mask}
                if record.image is not None:  # the paired photograph, at the video's (resampled) size
                    photo = load_image(dataset, record.id)
                    tensors["image"] = encode_photo(vae, photo, *video.shape[-2:])[0].cpu()
                _atomic_save(tensors, root / file)
                entry = CacheRecord(record.id, split, record.report, text, file)
                lines.write(entry.to_json() + "\n")
                lines.flush()
                latent_shape = list(mean.shape)
                if progress is not None:
                    progress(count, total)
    records = read_cache_manifest(root)
    if any(r.image is not None for part in parts for r in part.records):
        info["image_channels"] = image_condition_channels(vae.config.latent_dim)
    info |= {
        "complete": True,
        "latent_shape": latent_shape,
        "counts": {s: sum(r.split == s for r in records) for s in splits},
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    _write_info(root, info)
    return info


def load_cached(root: str | Path, record: CacheRecord) -> dict[str, torch.Tensor]:
    """The tensors of one cached video (see the module docstring for names and shapes)."""
    return load_file(str(Path(root) / record.file))


def load_empty_text(root: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """States (L, D) and mask (L,) bool of the empty report."""
    tensors = load_file(str(Path(root) / EMPTY_FILE))
    return tensors["text"], tensors["text_mask"].bool()
