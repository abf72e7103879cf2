"""Fast, lean WF-VAE inference on CPU: the model's own maths, laid out and routed for oneDNN.

The model files (:mod:`ffasora.models.vae` and friends) are plain PyTorch. On a CPU at 512 x 512 a decode is
~90 % 3x3(x3) convolutions over activations of hundreds of MB each, and four things make it faster and
smaller; :func:`enable_cpu_inference` switches them on for one model, :func:`disable_cpu_inference` off:

1. Weights channels-last, oneDNN's native layout. The model's activations follow the layout of the weights,
   so oneDNN reorders nothing per call.
2. Every ``Conv2d``/``Conv3d`` routed: PyTorch's dispatch heuristic sends batch-1 3D convolutions with
   ``C * T * H < 20480`` (short chunks, small latents) to the unblocked ``slow_conv3d`` kernel, 2-3x slower
   there, so 3D convolutions call the oneDNN op directly; with ``winograd=True`` eligible 3x3 convolutions
   use Winograd F(4x4, 3x3) (:mod:`ffasora.runtime.winograd`, 4x fewer products, ~3e-5 from exact).
3. Lean residual blocks: in-place SiLU and residual add, and each convolution's causal padding built before
   the convolution runs so that its unpadded input is freed first: one activation less at the memory peak.
4. glibc's mmap threshold fixed at 1 MB (process-wide, once): see :func:`release_large_tensors_to_os`.

Everything here is for inference: with autograd recording, every routed module runs the model's own code.
Outputs equal the plain model's up to float rounding (Winograd: within 1e-4); ``benchmarks/vae.py`` measures
the speed and memory.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import types
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from ffasora.models.causal import CausalCache, CausalConv3d, causal_pad
from ffasora.models.vae_blocks import ResnetBlock2D, ResnetBlock3D
from ffasora.runtime import winograd

_M_MMAP_THRESHOLD = -3  # mallopt parameter number, from glibc's malloc.h
LARGE_TENSOR_BYTES = 1 << 20
Model = TypeVar("Model", bound=nn.Module)
# The instance attributes this module sets; removing them restores the class's own methods.
_OVERRIDES = ("_conv_forward", "forward", "_frames")


def enable_cpu_inference(model: Model, winograd: bool = False) -> Model:
    """Switch ``model`` (a WF-VAE, or any module holding its blocks) to the fast CPU path; returns it."""
    release_large_tensors_to_os()
    _set_layout(model, channels_last=True)
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.Conv3d):
            module._conv_forward = functools.partial(_convolve, module, winograd)  # type: ignore[method-assign]
        elif isinstance(module, ResnetBlock3D):
            module.forward = types.MethodType(_resnet3d_forward, module)  # type: ignore[method-assign]
        elif isinstance(module, ResnetBlock2D):
            module._frames = types.MethodType(_resnet2d_frames, module)  # type: ignore[method-assign]
    return model


def disable_cpu_inference(model: Model) -> Model:
    """Undo :func:`enable_cpu_inference`: the model's own code and the default weight layout again."""
    for module in model.modules():
        for name in _OVERRIDES:
            vars(module).pop(name, None)
    return _set_layout(model, channels_last=False)


def is_enabled(model: nn.Module) -> bool:
    """Whether :func:`enable_cpu_inference` is in effect for ``model``."""
    return any("_conv_forward" in vars(m) for m in model.modules())


def _set_layout(model: Model, channels_last: bool) -> Model:
    """Conv weights channels-last (or back to contiguous); values and state-dict keys are unchanged."""
    for param in model.parameters():
        if param.dim() in (4, 5):
            layout = {4: torch.channels_last, 5: torch.channels_last_3d}[param.dim()]
            param.data = param.data.contiguous(
                memory_format=layout if channels_last else torch.contiguous_format
            )
    return model


def _recording(x: torch.Tensor, weight: torch.Tensor) -> bool:
    return torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)


def _convolve(
    conv: nn.Conv2d | nn.Conv3d,
    use_winograd: bool,
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
) -> torch.Tensor:
    """``conv._conv_forward`` on the fast route: Winograd where eligible, oneDNN for 3D, else the default."""
    padding = conv.padding
    if (
        x.device.type != "cpu"
        or x.dtype != torch.float32
        or _recording(x, weight)
        or not isinstance(padding, tuple)
    ):
        return type(conv)._conv_forward(conv, x, weight, bias)  # type: ignore[arg-type]
    if use_winograd and winograd.eligible(x, weight, conv.stride, padding):
        if x.dim() == 5:
            return winograd.winograd_conv(x, weight, bias)
        # Frames become the time axis of a (1 x 3 x 3) 3D convolution; both views keep channels-last.
        y = winograd.winograd_conv(x.transpose(0, 1).unsqueeze(0), weight.unsqueeze(2), bias)
        return y[0].transpose(0, 1)
    if x.dim() == 5:
        return torch.ops.aten.mkldnn_convolution(
            x, weight, bias, list(padding), list(conv.stride), list(conv.dilation), conv.groups
        )
    return type(conv)._conv_forward(conv, x, weight, bias)  # type: ignore[arg-type]


def _pad(conv: CausalConv3d, x: torch.Tensor, cache: CausalCache | None) -> torch.Tensor:
    return causal_pad(x, conv.kernel_t, conv.stride_t, cache, conv.cache_key)


def _resnet3d_forward(
    block: ResnetBlock3D, x: torch.Tensor, cache: CausalCache | None = None
) -> torch.Tensor:
    """:meth:`ResnetBlock3D.forward` with at most the input, one padded activation and one output alive."""
    if torch.is_grad_enabled():
        return ResnetBlock3D.forward(block, x, cache)
    # Each line rebinds `h`, which frees the previous activation before the next one is allocated; the
    # padding is a new tensor, so the unpadded one is gone before the convolution allocates its output.
    h = _pad(block.conv1, F.silu(block.norm1(x), inplace=True), cache)
    h = block.conv1.conv(h)
    h = block.dropout(F.silu(block.norm2(h), inplace=True))
    h = _pad(block.conv2, h, cache)
    h = block.conv2.conv(h)
    return h.add_(block.nin_shortcut(x, cache) if hasattr(block, "nin_shortcut") else x)


def _resnet2d_frames(block: ResnetBlock2D, x: torch.Tensor) -> torch.Tensor:
    """:meth:`ResnetBlock2D._frames` with in-place SiLU and residual add (three activations alive, not four)."""
    if torch.is_grad_enabled():
        return ResnetBlock2D._frames(block, x)
    h = F.silu(block.norm1(x), inplace=True)
    h = block.conv1(h)
    h = F.silu(block.norm2(h), inplace=True)
    h = block.conv2(block.dropout(h))
    return h.add_(block.nin_shortcut(x) if hasattr(block, "nin_shortcut") else x)


@functools.cache
def release_large_tensors_to_os(threshold: int = LARGE_TENSOR_BYTES) -> bool:
    """Set glibc's mmap threshold to ``threshold`` bytes, once per process; False where not glibc.

    glibc's ``malloc`` serves a request from its heap unless it is larger than the mmap threshold, and that
    threshold grows (up to 32 MB on 64-bit) every time a large block is freed. During a WF-VAE decode at
    512 x 512 the activations are 10-300 MB each and are freed in a different order from the one they were
    made in, so the heap keeps the freed space as holes that later tensors do not fit: measured on a
    21 x 256 x 256 decode, resident memory peaked 1.0 GB above the weights with the default policy and
    0.6 GB with a fixed 1 MB threshold, at no measurable cost in time. Process-wide and permanent, which is
    harmless: it only changes where blocks above 1 MB come from.
    """
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl, macOS, Windows: no mallopt, nothing to do
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, threshold))
