"""LPIPS (Zhang et al., CVPR 2018, arXiv 1801.03924), paired generated-vs-reference, per frame.

d(x, y) = sum over layers l of mean over pixels of || w_l * (f_l(x) - f_l(y)) ||^2, where f_l are an ImageNet
trunk's activations normalised over channels and w_l the learned per-channel weights ("lin" layers, v0.1).

Nothing here ships weights and nothing is downloaded: the user supplies both files.

- the trunk: torchvision's ImageNet AlexNet (``alexnet-owt-7be5be79.pth``) or VGG16 (``vgg16-397923af.pth``);
  the ``features.*`` parameter names below match torchvision's, so those files load strictly;
- the lin heads: the v0.1 ``alex.pth`` / ``vgg.pth`` of the ``lpips`` package (keys ``lin<k>.model.1.weight``),
  which is not installed here (it needs torchvision), so the heads are user-supplied too.

Inputs follow the reference conventions: frames in [-1, 1], grey repeated to RGB, the v0.1 scaling layer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ffasora.evaluate.inputs import to_clip

# features.<index> of each trunk: convolutions as (index, c_in, c_out, kernel, stride, padding), max-pools,
# and the ReLU outputs LPIPS compares
TRUNKS: dict[str, dict[str, Any]] = {
    "alex": {
        "convs": [
            (0, 3, 64, 11, 4, 2),
            (3, 64, 192, 5, 1, 2),
            (6, 192, 384, 3, 1, 1),
            (8, 384, 256, 3, 1, 1),
            (10, 256, 256, 3, 1, 1),
        ],
        "pools": [2, 5],
        "taps": [1, 4, 7, 9, 11],
        "channels": [64, 192, 384, 256, 256],
    },
    "vgg": {
        "convs": [
            (i, a, b, 3, 1, 1)
            for i, a, b in (
                (0, 3, 64),
                (2, 64, 64),
                (5, 64, 128),
                (7, 128, 128),
                (10, 128, 256),
                (12, 256, 256),
                (14, 256, 256),
                (17, 256, 512),
                (19, 512, 512),
                (21, 512, 512),
                (24, 512, 512),
                (26, 512, 512),
                (28, 512, 512),
            )
        ],
        "pools": [4, 9, 16, 23],
        "taps": [3, 8, 15, 22, 29],
        "channels": [64, 128, 256, 512, 512],
    },
}
# v0.1 scaling layer: inputs in [-1, 1] are mapped to the trunk's ImageNet statistics
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)


class LPIPS(nn.Module):
    """(B, 3, H, W) pairs in [-1, 1] -> (B,) distances."""

    def __init__(self, net: str = "alex") -> None:
        super().__init__()
        if net not in TRUNKS:
            raise ValueError(f"LPIPS net {net!r}; expected one of {sorted(TRUNKS)}")
        spec = TRUNKS[net]
        layers: list[nn.Module] = [nn.Identity()] * (spec["taps"][-1] + 1)
        for index, c_in, c_out, k, s, p in spec["convs"]:
            layers[index] = nn.Conv2d(c_in, c_out, k, s, p)
            layers[index + 1] = nn.ReLU()
        for index in spec["pools"]:
            layers[index] = nn.MaxPool2d(3, 2) if net == "alex" else nn.MaxPool2d(2, 2)
        self.features = nn.Sequential(*layers)
        self.taps = spec["taps"]
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in spec["channels"])
        self.shift: torch.Tensor
        self.scale: torch.Tensor
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)

    def _activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x - self.shift) / self.scale
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                out.append(x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10))
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        total = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for lin, fx, fy in zip(self.lins, self._activations(x), self._activations(y), strict=True):
            total = total + lin((fx - fy) ** 2).mean(dim=(1, 2, 3))
        return total


def _heads(state: dict[str, torch.Tensor], n: int) -> dict[str, torch.Tensor]:
    """Lin weights under our names from the lpips file layout (lin<k>.model.1.weight) or ours (lins.<k>.weight)."""
    out = {}
    for k in range(n):
        for key in (f"lin{k}.model.1.weight", f"lins.{k}.weight", f"lin{k}.weight"):
            if key in state:
                out[f"lins.{k}.weight"] = state[key]
                break
    return out


def load_lpips(trunk: str | Path, heads: str | Path, net: str = "alex") -> tuple[LPIPS, dict[str, Any]]:
    """LPIPS from a torchvision trunk file and a lin-heads file; the description records both sha256s."""
    from ffasora.models.pretrained import file_sha256, load_strict

    for path, what in ((trunk, "trunk"), (heads, "lin heads")):
        if not Path(path).is_file():
            raise ValueError(f"{path}: no LPIPS {what} file")
    model = LPIPS(net)
    trunk_state = torch.load(str(trunk), map_location="cpu", weights_only=True)
    head_state = torch.load(str(heads), map_location="cpu", weights_only=True)
    state = {k: v for k, v in trunk_state.items() if k.startswith("features.")}
    state.update(_heads(head_state, len(model.lins)))
    load_strict(model, state, f"{trunk} + {heads}")
    info = {
        "net": net,
        "version": "0.1",
        "trunk_sha256": file_sha256(trunk),
        "heads_sha256": file_sha256(heads),
    }
    return model.eval(), info


@torch.no_grad()
def paired_lpips(model: LPIPS, generated: np.ndarray, reference: np.ndarray, frames: int, size: int) -> float:
    """Mean per-frame LPIPS of two (T, H, W) uint8 videos on a common (frames, size) grid."""
    a = to_clip(generated, frames, size)[0][:, None].expand(-1, 3, -1, -1)  # (T, 3, S, S)
    b = to_clip(reference, frames, size)[0][:, None].expand(-1, 3, -1, -1)
    return float(model(a, b).mean())
