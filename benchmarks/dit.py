"""Seconds per denoising step (and per video) of the DiT presets, with counted FLOPs and activation memory.

    .venv/bin/python benchmarks/dit.py                         # small preset at 128 and 512 px, CPU
    .venv/bin/python benchmarks/dit.py --presets osp_v13_2b --layers 2 --sizes 512
    .venv/bin/python benchmarks/dit.py --device cuda --dtype bf16 --presets small osp_v13_2b

Rows are (preset, clip size). ``--layers N`` builds only N blocks of a preset (Skiparse where the preset has it) and scales
the measured times by the counted FLOPs to the full depth (blocks are >99 % of the FLOPs), so the 2.77 B official size can be estimated on a
small machine; such rows are marked "extrapolated". Per-video seconds = seconds per network evaluation x the
evaluations of a sampler: add samplers to ``SAMPLER_NFE`` (name -> (steps, passes per step; 2 with CFG)).
Pixel clips are 21 frames; latents follow the WF-VAE 4x8x8 compression (21x512x512 -> 8x6x64x64).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ffasora.config import load_config
from ffasora.models.dit import DiT, DiTConfig
from ffasora.models.dit_cost import count_flops, count_params

ROOT = Path(__file__).resolve().parents[1]
FRAMES = 21
TEXT_TOKENS = {"small": 64, "osp_v13_2b": 512}  # MiniLM report length vs the official padded mT5 length

# sampler name -> (denoising steps, network passes per step). The official v1.3 recipe is 100 Euler-ancestral
# steps with classifier-free guidance (cond + uncond = 2 passes, run as one batch of 2).
SAMPLER_NFE: dict[str, tuple[int, int]] = {
    "official: euler-a 100 steps, CFG": (100, 2),
}


@dataclass
class Row:
    preset: str
    size: int
    tokens: int
    params: int
    gflops_fwd: float  # one sample, full depth
    s_fwd: float  # one forward, batch 1, full depth
    s_cfg_step: float  # one denoising step with CFG (batch 2)
    s_train: float  # forward + backward, batch 1
    act_mb: float  # activations saved for backward, batch 1, full depth
    act_mb_ckpt: float  # the same with gradient checkpointing
    extrapolated: bool


def latent_grid(size: int, frames: int = FRAMES) -> tuple[int, int, int]:
    return (frames - 1) // 4 + 1, size // 8, size // 8


def _timed(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    fn()  # warm-up (allocations, kernel selection)
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best


def saved_activation_bytes(model: DiT, inputs: tuple[torch.Tensor, ...]) -> int:
    """Bytes of the tensors autograd keeps for the backward pass of one forward (parameters excluded)."""
    params = {p.data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if t.data_ptr() not in params:
            seen[t.data_ptr()] = max(seen.get(t.data_ptr(), 0), t.numel() * t.element_size())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(*inputs).sum().backward()
    model.zero_grad(set_to_none=True)
    return sum(seen.values())


def measure(
    preset: str,
    size: int,
    layers: int | None,
    device: torch.device,
    dtype: torch.dtype,
    repeats: int,
) -> Row:
    full = load_config(DiTConfig, ROOT / "configs" / "dit" / f"{preset}.toml")
    cfg = (
        full if layers is None else dataclasses.replace(full, num_layers=layers, dense_first=0, dense_last=0)
    )
    t, h, w = latent_grid(size)
    text_len = TEXT_TOKENS.get(preset, 64)
    # time scales with FLOPs (dense and Skiparse blocks differ), activations with depth
    scale = count_flops(full, t, h, w, text_len) / count_flops(cfg, t, h, w, text_len)
    torch.manual_seed(0)
    model = DiT(cfg).to(device=device, dtype=dtype)

    def inputs(batch: int) -> tuple[torch.Tensor, ...]:
        x = torch.randn(batch, cfg.in_channels, t, h, w, device=device, dtype=dtype)
        text = torch.randn(batch, text_len, cfg.text_dim, device=device, dtype=dtype)
        mask = torch.ones(batch, text_len, dtype=torch.bool, device=device)
        return x, torch.full((batch,), 500.0, device=device), text, mask

    one, two = inputs(1), inputs(2)
    with torch.no_grad():
        s_fwd = _timed(lambda: model(*one), repeats, device)
        s_cfg = _timed(lambda: model(*two), repeats, device)
    model.train()
    s_train = _timed(lambda: model(*one).float().square().mean().backward(), repeats, device)
    act = saved_activation_bytes(model, one)
    model.set_gradient_checkpointing(True)
    outside = saved_activation_bytes(model, one)  # checkpointed blocks keep nothing for backward
    per_block = (act - outside) / cfg.num_layers
    tokens = t * (h // cfg.patch_size) * (w // cfg.patch_size)
    block_input = tokens * cfg.hidden_size * torch.finfo(dtype).bits // 8
    act_full = outside + per_block * full.num_layers
    # with checkpointing: every block's input, plus one block's activations while it is recomputed
    act_ckpt = outside + block_input * full.num_layers + per_block
    return Row(
        preset=preset,
        size=size,
        tokens=tokens,
        params=count_params(full),
        gflops_fwd=count_flops(full, t, h, w, text_len) / 1e9,
        s_fwd=s_fwd * scale,
        s_cfg_step=s_cfg * scale,
        s_train=s_train * scale,
        act_mb=act_full / 2**20,
        act_mb_ckpt=act_ckpt / 2**20,
        extrapolated=layers is not None,
    )


def print_rows(rows: list[Row], device: str, dtype: str) -> None:
    print(f"device {device}, dtype {dtype}, {torch.get_num_threads()} threads, {FRAMES}-frame clips")
    head = "| preset | clip | tokens | params | GFLOP fwd | s/fwd | s/CFG step | s/train step | act MB | act MB ckpt |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for r in rows:
        mark = " (extrapolated)" if r.extrapolated else ""
        print(
            f"| {r.preset}{mark} | {FRAMES}x{r.size}x{r.size} | {r.tokens} | {r.params / 1e6:.1f} M | "
            f"{r.gflops_fwd:.1f} | {r.s_fwd:.3f} | {r.s_cfg_step:.3f} | {r.s_train:.3f} | "
            f"{r.act_mb:.0f} | {r.act_mb_ckpt:.0f} |"
        )
    print()
    print("| preset | clip | sampler | network passes | s/video |")
    print("|---|---|---|---|---|")
    for r in rows:
        for name, (steps, passes) in SAMPLER_NFE.items():
            per_step = r.s_cfg_step if passes == 2 else r.s_fwd * passes
            print(f"| {r.preset} | {r.size} | {name} | {steps * passes} | {steps * per_step:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--presets", nargs="+", default=["small"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[128, 512])
    parser.add_argument("--layers", type=int, default=None, help="build this many blocks and extrapolate")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    device = torch.device(args.device)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    rows = [
        measure(preset, size, args.layers, device, dtype, args.repeats)
        for preset in args.presets
        for size in args.sizes
    ]
    print_rows(rows, args.device, args.dtype)


if __name__ == "__main__":
    main()
