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

from ffasora.models import winograd


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
        context = x[:, :, :1].expand(-1, -1, kernel_t - 1, -1, -1) if kernel_t > 1 else None
    else:
        context = cache.pop(key)
    padded = x if context is None or context.shape[2] == 0 else _cat_frames(context, x)
    del context  # free the previous tail before the new one is copied out (one activation less at peak)
    if cache is not None:
        n_out = max(0, (padded.shape[2] - kernel_t) // stride_t + 1)
        cache.put(key, padded[:, :, n_out * stride_t :])
    return padded


def _cat_frames(context: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``torch.cat([context, x], dim=2)`` that keeps ``x``'s channels-last layout.

    ``torch.cat`` falls back to the default layout when an input is an expanded view (the replicated first
    frame), and oneDNN then copies the whole padded input back to channels-last before convolving: a full
    extra activation in memory and time on every call.
    """
    layout = torch.channels_last_3d if x.is_contiguous(memory_format=torch.channels_last_3d) else None
    b, c, t, h, w = x.shape
    n = context.shape[2]
    padded = torch.empty(
        (b, c, n + t, h, w), dtype=x.dtype, device=x.device, memory_format=layout or torch.contiguous_format
    )
    padded[:, :, :n] = context
    padded[:, :, n:] = x
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
        return self.convolve(self.pad(x, cache))

    def pad(self, x: torch.Tensor, cache: CausalCache | None = None) -> torch.Tensor:
        """Step 1 of ``forward``: prepend the causal context (a new tensor unless there is none).

        Split from :meth:`convolve` so that a caller can drop its own reference to ``x`` before the
        convolution runs; in inference at 512 x 512 each such activation is hundreds of MB.
        """
        return causal_pad(x, self.kernel_t, self.stride_t, cache, self.cache_key)

    def convolve(self, padded: torch.Tensor) -> torch.Tensor:
        """Step 2 of ``forward``: the convolution over an already padded input (no temporal padding)."""
        assert padded.shape[2] >= self.kernel_t, "chunk too short for this convolution"
        return conv3d(padded, self.conv)


def conv3d(x: torch.Tensor, conv: nn.Conv3d) -> torch.Tensor:
    """``conv(x)``, but always through oneDNN for fp32 CPU inference.

    PyTorch's dispatch heuristic sends batch-1 3D convolutions with ``C * T * H < 20480`` (short chunks, small
    latents) to the unblocked ``slow_conv3d`` kernel, which is 2-3x slower there; calling the oneDNN op
    directly avoids that. With autograd or on other devices the ordinary path is used.
    """
    weight = conv.weight
    padding = conv.padding if isinstance(conv.padding, tuple) else (0, 0, 0)
    if winograd.eligible(x, weight, conv.stride, padding):
        return winograd.winograd_conv(x, weight, conv.bias)
    if (
        x.device.type != "cpu"
        or x.dtype != torch.float32
        or (torch.is_grad_enabled() and weight.requires_grad)
    ):
        return conv(x)
    return torch.ops.aten.mkldnn_convolution(
        x, weight, conv.bias, list(padding), list(conv.stride), list(conv.dilation), conv.groups
    )


def conv2d(frames: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``conv(frames)`` for (N, C, H, W), through Winograd when :mod:`winograd` is switched on and applies."""
    padding = conv.padding if isinstance(conv.padding, tuple) else (0, 0)
    if frames.dim() == 4 and winograd.eligible(frames, conv.weight, conv.stride, padding):
        # Frames become the time axis of a (1 x 3 x 3) 3D convolution; both views keep channels-last.
        y = winograd.winograd_conv(frames.transpose(0, 1).unsqueeze(0), conv.weight.unsqueeze(2), conv.bias)
        return y[0].transpose(0, 1)
    return conv._conv_forward(frames, conv.weight, conv.bias)  # not conv(): FrameConv2d routes here


def per_frame(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Apply a 2D module to every frame: (B, C, T, H, W) -> (B, C', T, H', W')."""
    b, c, t, h, w = x.shape
    # Channels-last in and out (free views when x is channels_last_3d), so oneDNN never reorders.
    frames = x.transpose(1, 2).reshape(b * t, c, h, w).contiguous(memory_format=torch.channels_last)
    y = fn(frames).contiguous(memory_format=torch.channels_last)
    return y.reshape(b, t, *y.shape[1:]).transpose(1, 2)
