"""Exponential moving average of a module's parameters, kept in fp32 beside the trained weights."""

from __future__ import annotations

import torch
from torch import nn

from ffasora.train.distributed import full_tensor, shard_like


class EMA:
    """``shadow <- d * shadow + (1 - d) * param`` after each optimizer step.

    With warm-up the decay of the n-th update is ``min(decay, (1 + n) / (10 + n))``: the average follows
    the weights closely at first instead of remembering the random initialisation for ~1/(1 - decay) steps.
    Buffers (e.g. running statistics) are copied, not averaged.
    """

    def __init__(
        self, module: nn.Module, decay: float, warmup: bool = True, trained_only: bool = False
    ) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay = {decay}; expected in [0, 1)")
        self.decay, self.warmup = decay, warmup
        self.trained_only = trained_only  # average (and save) only parameters that require grad: adapters
        self.updates = 0
        self.shadow: dict[str, torch.Tensor] = {
            name: p.detach().clone().float() for name, p in self._averaged(module)
        }

    def _averaged(self, module: nn.Module) -> list[tuple[str, nn.Parameter]]:
        return [(n, p) for n, p in module.named_parameters() if p.requires_grad or not self.trained_only]

    def current_decay(self) -> float:
        if not self.warmup:
            return self.decay
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        d = self.current_decay()
        for name, p in self._averaged(module):
            self.shadow[name].lerp_(p.detach().float(), 1.0 - d)
        self.updates += 1

    def full_state_dict(self, module: nn.Module) -> dict[str, torch.Tensor]:
        """The averaged weights as a full (unsharded) state dict of ``module``, buffers included, on CPU.

        Collective under FSDP2: call on every rank.
        """
        out = {name: full_tensor(t).detach().cpu() for name, t in self.shadow.items()}
        for name, b in module.named_buffers():
            out[name] = full_tensor(b).detach().cpu()
        return out

    @torch.no_grad()
    def load_full_state_dict(self, module: nn.Module, state: dict[str, torch.Tensor], updates: int) -> None:
        params = dict(self._averaged(module))
        missing = sorted(set(params) - set(state))
        if missing:
            raise ValueError(f"EMA state lacks {len(missing)} parameter(s), e.g. {missing[0]}")
        for name, p in params.items():
            self.shadow[name] = shard_like(state[name].float(), p.detach().float())
        self.updates = updates
