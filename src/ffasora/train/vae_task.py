"""``ffasora train vae``: WF-VAE on FFA clips with the paper's objective (arXiv 2411.17459, Sec. 3.4).

Two optimizer groups: ``model`` (the VAE; L1 + KL + wavelet + LPIPS when a local trunk is given + the
adaptive-weighted hinge-GAN term) and ``disc`` (the 3D PatchGAN). As upstream, once ``loss.disc_start`` is
reached the two alternate: even steps update the VAE, odd steps the discriminator (``loss.alternate =
false`` updates both every step). Fine-tuning from released weights: ``init = "DIR"`` (our folder, a
diffusers folder, or ``config.json`` + ``.ckpt``); grey FFA clips are repeated to RGB for 3-channel models.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from ffasora.data.dataset import FFADataset
from ffasora.io import pixels
from ffasora.models.discriminator import PatchDiscriminator3D
from ffasora.models.vae import WFVAE, WFVAEConfig
from ffasora.models.vae_shapes import SPATIAL_COMPRESSION, frame_count_problem
from ffasora.train.config import TrainConfig
from ffasora.train.tasks import GroupSpec, Task
from ffasora.train.vae_losses import LPIPS, VAELossWeights, discriminator_loss, generator_loss


@dataclass(frozen=True)
class VAEDataConfig:
    root: str = ""  # FFA dataset folder (written by `ffasora simulate` or `ffasora prepare`)
    frames: int = 21  # 1 + 4k
    size: int = 128
    # Cheaper steps with the same statistics as whole clips (the VAE is convolutional and causal):
    window: bool = False  # `frames` consecutive stored frames from a random start (False: evenly spaced)
    crop: int = 0  # random square crop of this many pixels, a multiple of 8 (0: the whole frame)
    views: int = 8  # distinct random windows/crops per video (the data order stays exactly resumable)


@dataclass(frozen=True)
class VAELossConfig:
    kl_weight: float = 1e-6
    wavelet_weight: float = 0.1
    perceptual_weight: float = 1.0  # used only with lpips_trunk
    lpips_trunk: str = ""  # local torchvision alexnet/vgg16 state dict; never downloaded
    lpips_net: str = "alex"
    lpips_lin: str = ""  # optional LPIPS calibration file (lin{k}.model.1.weight)
    disc_weight: float = 0.5  # the paper's 1/2 in front of the adaptive weight
    disc_start: int = 0
    disc_width: int = 64
    disc_layers: int = 4
    alternate: bool = True  # upstream: generator on even steps, discriminator on odd steps


@dataclass(frozen=True)
class VAESheetConfig:
    every: int = 0  # steps between reconstruction sheets (0: none)
    dir: str = ""  # where to write them (e.g. the run folder's samples/)
    clips: int = 2


@dataclass(frozen=True)
class VAETaskConfig:
    """``[model]`` (WFVAEConfig), ``[data]``, ``[loss]``, ``[sheets]``, ``[train]``; ``init`` fine-tunes a folder.

    ``freeze_encoder`` trains the decoder alone: the latents, and so every latent cache and DiT made with the
    ``init`` VAE, stay valid, while reconstructions (and the decoding of generated latents) get better.
    """

    model: WFVAEConfig = field(default_factory=WFVAEConfig)
    data: VAEDataConfig = field(default_factory=VAEDataConfig)
    loss: VAELossConfig = field(default_factory=VAELossConfig)
    sheets: VAESheetConfig = field(default_factory=VAESheetConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    init: str = ""
    freeze_encoder: bool = False


class VAETask(Task):
    config_cls = VAETaskConfig
    collate_fn = staticmethod(FFADataset.collate)

    def __init__(self) -> None:
        self.cfg: VAETaskConfig | None = None
        self.lpips: LPIPS | None = None
        self._sheet_slot = -1  # index of the last `sheets.every` period that got a sheet

    def build_models(self, cfg: VAETaskConfig) -> dict[str, nn.Module]:
        self.cfg = cfg
        if cfg.init:
            model = WFVAE.from_pretrained(cfg.init)
            # Architecture must match; the released latent scale/shift are kept from the checkpoint.
            if replace(model.config, scale=(), shift=()) != replace(cfg.model, scale=(), shift=()):
                raise ValueError(
                    f"init {cfg.init}: its WF-VAE config differs from [model]; copy it into the preset"
                )
        else:
            model = WFVAE(cfg.model)
        model.train()
        if cfg.freeze_encoder:
            if not cfg.init:
                raise ValueError(
                    "freeze_encoder needs init=DIR: a frozen random encoder gives no latent space"
                )
            model.encoder.requires_grad_(False)  # the engine optimises only parameters that require grad
        disc = PatchDiscriminator3D(cfg.model.in_channels, cfg.loss.disc_width, cfg.loss.disc_layers)
        if cfg.loss.lpips_trunk:
            lin = cfg.loss.lpips_lin or None
            self.lpips = LPIPS(cfg.loss.lpips_trunk, cfg.loss.lpips_net, lin)
        return {"model": model, "disc": disc}

    def optimizer_groups(self, cfg: VAETaskConfig) -> dict[str, GroupSpec]:
        return {"model": GroupSpec(modules=("model",)), "disc": GroupSpec(modules=("disc",))}

    def build_dataset(self, cfg: VAETaskConfig, split: str) -> Dataset[Any]:
        if not cfg.data.root:
            raise ValueError("data.root is empty; pass an FFA dataset folder (--set data.root=DIR)")
        data = cfg.data
        if not data.window and not data.crop:
            return FFADataset(data.root, split, data.frames, data.size, cfg.model.in_channels)
        clips = FFADataset(data.root, split, None, data.size, cfg.model.in_channels)
        return RandomViews(clips, data.frames if data.window else None, data.crop, data.views)

    def _weights(self) -> VAELossWeights:
        assert self.cfg is not None
        loss = self.cfg.loss
        return VAELossWeights(
            loss.kl_weight, loss.wavelet_weight, loss.perceptual_weight, loss.disc_weight, loss.disc_start
        )

    def training_step(
        self, models: dict[str, nn.Module], batch: dict[str, Any], step: int
    ) -> Iterator[tuple[str, torch.Tensor]]:
        """Yields ``("model", L_G)`` on generator steps and ``("disc", L_D)`` on discriminator steps."""
        if self.cfg is None:
            raise ValueError("VAETask.training_step called before build_models")
        cfg, vae, disc = self.cfg, models["model"], models["disc"]
        x = batch["video"]  # (B, C, T, H, W) in [-1, 1]
        gan_on = step >= cfg.loss.disc_start and cfg.loss.disc_weight > 0
        disc_turn = gan_on and cfg.loss.alternate and step % 2 == 1
        if self.lpips is not None:
            self.lpips.to(x.device)
        recon_seen = None
        if not disc_turn:
            recon, posterior, coeffs = vae(x)
            last = _inner(vae).decoder.conv_out.weight
            total, logs = generator_loss(
                x, recon, posterior.kl(), coeffs, self._weights(), step,
                disc if gan_on else None, last, self.lpips,
            )  # fmt: skip
            self._maybe_sheet(x, recon, step)
            recon_seen = recon.detach()  # stays valid after the engine back-propagates and frees the graph
            yield "model", total
            for name, value in logs.items():
                yield name, torch.tensor(value)
        if gan_on and (disc_turn or not cfg.loss.alternate):
            if recon_seen is None:
                with torch.no_grad():
                    recon_seen = vae(x)[0]
            yield "disc", discriminator_loss(disc, x, recon_seen)

    def _maybe_sheet(self, x: torch.Tensor, recon: torch.Tensor, step: int) -> None:
        assert self.cfg is not None
        sheets = self.cfg.sheets
        # The first generator step of each period (with alternation, step `k * every` may be a D step).
        if not sheets.every or not sheets.dir or step // sheets.every <= self._sheet_slot:
            return
        self._sheet_slot = step // sheets.every
        if (
            torch.distributed.is_available()
            and torch.distributed.is_initialized()
            and torch.distributed.get_rank()
        ):
            return
        write_sheet(
            x[: sheets.clips], recon[: sheets.clips].detach(), Path(sheets.dir) / f"recon_{step:07d}.png"
        )

    def tokens_per_sample(self, cfg: VAETaskConfig) -> int | None:
        return None


class RandomViews(Dataset[dict[str, Any]]):
    """``views`` random sub-clips of every clip: ``frames`` consecutive frames and/or a ``crop`` x ``crop`` square.

    Item ``i`` is view ``i // len(clips)`` of clip ``i % len(clips)``, drawn from a generator seeded by ``i``,
    so the sampler's shuffled, resumable order over ``views * len(clips)`` items fixes every view.
    """

    def __init__(self, clips: FFADataset, frames: int | None, crop: int, views: int) -> None:
        problem = None if frames is None else frame_count_problem(frames)
        if problem is not None:
            raise ValueError(f"data.frames = {frames}: {problem}")
        if crop < 0 or crop % SPATIAL_COMPRESSION:
            raise ValueError(
                f"data.crop = {crop}: expected 0 (whole frames) or a multiple of {SPATIAL_COMPRESSION} pixels"
            )
        if views < 1:
            raise ValueError(f"data.views = {views}: expected at least 1")
        self.clips, self.frames, self.crop, self.views = clips, frames, crop, views

    def __len__(self) -> int:
        return self.views * len(self.clips)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = dict(self.clips[index % len(self.clips)])
        video = item["video"]  # (C, T, H, W)
        rng = np.random.default_rng(index)
        if self.frames is not None:
            if self.frames > video.shape[1]:
                raise ValueError(f"clip {item['id']}: {video.shape[1]} frames, fewer than data.frames")
            t0 = int(rng.integers(0, video.shape[1] - self.frames + 1))
            video = video[:, t0 : t0 + self.frames]
        if self.crop:
            h, w = video.shape[-2:]
            if self.crop > min(h, w):
                raise ValueError(f"data.crop = {self.crop} exceeds the {h}x{w} frames")
            y, x = int(rng.integers(0, h - self.crop + 1)), int(rng.integers(0, w - self.crop + 1))
            video = video[..., y : y + self.crop, x : x + self.crop]
        item["video"] = video.contiguous()
        return item


def _inner(module: nn.Module) -> WFVAE:
    inner = getattr(module, "module", module)  # DDP wrapper
    assert isinstance(inner, WFVAE)
    return inner


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """(C, T, H, W) in [-1, 1] -> (T, H, W) uint8 grey (channels averaged)."""
    return pixels.to_uint8(video.float().mean(dim=0))


def write_sheet(x: torch.Tensor, recon: torch.Tensor, path: Path) -> Path:
    """A PNG with, per clip, the input frames above the reconstructed ones. x, recon: (B, C, T, H, W)."""
    from ffasora.io.sheet import contact_sheet

    rows, labels = [], []
    for i in range(x.shape[0]):
        rows += [to_uint8(x[i]), to_uint8(recon[i])]
        labels += [f"clip {i}: input", f"clip {i}: reconstruction"]
    path.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(rows, labels).save(path)
    return path
