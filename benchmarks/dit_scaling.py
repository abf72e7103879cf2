"""FLOPs and memory of the DiT presets per training step and per video, on 1 GPU and on N GPUs (docs/scaling.md).

    .venv/bin/python benchmarks/dit_scaling.py                  # tables for small@128, base@512, official@512
    .venv/bin/python benchmarks/dit_scaling.py --gpus 8 --mfu 0.35

FLOPs are counted from the config (``ffasora.models.dit_cost.count_flops``). Activation memory is measured:
the bytes autograd saves for backward in one block (``benchmarks.dit.saved_activation_bytes``) at two small
token counts, fitted as ``a * tokens + b`` (attention runs in fused kernels that keep O(tokens) state) and
extrapolated to the clip. Seconds are FLOPs / (peak x MFU): estimates, not GPU measurements.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch

from ffasora.config import load_config
from ffasora.models.dit import DiT, DiTConfig
from ffasora.models.dit_cost import count_flops, count_params

ROOT = Path(__file__).resolve().parents[1]
CASES = (("small", 128, 64), ("base", 512, 128), ("osp_v13_2b", 512, 512))  # preset, pixels, text tokens
GiB = 2**30
H100_BF16_DENSE = 989e12  # FLOP/s, NVIDIA H100 SXM datasheet (dense, no sparsity)


def block_activation_fit(cfg: DiTConfig, text_len: int, autocast: bool) -> tuple[float, float]:
    """Bytes saved for backward by one block as ``a * tokens + b``, from two small measured grids."""
    from dit import saved_activation_bytes  # benchmarks/dit.py, run from this folder

    one = dataclasses.replace(cfg, num_layers=1, dense_first=0, dense_last=0)
    two = dataclasses.replace(one, num_layers=2)  # the difference is one block, without embeddings/head
    sizes, values = [], []
    for grid in ((2, 8, 8), (2, 16, 16)):
        torch.manual_seed(0)
        x = torch.randn(1, cfg.in_channels, *grid)
        inputs = (
            x,
            torch.tensor([500.0]),
            torch.randn(1, text_len, cfg.text_dim),
            torch.ones(1, text_len).bool(),
        )
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            per_block = saved_activation_bytes(DiT(two), inputs) - saved_activation_bytes(DiT(one), inputs)
        sizes.append(grid[0] * grid[1] * grid[2] // cfg.patch_size**2)
        values.append(per_block)
    a = (values[1] - values[0]) / (sizes[1] - sizes[0])
    return a, values[0] - a * sizes[0]


def _flop(x: float) -> str:
    for unit, size in (("PFLOP", 1e15), ("TFLOP", 1e12), ("GFLOP", 1e9)):
        if x >= size:
            return f"{x / size:.3g} {unit}"
    return f"{x / 1e6:.3g} MFLOP"


def _gib(x: float) -> str:
    return f"{x / GiB:.3g} GiB" if x >= 0.1 * GiB else f"{x / 2**20:.3g} MiB"


def _sec(x: float) -> str:
    return f"{x:.3g} s" if x >= 1e-3 else f"{x * 1e3:.3g} ms"


def _max_batch(free: float, per_sample: float) -> str:
    return str(int(free // per_sample)) if free > per_sample else "0 (does not fit)"


def report(
    preset: str, pixels: int, text_len: int, gpus: int, mfu: float, batch: int, gpu_gib: int
) -> list[str]:
    cfg = load_config(DiTConfig, ROOT / "configs" / "dit" / f"{preset}.toml")
    t, h, w = 6, pixels // 8, pixels // 8  # 21 frames -> 6 latent frames (WF-VAE 4x8x8)
    tokens = t * (h // cfg.patch_size) * (w // cfg.patch_size)
    p = count_params(cfg)
    fwd = count_flops(cfg, t, h, w, text_len)
    a, b = block_activation_fit(cfg, text_len, autocast=True)
    act_block = a * tokens + b
    act_full = cfg.num_layers * act_block  # bf16 autocast, no checkpointing, one sample
    act_ckpt = cfg.num_layers * tokens * cfg.hidden_size * 2 + act_block  # block inputs (bf16) + one block
    state = 16 * p  # fp32 weights + fp32 grads + AdamW m, v
    ema = 4 * p
    speed = H100_BF16_DENSE * mfu
    fsdp_fixed = (state + ema) / gpus + 2 * 4 * p / cfg.num_layers  # shards + two gathered blocks
    budget = gpu_gib * GiB * 0.9  # leave 10 % for the allocator, kernels' workspaces and the CUDA context
    rows = [
        f"### {preset} at 21x{pixels}x{pixels} ({tokens} tokens, {text_len} text tokens, {p / 1e6:,.1f} M params)",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| forward, 1 sample | {_flop(fwd)} |",
        f"| training step per sample: plain (3x fwd) / checkpointed (4x fwd) | {_flop(3 * fwd)} / {_flop(4 * fwd)} |",
        f"| video, official sampler (100 steps x CFG = 200 forwards) | {_flop(200 * fwd)} |",
        f"| video, 50 steps x CFG (100 forwards) | {_flop(100 * fwd)} |",
        f"| weights bf16 (inference) / fp32 | {_gib(2 * p)} / {_gib(4 * p)} |",
        f"| training state: fp32 weights + grads + AdamW m, v (16 B/param) | {_gib(state)} |",
        f"| EMA copy (fp32) | {_gib(ema)} |",
        f"| activations per sample, bf16 autocast: plain / checkpointed | {_gib(act_full)} / {_gib(act_ckpt)} |",
        f"| 1 GPU or DDP (any N), per GPU: state + EMA + {batch} x checkpointed activations | "
        f"{_gib(state + ema + batch * act_ckpt)} |",
        f"| FSDP full shard on {gpus} GPUs, per GPU: same | {_gib(fsdp_fixed + batch * act_ckpt)} |",
        f"| max samples per {gpu_gib} GiB GPU, 1 GPU / DDP: plain / checkpointed | "
        f"{_max_batch(budget - state - ema, act_full)} / {_max_batch(budget - state - ema, act_ckpt)} |",
        f"| max samples per {gpu_gib} GiB GPU, FSDP on {gpus}: plain / checkpointed | "
        f"{_max_batch(budget - fsdp_fixed, act_full)} / {_max_batch(budget - fsdp_fixed, act_ckpt)} |",
        f"| est. training time per sample, 1 H100 at {mfu:.0%} MFU, checkpointed (N GPUs: / N) | "
        f"{_sec(4 * fwd / speed)} |",
        f"| est. time per video on 1 H100 at {mfu:.0%} MFU: official sampler / 50 steps x CFG | "
        f"{_sec(200 * fwd / speed)} / {_sec(100 * fwd / speed)} |",
        "",
    ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--mfu", type=float, default=0.4, help="assumed model-FLOP utilisation")
    parser.add_argument("--batch", type=int, default=4, help="samples per GPU for the memory rows")
    parser.add_argument("--gpu-gib", type=int, default=80, help="GPU memory for the 'max samples' rows")
    args = parser.parse_args()
    for preset, pixels, text_len in CASES:
        print("\n".join(report(preset, pixels, text_len, args.gpus, args.mfu, args.batch, args.gpu_gib)))


if __name__ == "__main__":
    main()
