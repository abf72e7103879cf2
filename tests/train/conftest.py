"""Shared pieces of the engine tests: the tiny tasks, a tiny config, and a runner."""

from __future__ import annotations

import dataclasses

import pytest
from tiny_train_task import TinyConfig, TinyDataConfig, register

from ffasora.train.config import (
    CheckpointConfig,
    EMAConfig,
    LoaderConfig,
    LoggingConfig,
    OptimConfig,
    ScheduleConfig,
    TrainConfig,
)

register()


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


@pytest.fixture
def config_factory():
    return tiny_config
