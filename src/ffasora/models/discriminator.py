"""3D PatchGAN discriminator used to train WF-VAE (arXiv 2411.17459, Sec. 3.4; pix2pix PatchGAN in 3D).

Layout of the official ``NLayerDiscriminator3D``: a stride-2 3x3x3 conv + LeakyReLU(0.2), then ``n_layers - 1``
blocks of conv (stride 2 in time for the first, then only in space) + BatchNorm3d + LeakyReLU + Dropout, a
stride-1 block, and a 1-channel 3x3x3 output conv giving one real/fake logit per space-time patch.
Weights are initialised N(0, 0.02) (BatchNorm N(1, 0.02)), as in the taming / LDM recipe.
"""

from __future__ import annotations

import torch
from torch import nn


class PatchDiscriminator3D(nn.Module):
    """x: (B, C, T, H, W) in [-1, 1] -> logits (B, 1, T', H', W')."""

    def __init__(
        self, in_channels: int = 3, width: int = 64, n_layers: int = 4, dropout: float = 0.3
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv3d(in_channels, width, 3, stride=2, padding=1),
            nn.LeakyReLU(0.2, True),
        ]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = (2 if n == 1 else 1, 2, 2) if n < n_layers else 1
            layers += [
                nn.Conv3d(width * prev, width * mult, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm3d(width * mult),
                nn.LeakyReLU(0.2, True),
                nn.Dropout(dropout),
            ]
        layers.append(nn.Conv3d(width * mult, 1, 3, padding=1))
        self.main = nn.Sequential(*layers)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv3d):
                nn.init.normal_(module.weight, 0.0, 0.02)
            elif isinstance(module, nn.BatchNorm3d):
                nn.init.normal_(module.weight, 1.0, 0.02)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)
