"""A DiT task with a deterministic loss for the LoRA engine tests, registered as "dit_fixed".

The real DiT loss draws noise and times per rank, so one process and two never see the same numbers; here
each sample's noise and time follow from its id, which makes 1 process x batch 4 and 2 x batch 2 comparable.
``run_lora.py`` registers it before running the CLI under torchrun.
"""

from __future__ import annotations

import zlib
from typing import Any

import torch
from torch import nn

from ffasora.train.dit_task import DiTTask
from ffasora.train.tasks import StepLosses, register_task


class FixedNoiseDiTTask(DiTTask):
    """Rectified-flow v-loss with per-sample noise and time seeded by the sample id."""

    def training_step(self, models: dict[str, nn.Module], batch: dict[str, Any], step: int) -> StepLosses:
        x0 = batch["mean"]
        noise, times = [], []
        for sample_id in batch["id"]:
            gen = torch.Generator().manual_seed(zlib.crc32(sample_id.encode()))
            noise.append(torch.randn(x0.shape[1:], generator=gen))
            times.append(torch.rand((), generator=gen))
        eps, t = torch.stack(noise).to(x0), torch.stack(times).to(x0)
        tb = t.view(-1, 1, 1, 1, 1)
        xt = (1 - tb) * x0 + tb * eps
        v = models["model"](xt, t * 1000, batch["text"], batch["text_mask"])
        return {"model": ((v - (eps - x0)) ** 2).mean()}


def register() -> None:
    register_task("dit_fixed", "lora_task:FixedNoiseDiTTask")
