"""Analytic size and cost of a :class:`~ffasora.models.dit.DiT` from its config alone (no model is built).

FLOPs follow the usual convention (and ``torch.utils.flop_counter``): matrix products and convolutions
only, 2 FLOPs per multiply-add; norms, activations, RoPE and softmax are left out (well under 1 % here).
A training step costs about 3x the forward (backward = 2x), 4x with gradient checkpointing (one more forward).
"""

from __future__ import annotations

import math

from ffasora.models.dit import TIME_FREQ_DIM, DiTConfig


def count_params(cfg: DiTConfig) -> int:
    """Number of parameters of ``DiT(cfg)``."""
    d, p, m = cfg.hidden_size, cfg.patch_size, cfg.mlp_ratio
    qkv_bias = 3 * d if cfg.attention_bias else 0
    attention = 4 * d * d + qkv_bias + d  # q, k, v, out (+ biases; out always has one)
    block = 2 * attention + (d * m * d + m * d) + (m * d * d + d) + 6 * d
    embed = cfg.in_channels * p * p * d + d
    text = cfg.text_dim * d + d + d * d + d
    time = TIME_FREQ_DIM * d + d + d * d + d + d * 6 * d + 6 * d
    head = 2 * d + d * p * p * cfg.out_channels + p * p * cfg.out_channels
    return cfg.num_layers * block + embed + text + time + head


def count_flops(cfg: DiTConfig, frames: int, height: int, width: int, text_len: int) -> int:
    """Forward FLOPs for one sample of latent size ``frames x height x width`` and ``text_len`` text tokens.

    Skiparse blocks attend within subsets of ``S_pad / k`` tokens (S padded to a multiple of k²), so their
    score and value products cost ``4 S_pad (S_pad / k) D`` instead of ``4 S² D``; cross-attention is computed
    densely (same numbers, see ``dit_blocks.CrossAttention``).
    """
    d, p, m = cfg.hidden_size, cfg.patch_size, cfg.mlp_ratio
    s = frames * (height // p) * (width // p)
    lt = text_len
    total = 2 * s * d * cfg.in_channels * p * p  # patch embedding
    total += 2 * lt * (cfg.text_dim * d + d * d)  # caption projection
    total += 2 * (TIME_FREQ_DIM * d + d * d + 6 * d * d)  # timestep MLP + AdaLN-single
    for i in range(cfg.num_layers):
        total += 8 * s * d * d  # self-attention q, k, v, out
        if cfg.is_sparse(i):
            k = cfg.sparse_n
            s_pad = math.ceil(s / k**2) * k**2
            total += 4 * s_pad * (s_pad // k) * d
        else:
            total += 4 * s * s * d
        total += 4 * s * d * d + 4 * lt * d * d + 4 * s * lt * d  # cross-attention
        total += 4 * m * s * d * d  # feed-forward
    total += 2 * s * d * p * p * cfg.out_channels  # output projection
    return total
