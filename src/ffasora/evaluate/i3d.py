"""Inception-I3D (Carreira & Zisserman, CVPR 2017), the feature extractor of the standard FVD.

The network is Inception-v1 with every filter inflated to 3D and TensorFlow "SAME" padding. Parameter names
follow the widely used PyTorch port (``Conv3d_1a_7x7.conv3d.weight``, ``Mixed_3b.b1b.bn.running_mean``,
``logits.conv3d.bias``), so the state-dict conversions of the TF-Hub Kinetics-400 model
(``i3d_pretrained_400.pt`` of the VideoGPT/TATS lineage) load strictly. A TorchScript export (StyleGAN-V's
``i3d_torchscript.pt``) is loaded as is. No weights ship with ffasora: the user supplies the file, and its
sha256 goes into the report.

FVD features are the 400 Kinetics logits averaged over time (before softmax), computed on frames resized
to 224x224 (bilinear), scaled to [-1, 1] and repeated to RGB; clips need at least 10 frames after
resampling (the final 2x7x7 average pool), 16 by default.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

Progress = Callable[[int, int], None]

# (name, in channels, [b0, b1a, b1b, b2a, b2b, b3b]) of the Inception modules, in order
MIXED = (
    ("Mixed_3b", 192, (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", 256, (128, 128, 192, 32, 96, 64)),
    ("Mixed_4b", 480, (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", 512, (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", 512, (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", 512, (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", 528, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5b", 832, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", 832, (384, 192, 384, 48, 128, 128)),
)


# the blocks after the stem, in order (setattr-registered, so named here)
ORDER = (
    "Mixed_3b",
    "Mixed_3c",
    "MaxPool3d_4a_3x3",
    "Mixed_4b",
    "Mixed_4c",
    "Mixed_4d",
    "Mixed_4e",
    "Mixed_4f",
    "MaxPool3d_5a_2x2",
    "Mixed_5b",
    "Mixed_5c",
)


def _same_pad(x: torch.Tensor, kernel: Sequence[int], stride: Sequence[int]) -> torch.Tensor:
    """TF "SAME" padding for (B, C, T, H, W): total pad max(k - s, 0) (or k - size % s), extra at the end."""
    pads: list[int] = []
    for size, k, s in zip(reversed(x.shape[2:]), reversed(kernel), reversed(stride), strict=True):
        total = max(k - s, 0) if size % s == 0 else max(k - size % s, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class Unit3D(nn.Module):
    """Conv3d (+ BatchNorm, eps 1e-3 as in TF) (+ ReLU) with SAME padding."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: Sequence[int] = (1, 1, 1),
        stride: Sequence[int] = (1, 1, 1),
        norm: bool = True,
        relu: bool = True,
        bias: bool = False,
    ) -> None:
        super().__init__()
        kernel3 = (int(kernel[0]), int(kernel[1]), int(kernel[2]))
        stride3 = (int(stride[0]), int(stride[1]), int(stride[2]))
        self.kernel, self.stride, self.relu = kernel3, stride3, relu
        self.conv3d = nn.Conv3d(c_in, c_out, kernel3, stride3, bias=bias)
        self.bn = nn.BatchNorm3d(c_out, eps=1e-3, momentum=0.01) if norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(_same_pad(x, self.kernel, self.stride))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.relu else x


class MaxPoolSame(nn.Module):
    def __init__(self, kernel: Sequence[int], stride: Sequence[int]) -> None:
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(_same_pad(x, self.kernel, self.stride), self.kernel, self.stride)


class InceptionModule(nn.Module):
    """Four parallel branches (1x1; 1x1->3x3; 1x1->3x3; maxpool->1x1) concatenated on channels."""

    def __init__(self, c_in: int, c: Sequence[int]) -> None:
        super().__init__()
        self.b0 = Unit3D(c_in, c[0])
        self.b1a, self.b1b = Unit3D(c_in, c[1]), Unit3D(c[1], c[2], (3, 3, 3))
        self.b2a, self.b2b = Unit3D(c_in, c[3]), Unit3D(c[3], c[4], (3, 3, 3))
        self.b3a, self.b3b = MaxPoolSame((3, 3, 3), (1, 1, 1)), Unit3D(c_in, c[5])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1
        )


class InceptionI3d(nn.Module):
    """(B, 3, T, 224, 224) in [-1, 1] -> (B, num_classes) logits averaged over time."""

    def __init__(self, num_classes: int = 400) -> None:
        super().__init__()
        self.Conv3d_1a_7x7 = Unit3D(3, 64, (7, 7, 7), (2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPoolSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPoolSame((1, 3, 3), (1, 2, 2))
        for name, c_in, channels in MIXED:
            setattr(self, name, InceptionModule(c_in, channels))
        self.MaxPool3d_4a_3x3 = MaxPoolSame((3, 3, 3), (2, 2, 2))
        self.MaxPool3d_5a_2x2 = MaxPoolSame((2, 2, 2), (2, 2, 2))
        self.logits = Unit3D(1024, num_classes, norm=False, relu=False, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.MaxPool3d_2a_3x3(self.Conv3d_1a_7x7(x))
        x = self.MaxPool3d_3a_3x3(self.Conv3d_2c_3x3(self.Conv3d_2b_1x1(x)))
        for name in ORDER:
            x = getattr(self, name)(x)  # ends at (B, 1024, t, 7, 7)
        x = F.avg_pool3d(x, (2, 7, 7), stride=1)  # (B, 1024, t - 1, 1, 1); dropout is off at inference
        return self.logits(x).mean(dim=(2, 3, 4))  # (B, num_classes)


def load_i3d(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """The user's I3D file (TorchScript or a state dict with the names above) and a description with its
    sha256, for the report's protocol."""
    from ffasora.models.pretrained import file_sha256, load_strict

    file = Path(path)
    if not file.is_file():
        raise ValueError(f"{file}: no I3D weights file (supply i3d_torchscript.pt or i3d_pretrained_400.pt)")
    info: dict[str, Any] = {"file": str(file.resolve()), "sha256": file_sha256(file)}
    try:
        model: Any = torch.jit.load(str(file), map_location="cpu").eval()
        info["format"] = "torchscript"
        return model, info
    except RuntimeError:
        pass
    blob = torch.load(str(file), map_location="cpu", weights_only=True)
    state = blob.get("state_dict", blob) if isinstance(blob, dict) else blob
    if not isinstance(state, dict):
        raise ValueError(f"{file}: neither TorchScript nor a state dict ({type(blob).__name__})")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    net = InceptionI3d(
        num_classes=int(state["logits.conv3d.bias"].shape[0]) if "logits.conv3d.bias" in state else 400
    )
    for key, value in net.state_dict().items():  # TF conversions carry no BatchNorm step counters
        if key.endswith("num_batches_tracked"):
            state.setdefault(key, torch.zeros_like(value))
    load_strict(net, state, str(file))
    info["format"] = "state_dict"
    return net.eval(), info


def preprocess(frames: np.ndarray, n_frames: int = 16) -> torch.Tensor:
    """(T, H, W) uint8 -> (3, n_frames, 224, 224) in [-1, 1]: evenly spaced frames, bilinear resize, grey as RGB."""
    if n_frames < 10:
        raise ValueError(f"I3D needs at least 10 frames, got n_frames={n_frames}")
    index = np.round(np.linspace(0, len(frames) - 1, n_frames)).astype(np.int64)
    x = torch.from_numpy(np.ascontiguousarray(frames[index])).float()[:, None]  # (T, 1, H, W)
    x = F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False) / 127.5 - 1.0
    return x.permute(1, 0, 2, 3).expand(3, -1, -1, -1).contiguous()


@torch.no_grad()
def i3d_features(
    model: Any,
    videos: Sequence[np.ndarray],
    n_frames: int = 16,
    progress: Progress | None = None,
    batch: int = 4,
) -> np.ndarray:
    """(N, 400) float64 FVD features of (T, H, W) uint8 videos."""
    feats = []
    for start in range(0, len(videos), batch):
        x = torch.stack([preprocess(v, n_frames) for v in videos[start : start + batch]])
        if isinstance(model, torch.jit.ScriptModule):
            try:  # StyleGAN-V's export: inputs already resized and scaled, ask for the pre-softmax logits
                out = model(x, rescale=False, resize=False, return_features=True)
            except RuntimeError:
                out = model(x)
        else:
            out = model(x)
        feats.append(out.reshape(len(x), -1).double())
        if progress:
            progress(min(start + batch, len(videos)), len(videos))
    return torch.cat(feats).numpy()
