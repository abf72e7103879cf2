"""A training-free step cache for the DiT, after TeaCache (Liu et al. 2024, arXiv 2411.19108).

Between neighbouring sampler steps the transformer blocks change the token stream by nearly the same residual
(last block's output minus first block's input). TeaCache watches a cheap proxy for how much that residual
would change, the first block's timestep-modulated input, and while the proxy has moved little it skips the
blocks and adds the last computed residual instead. Embedding, text projection and the output layer still run
every step, so the skipped work is the blocks: nearly all of a DiT's cost.

The proxy's change is the relative L1 distance between this call's and the previous call's modulated input,
summed over the calls since the blocks last ran; once the sum reaches ``threshold`` the blocks run and the sum
starts again. The first call always runs them. ``threshold = 0`` runs every call and equals the plain model
bit for bit. TeaCache also maps the distance through a polynomial fitted per model; here the raw distance is
summed and the threshold is chosen by measurement instead (docs/sampling.md).

A cache holds one generation's state: make a new one for every sample.
"""

from __future__ import annotations

import torch

from ffasora.models.dit import DiT
from ffasora.models.dit_blocks import DiTBlock


class StepCache:
    """``cache(x, timestep, text_states, text_mask, image=..., image_given=...)`` behaves like ``dit(...)``,
    skipping blocks when it may. The image condition of an image-conditioned DiT enters through its embedding,
    so it is part of the watched input and of every reused residual's tokens alike.

    ``computed`` and ``skipped`` count the calls whose blocks ran and were reused.
    """

    def __init__(self, dit: DiT, threshold: float) -> None:
        if not threshold >= 0:
            raise ValueError(f"the cache threshold must be a number >= 0, got {threshold}")
        self.dit = dit
        self.threshold = threshold
        self.computed = 0
        self.skipped = 0
        self._watched: torch.Tensor | None = None
        self._residual: torch.Tensor | None = None
        self._distance = 0.0

    @torch.no_grad()
    def __call__(
        self,
        x: torch.Tensor,
        timestep: torch.Tensor | float,
        text_states: torch.Tensor,
        text_mask: torch.Tensor | None = None,
        video_mask: torch.Tensor | None = None,
        image: torch.Tensor | None = None,
        image_given: torch.Tensor | None = None,
    ) -> torch.Tensor:
        tokens, inputs = self.dit.embed(x, timestep, text_states, text_mask, video_mask, image, image_given)
        first = self.dit.blocks[0]
        assert isinstance(first, DiTBlock)
        watched = first.attention_input(tokens, inputs.t6)
        reusable = self._residual is not None and self._residual.shape == tokens.shape
        if reusable and self._watched is not None:
            change = (watched - self._watched).abs().mean() / self._watched.abs().mean().clamp(min=1e-12)
            self._distance += float(change)
        self._watched = watched
        if reusable and self._distance < self.threshold:
            assert self._residual is not None
            self.skipped += 1
            return self.dit.unembed(tokens + self._residual, inputs)
        out = self.dit.run_blocks(tokens, inputs)
        self._residual = out - tokens
        self._distance = 0.0
        self.computed += 1
        return self.dit.unembed(out, inputs)
