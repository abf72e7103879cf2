"""The engine's own config sections, shared by every task.

A task's config dataclass holds its ``model`` and ``data`` sections plus ``train: TrainConfig``; a preset
therefore reads ``[model]``, ``[data]``, ``[train]``, ``[train.optim]``, ... and any value can be overridden
with ``--set train.optim.lr=3e-4``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PRECISIONS = ("auto", "bf16", "fp32")
PARALLEL = ("ddp", "fsdp")
SCHEDULES = ("constant", "cosine", "linear")


@dataclass(frozen=True)
class OptimConfig:
    """AdamW. ``weight_decay`` applies to matrices only: norms, biases and embeddings are never decayed."""

    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    grad_clip: float = 1.0  # max global grad norm per optimizer group; 0 disables clipping


@dataclass(frozen=True)
class ScheduleConfig:
    """LR multiplier as a pure function of the step: linear warm-up, then constant, cosine or linear decay."""

    kind: str = "constant"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0  # floor of the decay, as a fraction of the peak LR


@dataclass(frozen=True)
class EMAConfig:
    """Exponential moving average of the ``model`` weights (never of a discriminator)."""

    enabled: bool = True
    decay: float = 0.9999
    warmup: bool = True  # decay_n = min(decay, (1 + n) / (10 + n)) so early averages are not stuck at init
    start_step: int = 0
    every: int = 1


@dataclass(frozen=True)
class GuardConfig:
    """Non-finite loss/gradient handling: skip, and after ``max_bad_steps`` in a row roll back."""

    enabled: bool = True
    max_bad_steps: int = 5
    lr_factor: float = 0.5  # LR multiplier applied at every rollback
    max_rollbacks: int = 3  # then give up with an error


@dataclass(frozen=True)
class CheckpointConfig:
    every: int = 1000  # steps between checkpoints (a final one is always written)
    keep_last: int = 3
    resume: bool = True  # continue from the newest checkpoint in the run folder when there is one


@dataclass(frozen=True)
class LoaderConfig:
    """Data loading: per-rank shards of a per-epoch shuffle (seeded), workers seeded per rank and epoch."""

    num_workers: int = 2
    shuffle: bool = True
    pin_memory: bool = True


@dataclass(frozen=True)
class LoggingConfig:
    every: int = 10  # steps between metrics.jsonl rows
    tensorboard: bool = False


@dataclass(frozen=True)
class TrainConfig:
    """One optimizer step consumes ``batch_size * grad_accum`` samples on every rank."""

    max_steps: int = 1000
    batch_size: int = 1  # per rank and micro-step
    grad_accum: int = 1
    seed: int = 0
    precision: str = "auto"  # auto = bf16 autocast where the device supports it, else fp32
    grad_checkpointing: bool = False
    parallel: str = "ddp"  # ddp: replicated weights; fsdp: FSDP2 fully_shard (large models)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    ema: EMAConfig = field(default_factory=EMAConfig)
    guard: GuardConfig = field(default_factory=GuardConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    loader: LoaderConfig = field(default_factory=LoaderConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"train.precision = {self.precision!r}; expected one of {PRECISIONS}")
        if self.parallel not in PARALLEL:
            raise ValueError(f"train.parallel = {self.parallel!r}; expected one of {PARALLEL}")
        if self.schedule.kind not in SCHEDULES:
            raise ValueError(f"train.schedule.kind = {self.schedule.kind!r}; expected one of {SCHEDULES}")
        for name in ("max_steps", "batch_size", "grad_accum"):
            if getattr(self, name) < 1:
                raise ValueError(f"train.{name} = {getattr(self, name)}; expected >= 1")
        if self.checkpoint.keep_last < 1 or self.checkpoint.every < 1:
            raise ValueError("train.checkpoint.every and train.checkpoint.keep_last must be >= 1")
        if not 0.0 < self.guard.lr_factor <= 1.0:
            raise ValueError(f"train.guard.lr_factor = {self.guard.lr_factor}; expected in (0, 1]")


def train_section(cfg: Any) -> TrainConfig:
    """The ``train`` section of a task config, with a clear error when a task forgot it."""
    section = getattr(cfg, "train", None)
    if not isinstance(section, TrainConfig):
        raise ValueError(
            f"{type(cfg).__name__} has no `train: TrainConfig` field; every task config needs one"
        )
    return section
