"""Causal 3D convolution and the explicit cache that lets a clip be processed in temporal chunks.

WF-VAE (arXiv 2411.17459, Sec. 3.3 "Causal Cache") makes every temporal operator causal: a convolution with
temporal kernel ``k`` sees the first frame replicated ``k - 1`` times in front of the clip instead of zeros, so
frame 0 is always encoded alone and an image is a one-frame video. Because the operator only looks back, a clip
can be cut into chunks: each operator keeps the input frames it has not yet fully consumed (its "tail") and
prepends them to the next chunk. Upstream keeps these tails in module attributes (``deque``s and an
``is_first_chunk`` flag); here they live in a :class:`CausalCache` passed explicitly to ``forward``, so a model
object holds no state between calls and two clips can be processed in any interleaving.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class CausalCache:
    """State carried from one temporal chunk of a clip to the next.

    ``tensors`` maps a module's cache key (its qualified name inside the model) to what that module keeps:
    unconsumed input frames for convolutions, the pending frame of the temporal up-sampler, frames waiting
    to be aligned in the decoder. ``final`` says whether the chunk being processed is the last of the clip
    (only the decoder's up-sampler needs to know: it emits its last frame only then). A fresh cache means
    "the next chunk is the first of a new clip".
    """

    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    started: set[str] = field(default_factory=set)
    final: bool = True

    def is_first(self, key: str) -> bool:
        """True the first time module ``key`` asks (and marks it as started)."""
        if key in self.started:
            return False
        self.started.add(key)
        return True

    def pop(self, key: str) -> torch.Tensor | None:
        return self.tensors.pop(key, None)

    def put(self, key: str, value: torch.Tensor) -> None:
        # Clone so that the tail does not keep the whole chunk's activation alive.
        self.tensors[key] = value.clone()


class CacheKeyed(nn.Module):
    """A module that reads and writes a :class:`CausalCache` under its own key (set by the owning model)."""

    cache_key: str = ""


def causal_pad(
    x: torch.Tensor, kernel_t: int, stride_t: int, cache: CausalCache | None, key: str
) -> torch.Tensor:
    """Prepend the causal temporal context for a conv with temporal ``kernel_t`` / ``stride_t``.

    First chunk (or whole clip, ``cache is None``): ``kernel_t - 1`` copies of frame 0. Later chunks: the
    frames left over from the previous chunk. With a cache, the frames that the next window will start
    from are kept, which makes chunked output identical to whole-clip output for any chunk length.

    x: (B, C, T, H, W) -> (B, C, T', H, W) with T' = T + context.
    """
    if cache is None or cache.is_first(key):
        context = [x[:, :, :1]] * (kernel_t - 1)  # frame 0, replicated
    else:
        tail = cache.pop(key)  # the frames the previous chunk left over
        context = [tail] if tail is not None and tail.shape[2] > 0 else []
    padded = torch.cat([*context, x], dim=2) if context else x
    if cache is not None:
        n_out = max(0, (padded.shape[2] - kernel_t) // stride_t + 1)
        cache.put(key, padded[:, :, n_out * stride_t :])
    return padded


class CausalConv3d(CacheKeyed):
    """3D convolution, causal in time (replicate-padded first frame), ordinary zero padding in space.

    The inner ``nn.Conv3d`` is stored as ``conv`` so that official checkpoint keys (``....conv.weight``)
    load unchanged. x: (B, C_in, T, H, W) -> (B, C_out, T_out, H_out, W_out), T_out = (T + k_t - 1 - k_t) //
    s_t + 1 for a whole clip (``2n + 1 -> n + 1`` for k_t = 3, s_t = 2).
    """

    def __init__(
        self,
        chan_in: int,
        chan_out: int,
        kernel_size: int | tuple[int, int, int],
        stride: int | tuple[int, int, int] = 1,
        padding: int | tuple[int, int, int] = 0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        kernel = (kernel_size,) * 3 if isinstance(kernel_size, int) else kernel_size
        strides = (stride,) * 3 if isinstance(stride, int) else stride
        pads = (padding,) * 3 if isinstance(padding, int) else padding
        self.kernel_t, self.stride_t = kernel[0], strides[0]
        # Temporal padding is done by causal_pad; only the spatial part goes to Conv3d.
        self.conv = nn.Conv3d(
            chan_in, chan_out, kernel, stride=strides, padding=(0, pads[1], pads[2]), bias=bias
        )

    def forward(self, x: torch.Tensor, cache: CausalCache | None = None) -> torch.Tensor:
        x = causal_pad(x, self.kernel_t, self.stride_t, cache, self.cache_key)
        assert x.shape[2] >= self.kernel_t, "chunk too short for this convolution"
        return self.conv(x)


def per_frame(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Apply a 2D module to every frame: (B, C, T, H, W) -> (B, C', T, H', W')."""
    b, c, t, h, w = x.shape
    y = fn(x.transpose(1, 2).reshape(b * t, c, h, w))  # (B*T, C', H', W')
    return y.reshape(b, t, *y.shape[1:]).transpose(1, 2)
