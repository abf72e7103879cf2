"""Tiny tasks for the engine tests: an MLP regression and a two-optimizer GAN on synthetic tensors.

Registered as "tiny" and "tiny_gan" by ``register()``; ``run_tiny.py`` does that before running the CLI,
so ``torchrun`` can train them.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn
from torch.utils.data import Dataset

from ffasora.train.config import (
    CheckpointConfig,
    EMAConfig,
    LoaderConfig,
    LoggingConfig,
    OptimConfig,
    ScheduleConfig,
    TrainConfig,
)
from ffasora.train.tasks import GroupSpec, Task, register_task


@dataclass(frozen=True)
class TinyModelConfig:
    in_dim: int = 8
    width: int = 32


@dataclass(frozen=True)
class TinyDataConfig:
    size: int = 64
    seed: int = 1234
    input_noise: float = 0.0  # > 0: draws from the per-rank global RNG (tests RNG restore on resume)
    nan_from_step: int = -1  # inject a NaN loss at steps >= this ...
    nan_count: int = 0  # ... for this many optimizer steps in total (per task instance)
    disc_start: int = 0  # tiny_gan: first step with a discriminator loss
    adaptive_weight: bool = True  # tiny_gan: weight from last-layer gradients (per-rank, so not batch-exact)


@dataclass(frozen=True)
class TinyConfig:
    model: TinyModelConfig = field(default_factory=TinyModelConfig)
    data: TinyDataConfig = field(default_factory=TinyDataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


class TinyNet(nn.Module):
    def __init__(self, config: TinyModelConfig) -> None:
        super().__init__()
        self.config = config
        self.inp = nn.Linear(config.in_dim, config.width)
        self.norm = nn.LayerNorm(config.width)
        self.out = nn.Linear(config.width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, in_dim) -> (B, 1)
        return self.out(torch.tanh(self.norm(self.inp(x))))

    def save_pretrained(self, path: str | Path, dtype: torch.dtype | None = None) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / "config.json").write_text(json.dumps({"_class_name": "TinyNet", **vars(self.config)}))
        state = {k: v.detach().to(dtype or v.dtype).contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(path / "model.safetensors"))
        return path


class TinyData(Dataset):
    """``size`` samples ``x ~ N(0, I)``, ``y = sin(x @ w)``; items carry their index to check data order."""

    def __init__(self, cfg: TinyConfig) -> None:
        g = torch.Generator().manual_seed(cfg.data.seed)
        self.x = torch.randn(cfg.data.size, cfg.model.in_dim, generator=g)
        self.y = torch.sin(self.x @ torch.randn(cfg.model.in_dim, 1, generator=g))

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[i], "y": self.y[i], "index": torch.tensor(i)}


class TinyTask(Task):
    config_cls = TinyConfig

    def __init__(self) -> None:
        self.seen: list[list[int]] = []  # batch indices, in order (data-order checks)
        self.nan_injected = 0

    def build_models(self, cfg: TinyConfig) -> dict[str, nn.Module]:
        return {"model": TinyNet(cfg.model)}

    def build_dataset(self, cfg: TinyConfig, split: str) -> Dataset:
        self.cfg = cfg
        return TinyData(cfg)

    def training_step(self, models, batch, step):
        self.seen.append(batch["index"].tolist())
        x = batch["x"]
        if self.cfg.data.input_noise > 0:
            x = x + self.cfg.data.input_noise * torch.randn_like(x)
        loss = (models["model"](x) - batch["y"]).pow(2).mean()
        d = self.cfg.data
        if 0 <= d.nan_from_step <= step and self.nan_injected < d.nan_count * self.cfg.train.grad_accum:
            self.nan_injected += 1
            loss = loss * float("nan")
        return {"model": loss, "mse": loss.detach()}

    def tokens_per_sample(self, cfg: TinyConfig) -> int:
        return cfg.model.in_dim


class TinyGANTask(TinyTask):
    """Generator "model" maps x to a fake y; "disc" tells (x, y) pairs real from fake.

    The generator loss passes through the discriminator and uses an adaptive weight from gradients of the
    generator's last layer (as the VAE task does), so the engine must keep the groups' gradients apart.
    """

    def build_models(self, cfg: TinyConfig) -> dict[str, nn.Module]:
        disc = nn.Sequential(nn.Linear(cfg.model.in_dim + 1, 16), nn.Tanh(), nn.Linear(16, 1))
        return {"model": TinyNet(cfg.model), "disc": disc}

    def optimizer_groups(self, cfg: TinyConfig) -> dict[str, GroupSpec]:
        return {
            "model": GroupSpec(modules=("model",)),
            "disc": GroupSpec(modules=("disc",), optim=OptimConfig(lr=1e-2, grad_clip=0.0)),
        }

    def training_step(self, models, batch, step):
        gen, disc = models["model"], models["disc"]
        x, y = batch["x"], batch["y"]
        fake = gen(x)
        rec = (fake - y).pow(2).mean()
        adv = -disc(torch.cat([x, fake], 1)).mean()
        weight = torch.tensor(1.0)
        if self.cfg.data.adaptive_weight:
            last = gen.out.weight
            g_rec = torch.autograd.grad(rec, last, retain_graph=True)[0]
            g_adv = torch.autograd.grad(adv, last, retain_graph=True)[0]
            weight = (g_rec.norm() / (g_adv.norm() + 1e-4)).clamp(0, 1e4).detach()
        yield "model", rec + 0.1 * weight * adv
        yield "adaptive_weight", weight
        if step >= self.cfg.data.disc_start:
            real = disc(torch.cat([x, y], 1))
            fake_score = disc(torch.cat([x, fake.detach()], 1))
            yield "disc", torch.relu(1 - real).mean() + torch.relu(1 + fake_score).mean()


def register() -> None:
    register_task("tiny", f"{__name__}:TinyTask")
    register_task("tiny_gan", f"{__name__}:TinyGANTask")


def tiny_config(**train: object) -> TinyConfig:
    """6 steps of an MLP on 20 samples: batch 4 x accumulation 2, cosine schedule, EMA, shuffled epochs."""
    data = train.pop("data", TinyDataConfig(size=20))
    base = TrainConfig(
        max_steps=6,
        batch_size=4,
        grad_accum=2,
        seed=7,
        precision="fp32",
        optim=OptimConfig(lr=1e-2, weight_decay=0.01, grad_clip=1.0),
        schedule=ScheduleConfig(kind="cosine", warmup_steps=2, min_lr_ratio=0.1),
        ema=EMAConfig(decay=0.9),
        checkpoint=CheckpointConfig(every=100, keep_last=3),
        loader=LoaderConfig(num_workers=0, pin_memory=False),
        logging=LoggingConfig(every=1),
    )
    return TinyConfig(data=data, train=dataclasses.replace(base, **train))  # type: ignore[arg-type]
