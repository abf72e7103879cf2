"""Classifier-free guidance (Ho & Salimans 2022) with a negative condition, cond and uncond in one batch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ffasora.diffusion.denoisers import Network

ConditionedNetwork = Callable[[Tensor, Tensor, Any], Tensor]
"""``network(x_t (B, ...), timestep (B,), cond) -> prediction``; ``cond`` a tensor or a tuple/dict of them,
each with the batch first (e.g. text states ``(B, L, D)`` and mask ``(B, L)``)."""


def _stack(cond: Any, uncond: Any) -> Any:
    """Concatenate two conditions leaf by leaf along the batch, zero-padding dim 1 (the token axis) of the
    shorter one: a zero in a mask means "no token", so padding changes nothing the network attends to."""
    if isinstance(cond, Tensor):
        if uncond.shape[0] == 1 < cond.shape[0]:  # one negative condition shared by the batch
            uncond = uncond.expand(cond.shape[0], *uncond.shape[1:])
        if cond.shape[2:] != uncond.shape[2:] or cond.shape[0] != uncond.shape[0]:
            raise ValueError(f"cond {tuple(cond.shape)} and uncond {tuple(uncond.shape)} do not stack")
        if cond.ndim >= 2 and cond.shape[1] != uncond.shape[1]:
            length = max(cond.shape[1], uncond.shape[1])
            cond, uncond = (_pad_tokens(c, length) for c in (cond, uncond))
        return torch.cat([cond, uncond])
    if isinstance(cond, tuple | list):
        return type(cond)(_stack(c, u) for c, u in zip(cond, uncond, strict=True))
    if isinstance(cond, dict):
        if cond.keys() != uncond.keys():
            raise ValueError(f"cond keys {sorted(cond)} differ from uncond keys {sorted(uncond)}")
        return {k: _stack(cond[k], uncond[k]) for k in cond}
    raise ValueError(
        f"conditions must be tensors or tuples/lists/dicts of tensors, got {type(cond).__name__}"
    )


def _pad_tokens(t: Tensor, length: int) -> Tensor:
    """Zero-pad dim 1 to ``length``; by concatenation so that bool masks pad too."""
    return torch.cat([t, t.new_zeros(t.shape[0], length - t.shape[1], *t.shape[2:])], dim=1)


def classifier_free_guidance(
    network: ConditionedNetwork, cond: Any, uncond: Any, scale: float, rescale: float = 0.0
) -> Network:
    """Bind conditions to ``network`` and guide: ``out = u + scale (c - u)`` (Ho & Salimans 2022, Eq. 6).

    ``uncond`` is the negative condition (the encoded negative report, or ``""``). Both halves run as one
    batch of ``2B``, one network call per evaluation. ``scale == 1`` is plain conditional sampling and skips
    the unconditional half. ``rescale > 0`` blends in the guided output rescaled to the conditional output's
    standard deviation (Lin et al. 2024, Sec. 3.4), which counters over-exposure at high scales with
    zero-terminal-SNR models. Guidance is linear, so guiding v, eps or velocity equals guiding x0.
    """
    if scale < 0:
        raise ValueError(f"guidance scale must be >= 0, got {scale}")
    if scale == 1.0:
        return lambda x, t: network(x, t, cond)
    both = _stack(cond, uncond)

    def guided(x: Tensor, t: Tensor) -> Tensor:
        out_cond, out_uncond = network(torch.cat([x, x]), torch.cat([t, t]), both).chunk(2)
        out = out_uncond + scale * (out_cond - out_uncond)
        if rescale > 0:
            dims = list(range(1, out.ndim))
            ratio = out_cond.std(dim=dims, keepdim=True) / out.std(dim=dims, keepdim=True).clamp(min=1e-12)
            out = rescale * out * ratio + (1 - rescale) * out
        return out

    return guided
