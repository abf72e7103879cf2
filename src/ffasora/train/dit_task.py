"""``ffasora train dit``: the text-conditioned DiT on a latent cache (see :mod:`ffasora.train.latents`).

The VAE and the text encoder never run during training: every item is a cached posterior in DiT units and
the cached token states of its report. Each step draws a latent from the posterior, replaces the report by
the empty report with probability ``data.empty_report_dropout`` (10 %, as Open-Sora Plan; this trains the
unconditional branch that classifier-free guidance needs) and applies the diffusion recipe's training loss.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from ffasora.diffusion import DiffusionConfig, training_loss
from ffasora.models.dit import DiT, DiTConfig
from ffasora.models.lora import LoRAConfig, add_lora, save_adapter
from ffasora.train.config import TrainConfig
from ffasora.train.latents import (
    CacheRecord,
    load_cached,
    load_empty_text,
    read_cache_info,
    read_cache_manifest,
)
from ffasora.train.tasks import StepLosses, Task


@dataclass(frozen=True)
class DiTDataConfig:
    cache: str = ""  # latent cache folder written by `ffasora latents`
    empty_report_dropout: float = 0.1  # share of samples trained with the empty report (for CFG)
    # image-conditioned models: share of samples trained without their photograph, drawn independently of
    # the report dropout, so one model learns report-only, image-only and both (and the unconditional
    # branch, when both are dropped)
    image_dropout: float = 0.3
    sample_posterior: bool = True  # False: train on the posterior mean (deterministic targets)

    def __post_init__(self) -> None:
        if not 0.0 <= self.empty_report_dropout <= 1.0:
            raise ValueError(f"data.empty_report_dropout = {self.empty_report_dropout}; expected in [0, 1]")
        if not 0.0 <= self.image_dropout <= 1.0:
            raise ValueError(f"data.image_dropout = {self.image_dropout}; expected in [0, 1]")


@dataclass(frozen=True)
class DiTTaskConfig:
    """``[model]`` (DiTConfig), ``[data]``, ``[diffusion]`` and ``[train]`` of a DiT training preset.

    ``init``: an optional DiT folder (ours or the official layout) to fine-tune from, as FFA Sora fine-tuned
    Open-Sora Plan v1.3; its config must equal ``[model]``. ``[lora]`` with ``rank > 0`` trains low-rank
    adapters on the frozen ``init`` instead of every weight (:mod:`ffasora.models.lora`); the run then exports
    an adapter folder. Under ``train.parallel = "fsdp"`` the frozen base is sharded with the adapters.
    """

    model: DiTConfig = field(default_factory=DiTConfig)
    data: DiTDataConfig = field(default_factory=DiTDataConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    lora: LoRAConfig = field(default_factory=LoRAConfig)
    init: str = ""


class LatentCacheDataset(Dataset[dict[str, Any]]):
    """One split of a latent cache. Items: ``mean``/``std`` (c, t, h, w), ``text`` (L, D), ``text_mask`` (L,)
    bool, ``id``. Use :func:`collate_latents` to batch (text lengths differ)."""

    def __init__(self, root: str | Path, split: str = "train") -> None:
        self.root = Path(root)
        self.info = read_cache_info(self.root)
        if not self.info.get("complete"):
            raise ValueError(
                f"{self.root}: the latent cache is incomplete; run `ffasora latents` again to finish"
            )
        self.records: list[CacheRecord] = [r for r in read_cache_manifest(self.root) if r.split == split]
        if not self.records:
            raise ValueError(
                f"{self.root}: no cached videos of split {split!r} (has {self.info.get('counts')})"
            )
        self.empty_text, self.empty_mask = load_empty_text(self.root)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.records[index]
        tensors = load_cached(self.root, record)
        return {
            "mean": tensors["mean"],
            "std": tensors["std"],
            "text": tensors["text"],
            "text_mask": tensors["text_mask"].bool(),
            "id": record.id,
            "empty_text": self.empty_text,
            "empty_mask": self.empty_mask,
            **({"image": tensors["image"]} if "image" in tensors else {}),
        }


def pad_tokens(rows: list[torch.Tensor], length: int) -> torch.Tensor:
    """Stack (L_i, ...) tensors into (B, length, ...), zero-padded at the end."""
    out = rows[0].new_zeros((len(rows), length, *rows[0].shape[1:]))
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def collate_latents(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch: ``mean``/``std`` (B, c, t, h, w), ``text`` (B, L, D) and ``text_mask`` (B, L) padded to the
    longest report, ``empty_text`` (B, L, D) / ``empty_mask`` (B, L) the empty report padded alike, ``id``;
    when any item has a photograph, ``image`` (B, 3c, 1, h, w) (zeros where missing) and ``has_image`` (B,)."""
    length = max(max(len(i["text"]) for i in items), len(items[0]["empty_text"]))
    images: dict[str, torch.Tensor] = {}
    present = [i for i in items if "image" in i]
    if present:
        blank = torch.zeros_like(present[0]["image"])
        images["image"] = torch.stack([i.get("image", blank) for i in items])
        images["has_image"] = torch.tensor(["image" in i for i in items])
    return {
        **images,
        "mean": torch.stack([i["mean"] for i in items]),
        "std": torch.stack([i["std"] for i in items]),
        "text": pad_tokens([i["text"] for i in items], length),
        "text_mask": pad_tokens([i["text_mask"] for i in items], length),
        "empty_text": pad_tokens([i["empty_text"] for i in items], length),
        "empty_mask": pad_tokens([i["empty_mask"] for i in items], length),
        "id": [i["id"] for i in items],
    }


def base_dtype(cfg: DiTTaskConfig) -> torch.dtype:
    """The frozen base's dtype under LoRA: bf16 when asked, or under "auto" when training in bf16."""
    bf16 = cfg.lora.base_dtype == "bf16" or (cfg.lora.base_dtype == "auto" and cfg.train.precision == "bf16")
    return torch.bfloat16 if bf16 else torch.float32


def _rank_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class DiTTask(Task):
    """The DiT on a latent cache; the published model is the DiT folder (``config.json`` + safetensors)."""

    config_cls = DiTTaskConfig
    collate_fn = staticmethod(collate_latents)

    def __init__(self) -> None:
        self.cfg: DiTTaskConfig | None = None

    def build_models(self, cfg: DiTTaskConfig) -> dict[str, nn.Module]:
        self.cfg = cfg
        if cfg.lora.enabled and not cfg.init:
            raise ValueError("lora.rank > 0 adapts a trained DiT: set init to its folder (ours or official)")
        if cfg.init:
            model = DiT.from_pretrained(cfg.init, dtype=base_dtype(cfg) if cfg.lora.enabled else None)
            if model.config != cfg.model:
                raise ValueError(
                    f"init {cfg.init}: its DiT config differs from [model]; copy it into the preset"
                )
        else:
            model = DiT(cfg.model)
        if cfg.lora.enabled:
            add_lora(model, cfg.lora)
        return {"model": model}

    def frozen_from_init(self, cfg: DiTTaskConfig) -> bool:
        return cfg.lora.enabled

    def build_dataset(self, cfg: DiTTaskConfig, split: str) -> Dataset[Any]:
        if not cfg.data.cache:
            raise ValueError(
                "data.cache is empty; pass the folder written by `ffasora latents` (--set data.cache=DIR)"
            )
        dataset = LatentCacheDataset(cfg.data.cache, split)
        info = dataset.info
        if info["vae"]["latent_dim"] != cfg.model.in_channels:
            raise ValueError(
                f"{cfg.data.cache}: latents have {info['vae']['latent_dim']} channels, model.in_channels is "
                f"{cfg.model.in_channels}"
            )
        if cfg.model.image_channels and info.get("image_channels") != cfg.model.image_channels:
            raise ValueError(
                f"{cfg.data.cache}: image condition has {info.get('image_channels')} channels (none: the "
                f"dataset has no paired photographs), model.image_channels is {cfg.model.image_channels}"
            )
        if info["text_encoder"]["dim"] != cfg.model.text_dim:
            raise ValueError(
                f"{cfg.data.cache}: text states are {info['text_encoder']['dim']}-d, model.text_dim is "
                f"{cfg.model.text_dim}"
            )
        return dataset

    def tokens_per_sample(self, cfg: DiTTaskConfig) -> int | None:
        if not cfg.data.cache:
            return None
        shape = read_cache_info(cfg.data.cache).get("latent_shape")
        if not shape:
            return None
        p = cfg.model.patch_size
        return int(shape[1] * (shape[2] // p) * (shape[3] // p))

    def training_step(self, models: dict[str, nn.Module], batch: dict[str, Any], step: int) -> StepLosses:
        """The diffusion loss of one batch. Randomness (posterior sample, report dropout, noise, time) comes
        from the global RNG, which the engine seeds per rank and restores on resume."""
        if self.cfg is None:
            raise ValueError("DiTTask.training_step called before build_models")
        cfg = self.cfg
        model = models["model"]
        mean, std = batch["mean"], batch["std"]
        x0 = mean + std * torch.randn_like(std) if cfg.data.sample_posterior else mean  # (B, c, t, h, w)
        drop = torch.rand(x0.shape[0]) < cfg.data.empty_report_dropout  # (B,) on the CPU like the RNG
        drop = drop.to(x0.device)
        text = torch.where(drop[:, None, None], batch["empty_text"], batch["text"])  # (B, L, D)
        mask = torch.where(drop[:, None], batch["empty_mask"], batch["text_mask"])  # (B, L)

        cond: tuple[torch.Tensor, ...] = (text, mask)
        extra: dict[str, torch.Tensor] = {}
        if cfg.model.image_channels:  # drawn after the report dropout: runs without images keep their RNG
            keep = torch.rand(x0.shape[0]) >= cfg.data.image_dropout
            given = keep.to(x0.device) & batch["has_image"].to(x0.device)
            cond = (text, mask, batch["image"], given)
            extra["dropped_images"] = 1.0 - given.float().mean()

        def denoiser(x: torch.Tensor, t: torch.Tensor, cond: tuple[torch.Tensor, ...]) -> torch.Tensor:
            if len(cond) == 4:
                return model(x, t, cond[0], cond[1], image=cond[2], image_given=cond[3])
            return model(x, t, cond[0], cond[1])

        tokens = cfg.model.num_tokens(*x0.shape[2:])
        rank, world = _rank_world()
        loss = training_loss(
            cfg.diffusion, denoiser, x0, cond, num_tokens=tokens, rank=rank, world_size=world
        )
        return {"model": loss, "dropped_reports": drop.float().mean(), **extra}

    def export(self, model: nn.Module, cfg: DiTTaskConfig, out_dir: Path, dtype: torch.dtype) -> Path:
        """Write the DiT folder, plus ``training_source.json`` naming the latent cache's VAE and text encoder
        so ``ffasora pipeline assemble --dit OUT --cache CACHE`` (or ``--vae``) can build a pipeline."""
        if not isinstance(model, DiT):
            raise ValueError(f"expected a DiT to export, got {type(model).__name__}")
        if cfg.lora.enabled:  # the adapter alone (fp32, small); `ffasora lora merge` folds it into the base
            path = save_adapter(model, cfg.lora, out_dir, base=cfg.init)
        else:
            path = Path(model.save_pretrained(out_dir, dtype=dtype))
        source: dict[str, Any] = {"cache": cfg.data.cache, "diffusion": dataclasses.asdict(cfg.diffusion)}
        if cfg.data.cache and (Path(cfg.data.cache) / "cache.json").is_file():
            info = read_cache_info(cfg.data.cache)
            source |= {
                "vae": info["vae"],
                "text_encoder": info["text_encoder"],
                "latent_shape": info.get("latent_shape"),
            }
        (path / "training_source.json").write_text(json.dumps(source, indent=2, ensure_ascii=False) + "\n")
        return path
