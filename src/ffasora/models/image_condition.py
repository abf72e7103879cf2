"""A colour fundus photograph as the DiT's image condition: RGB pixels -> VAE latents (one latent frame).

The WF-VAE of an FFA model is grey (one input channel, or three carrying the same grey value), yet colour is
what tells a haemorrhage (red) from an exudate (yellow) or a scar (pigment) in a photograph. So each colour
channel is encoded as its own one-frame grey clip and the three latents are stacked along channels: the
condition has ``3 * latent_dim`` channels and the photograph's registration to the video is kept, latent
pixel for latent pixel. The posterior mean is used (no sampling), pushed through the same per-channel
normalisation as the video latents the DiT sees.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

COLOURS = 3


def image_condition_channels(latent_dim: int) -> int:
    """Channels of the image condition for a VAE with ``latent_dim`` latent channels."""
    return COLOURS * latent_dim


def photo_pixels(image: Any, height: int, width: int) -> torch.Tensor:
    """An (H0, W0, 3) uint8 RGB photograph (numpy or torch) -> (3, 1, 1, height, width) float in [-1, 1]:
    one grey one-frame clip per colour channel, resized (antialiased bilinear) to the video's size."""
    x = image.detach().cpu() if isinstance(image, torch.Tensor) else torch.tensor(image)  # a copy
    if x.ndim != 3 or x.shape[-1] != COLOURS or x.dtype != torch.uint8:
        raise ValueError(
            f"photograph of shape {tuple(x.shape)} and dtype {x.dtype}: expected (H, W, 3) uint8 RGB"
        )
    x = x.permute(2, 0, 1)[:, None].float() / 127.5 - 1.0  # (3, 1, H0, W0)
    if tuple(x.shape[-2:]) != (height, width):
        x = F.interpolate(x, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    return x.clamp(-1, 1)[:, :, None]  # (3, 1, 1, H, W)


@torch.no_grad()
def encode_photo(vae: Any, image: Any, height: int, width: int) -> torch.Tensor:
    """The image condition (1, 3 * latent_dim, 1, height / 8, width / 8) of a photograph, in DiT units.

    ``vae``: a :class:`ffasora.models.vae.WFVAE` (anything with ``encode`` and ``normalize_latents``).
    """
    weight = next(vae.parameters())
    pixels = photo_pixels(image, height, width).to(weight.device)
    mean = vae.normalize_latents(vae.encode(pixels).mean)  # (3, c, 1, h, w)
    return mean.float().flatten(0, 1)[None]  # (1, 3c, 1, h, w), colour-major channels
