"""Building blocks of the video DiT: attention (dense or Skiparse), the feed-forward net, one transformer block.

Shapes: tokens (B, S, D) in (t, h, w) raster order; text states (B, L, D) after the caption projection;
additive attention biases are 0 for visible keys and ``MASKED`` for hidden ones (the official model uses a
finite -10000 rather than -inf, so a row with every key hidden averages instead of producing NaN).

Skiparse (Open-Sora Plan v1.3 report, section "Skiparse attention"): with sparsity ``k`` the token sequence is
zero-padded to a multiple of k², then cut into k subsets that attend only within themselves, which divides
the self-attention cost by k while every subset still spans the whole clip:

* single skip (even block index): token ``i`` joins subset ``i mod k``;
* group skip (odd block index): runs of ``k`` consecutive tokens form groups and group ``j`` joins subset
  ``j mod k``, which keeps some locality.

The subsets are moved into the batch axis, subset-major. RoPE is applied before the regrouping so each token
keeps its true (t, h, w) position.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ffasora.models.rope import apply_rope

MASKED = -10000.0
# Skiparse padding keys get a slightly smaller penalty upstream; it only matters when every real key of a
# sample is masked (then the all-zero padding wins), and matching it keeps even that case identical.
PADDED = -9980.0


@dataclass(frozen=True)
class AttentionContext:
    """What every block needs besides its input, computed once per forward.

    rope_cos, rope_sin: (S, head_dim) float32; key_bias: (B, S) additive self-attention bias or None;
    text_bias: (B, L) additive cross-attention bias or None.
    """

    rope_cos: torch.Tensor
    rope_sin: torch.Tensor
    key_bias: torch.Tensor | None
    text_bias: torch.Tensor | None


def skiparse_split(x: torch.Tensor, k: int, group: bool) -> torch.Tensor:
    """(B, S, ...) with S divisible by k² -> (k*B, S/k, ...), subset-major (see module docstring)."""
    b, s = x.shape[:2]
    rest = x.shape[2:]
    if group:
        x = x.reshape(b, s // (k * k), k, k, *rest).movedim(2, 0)  # (subset, B, run, within-run, ...)
    else:
        x = x.reshape(b, s // k, k, *rest).movedim(2, 0)  # (subset, B, position in subset, ...)
    return x.reshape(k * b, s // k, *rest)


def skiparse_merge(x: torch.Tensor, k: int, group: bool) -> torch.Tensor:
    """Inverse of :func:`skiparse_split`: (k*B, S/k, ...) -> (B, S, ...)."""
    kb, sk = x.shape[:2]
    rest = x.shape[2:]
    b, s = kb // k, sk * k
    if group:
        x = x.reshape(k, b, s // (k * k), k, *rest).movedim(0, 2)
    else:
        x = x.reshape(k, b, s // k, *rest).movedim(0, 2)
    return x.reshape(b, s, *rest)


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """Scaled dot-product attention on (B, S, heads, d) inputs with a (B, S_k) key bias; returns (B, S, heads*d)."""
    mask = None if bias is None else bias[:, None, None, :].to(q.dtype)
    out = F.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask
    )
    return out.transpose(1, 2).flatten(2)


class SelfAttention(nn.Module):
    """Multi-head self-attention over video tokens with RoPE-3D, dense or Skiparse."""

    def __init__(self, dim: int, heads: int, bias: bool, sparse_n: int = 1, sparse_group: bool = False):
        super().__init__()
        self.heads = heads
        self.sparse_n = sparse_n
        self.sparse_group = sparse_group
        self.q = nn.Linear(dim, dim, bias=bias)
        self.k = nn.Linear(dim, dim, bias=bias)
        self.v = nn.Linear(dim, dim, bias=bias)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, ctx: AttentionContext) -> torch.Tensor:
        """x (B, S, D) -> (B, S, D)."""
        b, s, _ = x.shape
        q = apply_rope(self.q(x).unflatten(-1, (self.heads, -1)), ctx.rope_cos, ctx.rope_sin)
        k = apply_rope(self.k(x).unflatten(-1, (self.heads, -1)), ctx.rope_cos, ctx.rope_sin)
        v = self.v(x).unflatten(-1, (self.heads, -1))
        n = self.sparse_n
        if n == 1:
            return self.out(_attend(q, k, v, ctx.key_bias))
        pad = -s % (n * n)
        bias = ctx.key_bias
        if pad:
            q, k, v = (F.pad(t, (0, 0, 0, 0, 0, pad)) for t in (q, k, v))
            bias = torch.zeros(b, s, device=x.device) if bias is None else bias
            bias = F.pad(bias, (0, pad), value=PADDED)  # padding tokens are not attended to
        q, k, v = (skiparse_split(t, n, self.sparse_group) for t in (q, k, v))
        if bias is not None:
            bias = skiparse_split(bias, n, self.sparse_group)
        out = skiparse_merge(_attend(q, k, v, bias), n, self.sparse_group)
        return self.out(out[:, :s])


class CrossAttention(nn.Module):
    """Multi-head attention from video tokens to text tokens (no positions on either side).

    In Skiparse blocks the official model regroups the queries and repeats the text k times; each query's
    result does not depend on the other queries, so attending densely gives the same numbers for less work.
    """

    def __init__(self, dim: int, heads: int, bias: bool):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim, bias=bias)
        self.k = nn.Linear(dim, dim, bias=bias)
        self.v = nn.Linear(dim, dim, bias=bias)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, text: torch.Tensor, text_bias: torch.Tensor | None) -> torch.Tensor:
        """x (B, S, D), text (B, L, D) -> (B, S, D)."""
        q = self.q(x).unflatten(-1, (self.heads, -1))
        k = self.k(text).unflatten(-1, (self.heads, -1))
        v = self.v(text).unflatten(-1, (self.heads, -1))
        return self.out(_attend(q, k, v, text_bias))


class FeedForward(nn.Module):
    """Linear -> GELU (tanh approximation) -> Linear, inner width ``mult * dim``."""

    def __init__(self, dim: int, mult: int = 4):
        super().__init__()
        self.fc1 = nn.Linear(dim, mult * dim)
        self.fc2 = nn.Linear(mult * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class DiTBlock(nn.Module):
    """PixArt-alpha style block with AdaLN-single (arXiv 2310.00426, section 2.3).

    Order: modulated LayerNorm -> self-attention -> gate -> residual; cross-attention on the *un-normalised*
    stream, un-gated -> residual; modulated LayerNorm -> FFN -> gate -> residual. The six modulation vectors
    are the block's own learnt table plus the shared timestep projection.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        mlp_ratio: int,
        bias: bool,
        eps: float,
        sparse_n: int = 1,
        sparse_group: bool = False,
    ):
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=eps, elementwise_affine=False)
        self.self_attn = SelfAttention(dim, heads, bias, sparse_n, sparse_group)
        self.cross_attn = CrossAttention(dim, heads, bias)
        self.mlp = FeedForward(dim, mlp_ratio)
        self.modulation = nn.Parameter(torch.randn(6, dim) / dim**0.5)

    def forward(
        self, x: torch.Tensor, t6: torch.Tensor, text: torch.Tensor, ctx: AttentionContext
    ) -> torch.Tensor:
        """x (B, S, D); t6 (B, 6, D) shared timestep modulation; text (B, L, D) -> (B, S, D)."""
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self._modulation(t6)
        h = self.norm(x) * (1 + scale_msa) + shift_msa
        x = x + gate_msa * self.self_attn(h, ctx)
        x = x + self.cross_attn(x, text, ctx.text_bias)
        h = self.norm(x) * (1 + scale_mlp) + shift_mlp
        return x + gate_mlp * self.mlp(h)

    def _modulation(self, t6: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (self.modulation[None] + t6).unsqueeze(2).unbind(1)  # six of (B, 1, D)

    def attention_input(self, x: torch.Tensor, t6: torch.Tensor) -> torch.Tensor:
        """The timestep-modulated stream self-attention reads, (B, S, D): what a step cache watches."""
        shift_msa, scale_msa = self._modulation(t6)[:2]
        return self.norm(x) * (1 + scale_msa) + shift_msa
