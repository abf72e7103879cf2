"""8-bit pixels <-> the [-1, 1] floats every model here reads and writes (the WF-VAE's convention).

One owner for the rule, so a video written by one part and read by another round-trips exactly:
``to_uint8(to_unit(x)) == x`` for every uint8 array ``x``.
"""

from __future__ import annotations

import numpy as np
import torch


def to_unit(pixels: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 pixels (any shape) -> float32 in [-1, 1], as a new tensor."""
    x = torch.tensor(pixels) if isinstance(pixels, np.ndarray) else pixels  # a copy: numpy may be read-only
    return x.float().div(127.5).sub(1.0)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Floats in [-1, 1] (any shape; clipped) -> uint8 numpy, rounded to the nearest level."""
    return ((x.detach().float().clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8).cpu().numpy()
